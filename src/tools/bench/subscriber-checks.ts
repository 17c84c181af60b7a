import Database from "better-sqlite3";
import type { FollowerReport } from "./follower.js";

/**
 * The check that makes a subscriber figure count: every subscriber must
 * have received exactly the events stored for it, in seq order, once each.
 * A fast subscriber that misses events is not a result; any mismatch fails
 * the bench, like a miscount of the publishers (verify.ts).
 */

/** The seqs a subscriber should have received, summarized: count, range and sum. */
export interface SeqSet {
  count: number;
  min: number;
  max: number;
  sum: number;
}

/** The seqs a (closed) tally database holds, in all and per topic. */
export function storedSeqs(dbPath: string): { all: SeqSet; byTopic: Map<string, SeqSet> } {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const summary = "count(*) AS count, coalesce(min(seq), 0) AS min, coalesce(max(seq), 0) AS max, coalesce(sum(seq), 0) AS sum";
    const all = db.prepare(`SELECT ${summary} FROM events`).get() as SeqSet;
    const rows = db.prepare(`SELECT topic, ${summary} FROM events GROUP BY topic`).all() as (SeqSet & { topic: string })[];
    return { all, byTopic: new Map(rows.map(({ topic, ...set }) => [topic, set])) };
  } finally {
    db.close();
  }
}

/** The seqs first..last, all of them (a JetStream stream nothing was deleted from). */
export function seqRange(first: number, last: number): SeqSet {
  const count = last >= first ? last - first + 1 : 0;
  return { count, min: count > 0 ? first : 0, max: count > 0 ? last : 0, sum: count > 0 ? ((first + last) * count) / 2 : 0 };
}

/** Details listed per run at most; the rest are counted. */
const maxListed = 5;

/**
 * Every way the subscribers' reports disagree with what they should have
 * received (`expected` gives each one's set; undefined for a topic with
 * nothing stored). Empty when every subscriber got exactly its events.
 */
export function findSubscriberMiscounts(reports: FollowerReport[], expected: (r: FollowerReport) => SeqSet | undefined): string[] {
  const problems: string[] = [];
  for (const [i, r] of reports.entries()) {
    const want = expected(r) ?? { count: 0, min: 0, max: 0, sum: 0 };
    const who = `subscriber ${i + 1}${r.topic === "" ? "" : ` (${r.topic})`}`;
    const wrong: string[] = [];
    if (r.endedEarly !== undefined) wrong.push(r.endedEarly);
    if (r.received !== want.count) wrong.push(`received ${r.received} of ${want.count} events`);
    if (r.notAscending > 0) wrong.push(`${r.notAscending} events not above the seq before (duplicates or reordered)`);
    // Unfiltered, between the stored seqs' ends with none missing: every seq in between must come, one after the other.
    if (r.topic === "" && want.max - want.min + 1 === want.count && r.gaps > 0) wrong.push(`${r.gaps} gaps in seq`);
    if (r.wrongTopic > 0) wrong.push(`${r.wrongTopic} events of other topics`);
    if (r.received > 0 && (r.firstSeq !== want.min || r.lastSeq !== want.max)) wrong.push(`seqs ${r.firstSeq}..${r.lastSeq}, stored ${want.min}..${want.max}`);
    if (r.seqSum !== want.sum) wrong.push(`seq sum ${r.seqSum}, stored ${want.sum}`);
    if (wrong.length > 0) problems.push(`${who}: ${wrong.join(", ")}`);
  }
  if (problems.length <= maxListed) return problems;
  return [...problems.slice(0, maxListed), `and ${problems.length - maxListed} more subscribers miscounted`];
}
