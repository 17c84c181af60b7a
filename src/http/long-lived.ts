/**
 * Calls that are meant to stay open and may stay quiet: health Watch sends
 * only on a change, and a subscription (Subscribe, GET /events/stream) waits
 * for commits or for a client that reads slowly. They are exempt from the
 * per-stream inactivity timeout, so they are capped instead
 * (stream-limits.ts), and end with their connection's age
 * (connection-age.ts).
 */
const longLivedPaths = new Set(["/grpc.health.v1.Health/Watch", "/aggregator.v1.AggregatorService/Subscribe", "/events/stream"]);

/** Long-lived calls a client multiplexes many of on one connection (subscriptions), unlike health watches. */
const manyPerConnectionPaths = new Set(["/aggregator.v1.AggregatorService/Subscribe", "/events/stream"]);

/** The path of a request URL, without its query. */
export function pathOf(url: string | undefined): string {
  return (url ?? "").split("?", 1)[0]!;
}

/** Whether a request is a long-lived call (health Watch). */
export function isLongLived(url: string | undefined): boolean {
  return longLivedPaths.has(pathOf(url));
}

/** Whether a long-lived call is one a client may open many of on one connection (a subscription per topic). */
export function isManyPerConnection(url: string | undefined): boolean {
  return manyPerConnectionPaths.has(pathOf(url));
}
