/**
 * Calls that are meant to stay open and quiet: health Watch sends only on a
 * change. They are exempt from the per-stream inactivity timeout, so they
 * are capped instead (stream-limits.ts), and end with their connection's
 * age (connection-age.ts).
 */
const longLivedPaths = new Set(["/grpc.health.v1.Health/Watch"]);

/** The path of a request URL, without its query. */
export function pathOf(url: string | undefined): string {
  return (url ?? "").split("?", 1)[0]!;
}

/** Whether a request is a long-lived call (health Watch). */
export function isLongLived(url: string | undefined): boolean {
  return longLivedPaths.has(pathOf(url));
}
