import type { JsonWeigher } from "../codec/json-weight.js";
import { heapBytesPerWireByte } from "./memory-budget.js";
import type { RequestLease } from "./request-lease.js";

/**
 * Before a JSON text of `wireBytes` is parsed: takes the rest of its share
 * of the memory budget if parsing it will cost more than its size already
 * took (text that is mostly structure: `[{},{},…]`, deep nesting, many keys).
 */
export function holdJsonWeight(lease: RequestLease, weigher: JsonWeigher, wireBytes: number): void {
  const extra = weigher.heapBytes - wireBytes * heapBytesPerWireByte;
  if (extra > 0) lease.hold(extra);
}
