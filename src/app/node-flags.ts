/**
 * Node flags the server runs with: `npm start`, the Dockerfile, the `tally`
 * bin's shebang, the bench and the tests all start it so. Keep them in step
 * (this list is the one the bench and tests read).
 *
 * --max-semi-space-size=4: V8's young generation grows to 16 MiB per
 * semi-space by default, and on the stream path it stays full of event
 * batches that die young. At 4 MiB the server's peak RSS over a
 * 1,000,000-event stream fell by ~45 MiB for ~10% of the stream rate
 * (README, Performance).
 *
 * --no-allocation-site-pretenuring: under steady unary load V8 decided that
 * the objects of each call (Node's HTTP/2 request and response, headers, our
 * decoded event) outlive the young generation and allocated them straight in
 * the old one, where only a mark-compact frees them: one of 10-25 ms every
 * ~3 s, which set the p99 latency. They die within milliseconds; allocated
 * young, they do (unary p99 at 1,500 calls/s: 8-12 ms against 16-26 ms).
 */
export const serverNodeFlags: readonly string[] = ["--max-semi-space-size=4", "--no-allocation-site-pretenuring"];
