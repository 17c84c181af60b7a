import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Option, type Command } from "commander";
import { readFileSync } from "node:fs";
import { rootCertificates } from "node:tls";
import { AggregatorService } from "../../gen/aggregator/v1/aggregator_pb.js";
import { UsageError } from "./failure.js";

/** The RPC client every command uses. */
export type TallyClient = Client<typeof AggregatorService>;

/** The options every command shares, as commander hands them over. */
export interface ConnectionOptions {
  target: string;
  token?: string;
  ca?: string;
  insecure?: boolean;
}

/** Where a client looks for the server when told nothing: the server's own default address. */
export const defaultTarget = "http://127.0.0.1:8080";

/** Adds --target, --token, --ca and --insecure to a command, so each command's help lists them. */
export function addConnectionOptions(command: Command): Command {
  return command
    .addOption(new Option("--target <url>", "server URL, http:// or https://").env("TALLY_TARGET").default(defaultTarget))
    .addOption(new Option("--token <token>", "bearer token, sent as authorization: Bearer <token>").env("TALLY_TOKEN"))
    .addOption(new Option("--ca <file>", "PEM certificate(s) to trust for an https:// target, beside the system's"))
    .addOption(new Option("--insecure", "accept any certificate of an https:// target (testing only)"));
}

/**
 * A client over gRPC on HTTP/2 (h2c for http://, TLS with ALPN h2 for
 * https://). gRPC rather than the Connect protocol: it is the protocol other
 * tooling (grpcurl, grpc-js, proxies) speaks to the same port, it streams
 * both ways on one HTTP/2 connection, and its end-of-stream status arrives in
 * trailers, so a stream cut by a restart or a GOAWAY is told apart from one
 * the server ended on purpose. Binary protobuf keeps a big publish cheap.
 */
export function connect(options: ConnectionOptions, tuning: { pingIntervalMs?: number } = {}): TallyClient {
  // An empty TALLY_TARGET is unset, as an empty TALLY_TOKEN is.
  const url = parseTarget(options.target === "" ? defaultTarget : options.target);
  const interceptors: Interceptor[] = [];
  if (options.token !== undefined && options.token !== "") {
    const header = `Bearer ${options.token}`;
    interceptors.push((next) => (req) => {
      req.header.set("authorization", header);
      return next(req);
    });
  }
  const tls = url.protocol === "https:" ? { ca: readCa(options.ca), rejectUnauthorized: options.insecure !== true } : {};
  const transport = createGrpcTransport({
    baseUrl: url.href,
    interceptors,
    nodeOptions: tls,
    // A long-lived stream (tail) notices a dead connection by a PING left unanswered, not by waiting forever.
    ...(tuning.pingIntervalMs !== undefined ? { pingIntervalMs: tuning.pingIntervalMs, pingIdleConnection: true } : {}),
  });
  return createClient(AggregatorService, transport);
}

function parseTarget(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--target: "${text}" is not a URL (e.g. http://127.0.0.1:8080)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`--target: ${url.protocol}// is not supported; use http:// or https://`);
  }
  return url;
}

function readCa(path: string | undefined): (string | Buffer)[] | undefined {
  if (path === undefined) return undefined;
  try {
    // Node's default trust store is replaced by `ca`, so the system's roots are kept beside the given ones.
    return [...rootCertificates, readFileSync(path)];
  } catch (err) {
    throw new UsageError(`--ca ${path}: cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
