import { describe, expect, it } from "vitest";
import { JsonWeigher } from "../../src/codec/json-weight.js";

function weigh(...parts: string[]): number {
  const weigher = new JsonWeigher();
  for (const part of parts) weigher.push(Buffer.from(part));
  return weigher.heapBytes;
}

describe("JsonWeigher", () => {
  it("weighs structure far above its bytes: a million empty objects outweigh a million numbers", () => {
    const empties = "[" + Array(1000).fill("{}").join(",") + "]";
    const numbers = "[" + Array(1000).fill("1").join(",") + "]";
    expect(weigh(empties)).toBeGreaterThan(4 * weigh(numbers));
    expect(weigh(empties) / empties.length).toBeGreaterThan(20);
  });

  it("weighs brackets, colons and commas inside strings as the string they are in, escaped quotes included", () => {
    expect(weigh('["{[:,]}"]')).toBe(weigh('["abcdef"]'));
    expect(weigh('["a\\"{[:,"]')).toBe(weigh('["abcdef"]'));
    expect(weigh('["\\\\",{}]')).toBeGreaterThan(weigh('["\\\\","x"]'));
  });

  it("weighs a text the same however its bytes are split, even inside an escape", () => {
    const text = '{"events":[{"topic":"a\\"[","payload":{"k":[1,2,{}]}}]}';
    const whole = weigh(text);
    for (let cut = 1; cut < text.length; cut++) expect(weigh(text.slice(0, cut), text.slice(cut))).toBe(whole);
  });
});
