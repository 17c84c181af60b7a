import { describe, expect, it } from "vitest";
import { MemoryBudget } from "../../src/limits/memory-budget.js";
import { drainMicrotasks, never, watch } from "../support/promises.js";

const MiB = 1024 * 1024;

describe("MemoryBudget", () => {
  it("gives shares while they fit and refuses the one that does not", () => {
    const budget = new MemoryBudget(10 * MiB);
    const a = budget.tryTake(6 * MiB);
    expect(a).toBeDefined();
    expect(budget.tryTake(5 * MiB)).toBeUndefined();
    expect(budget.usedBytes).toBe(6 * MiB);
    a!.release();
    expect(budget.tryTake(5 * MiB)).toBeDefined();
  });

  it("gives a share back once, however often it is released", () => {
    const budget = new MemoryBudget(MiB);
    const a = budget.tryTake(MiB)!;
    a.release();
    a.release();
    expect(budget.usedBytes).toBe(0);
  });

  it("makes waiters wait in arrival order and wakes them as shares come back", async () => {
    const budget = new MemoryBudget(10 * MiB);
    const hog = budget.tryTake(10 * MiB)!;
    const first = watch(budget.take(6 * MiB, never));
    const second = watch(budget.take(4 * MiB, never));
    await drainMicrotasks();
    expect(first.settled()).toBe(false);
    expect(second.settled()).toBe(false);
    hog.release();
    await drainMicrotasks();
    expect(first.settled()).toBe(true);
    expect(second.settled()).toBe(true);
    expect(budget.usedBytes).toBe(10 * MiB);
  });

  it("does not let a large share pass a waiter, but lets a small one through if it fits", async () => {
    const budget = new MemoryBudget(10 * MiB);
    budget.tryTake(5 * MiB);
    const waiting = watch(budget.take(6 * MiB, never));
    await drainMicrotasks();
    expect(waiting.settled()).toBe(false);
    expect(budget.tryTake(2 * MiB), "a large share queues behind the waiter").toBeUndefined();
    expect(budget.tryTake(16 * 1024), "a small one fits and passes").toBeDefined();
  });

  it("drops a waiter whose signal aborts, and lets the ones behind it go on", async () => {
    const budget = new MemoryBudget(10 * MiB);
    const hog = budget.tryTake(8 * MiB)!;
    const abort = new AbortController();
    const big = watch(budget.take(9 * MiB, abort.signal));
    const small = watch(budget.take(2 * MiB, never));
    await drainMicrotasks();
    expect(small.settled(), "waits behind the larger share").toBe(false);
    abort.abort(new Error("client went away"));
    await expect(big.promise).rejects.toThrow("client went away");
    await drainMicrotasks();
    expect(small.settled()).toBe(true);
    hog.release();
    expect(budget.usedBytes).toBe(2 * MiB);
  });

  it("clamps a share larger than the whole budget, so it waits for an empty budget instead of forever", async () => {
    const budget = new MemoryBudget(MiB);
    const other = budget.tryTake(1024)!;
    const huge = watch(budget.take(100 * MiB, never));
    await drainMicrotasks();
    expect(huge.settled()).toBe(false);
    other.release();
    const share = await huge.promise;
    expect(share.bytes).toBe(MiB);
  });

  it("splits a share into two given back apart, the budget counting each once", () => {
    const budget = new MemoryBudget(10 * MiB);
    const whole = budget.tryTake(6 * MiB)!;
    const part = whole.split(2 * MiB);
    expect([whole.bytes, part.bytes]).toEqual([4 * MiB, 2 * MiB]);
    whole.release();
    expect(budget.usedBytes).toBe(2 * MiB);
    part.release();
    part.release();
    expect(budget.usedBytes).toBe(0);
  });
});
