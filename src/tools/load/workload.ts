/**
 * The send order of a load run: which event each send carries. Events are
 * numbered, and everything about event i (id, topic, payload) follows from
 * the seed and i (see events.ts), so a workload is one Int32Array however
 * large it is, and the bench and the publisher send the same events for the
 * same seed.
 */

/** What a run sends: `sends` events, a `dupRate` share of them re-sends of earlier ones. */
export interface WorkloadSpec {
  /** Decides the event ids and payloads (events.ts) and the shuffle. */
  seed: number;
  sends: number;
  /** Share of sends that re-send an event already in the run, 0 <= dupRate < 1. */
  dupRate: number;
  /** Number of the first event; runs against one database use disjoint ranges so their ids stay fresh. */
  indexBase: number;
}

/** The send order and how many distinct events it holds. */
export interface Workload {
  spec: WorkloadSpec;
  /** Event number of each send, in send order. */
  order: Int32Array;
  /** Distinct events in `order`: indexBase .. indexBase + unique - 1, each first sent in that order. */
  unique: number;
}

/** Distinct events a workload of `sends` holds: the rest are re-sends. */
export function uniqueCount(sends: number, dupRate: number): number {
  if (sends === 0) return 0;
  return Math.max(1, Math.round(sends * (1 - dupRate)));
}

/**
 * Each send is a new event or, for a `dupRate` share of them placed at
 * random, a re-send of an event sent earlier. Re-sends are spread over the
 * whole run, so a run cut short (--duration) still re-sends its share, and
 * each one really comes after its original, as a producer's retry does.
 */
export function buildWorkload(spec: WorkloadSpec): Workload {
  if (!(spec.dupRate >= 0 && spec.dupRate < 1)) throw new RangeError(`dupRate must be in [0, 1), got ${spec.dupRate}`);
  const unique = uniqueCount(spec.sends, spec.dupRate);
  const random = seededRandom(spec.seed ^ 0x5bd1e995);
  const resend = new Uint8Array(spec.sends);
  resend.fill(1, unique);
  for (let i = resend.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = resend[i]!;
    resend[i] = resend[j]!;
    resend[j] = t;
  }
  // The first send has nothing earlier to re-send.
  if (resend[0] === 1) {
    const firstNew = resend.indexOf(0);
    resend[0] = 0;
    resend[firstNew] = 1;
  }
  const order = new Int32Array(spec.sends);
  let fresh = 0;
  for (let s = 0; s < spec.sends; s++) {
    order[s] = spec.indexBase + (resend[s] === 0 ? fresh++ : Math.floor(random() * fresh));
  }
  return { spec, order, unique };
}

/**
 * Counts the distinct events among the sends that were acknowledged. A run
 * cut short (--duration, a time budget) sends a subset, whose expected
 * unique count is no longer the workload's.
 */
export class DistinctCounter {
  private readonly seen: Uint8Array;
  /** Distinct events marked so far. */
  distinct = 0;
  /** Sends marked so far. */
  sends = 0;

  constructor(private readonly workload: Workload) {
    this.seen = new Uint8Array(workload.unique);
  }

  /** Marks sends [from, to) of the order as acknowledged. */
  mark(from: number, to: number): void {
    const { order, spec } = this.workload;
    for (let s = from; s < to; s++) {
      const k = order[s]! - spec.indexBase;
      if (this.seen[k] === 0) {
        this.seen[k] = 1;
        this.distinct++;
      }
    }
    this.sends += to - from;
  }
}

/**
 * mulberry32: a tiny seeded generator. Math.random cannot be seeded, and a
 * reproducible order lets two runs (or --runs N) send exactly the same thing.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
