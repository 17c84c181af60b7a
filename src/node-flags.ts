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
 */
export const serverNodeFlags: readonly string[] = ["--max-semi-space-size=4"];
