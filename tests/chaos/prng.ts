import { randomInt } from "node:crypto";

/**
 * A small seeded generator (mulberry32), so a failing chaos run can be replayed
 * from the seed it printed. Concurrency still decides how requests interleave;
 * the seed fixes every choice the test makes (batch sizes, re-sends, payloads,
 * when to kill).
 */
export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  }

  /** Uniform integer in [min, max], both included. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("pick from an empty list");
    return items[Math.floor(this.next() * items.length)]!;
  }

  /**
   * An independent generator for one actor (a producer, the killer), so one
   * actor's choices do not shift when the others interleave differently.
   */
  static derive(seed: number, label: string): Prng {
    let h = seed >>> 0;
    for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x9e3779b1) >>> 0;
    return new Prng(h ^ (h >>> 16));
  }
}

/** TALLY_CHAOS_SEED when set (to replay a run), a fresh random seed otherwise. */
export function chaosSeed(): number {
  const text = process.env.TALLY_CHAOS_SEED;
  if (text === undefined || text === "") return randomInt(0, 2 ** 32 - 1);
  if (!/^\d{1,10}$/.test(text) || Number(text) >= 2 ** 32) throw new Error(`TALLY_CHAOS_SEED must be an integer in [0, 2^32), got "${text}"`);
  return Number(text);
}

/** SIGKILLs per crash run: TALLY_CHAOS_KILLS, or 5 (the short form `npm test` runs). */
export function chaosKills(): number {
  const text = process.env.TALLY_CHAOS_KILLS;
  if (text === undefined || text === "") return 5;
  const kills = Number(text);
  if (!Number.isInteger(kills) || kills < 1) throw new Error(`TALLY_CHAOS_KILLS must be a positive integer, got "${text}"`);
  return kills;
}
