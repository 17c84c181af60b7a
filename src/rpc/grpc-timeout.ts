/** The gRPC timeout header: up to 8 digits and a unit (gRPC over HTTP/2 spec). */
const grpcTimeoutPattern = /^(\d{1,8})([HMSmun])$/;
const msPerTimeoutUnit: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000_001 };

/**
 * A grpc-timeout header in milliseconds; undefined when none was sent;
 * "invalid" when it is malformed or longer than maxTimeoutMs (connect-es
 * answers those, with the words its clients expect).
 */
export function parseGrpcTimeout(header: string | string[] | undefined, maxTimeoutMs: number): number | undefined | "invalid" {
  if (header === undefined) return undefined;
  const match = typeof header === "string" ? grpcTimeoutPattern.exec(header) : null;
  if (match === null) return "invalid";
  const ms = Number(match[1]) * msPerTimeoutUnit[match[2]!]!;
  return ms > maxTimeoutMs ? "invalid" : ms;
}
