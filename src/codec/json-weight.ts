/**
 * What parsing a JSON text will cost, read off its bytes before it is
 * parsed. JSON.parse turns a few bytes into far more heap when the text is
 * mostly structure: measured on Node 20, `[{},{},…]` takes 64 bytes of heap
 * per object (21 per byte of text), a million nested arrays 58 per level
 * (29 per byte), an object of 200,000 keys 87 per key; numbers and short
 * strings take 8. A body's share of the memory budget is taken by this
 * weight when it exceeds the share its size alone gave it. (Depth itself
 * costs no stack: JSON.parse and codec/json-scan.ts both keep their own.)
 */

/** Heap per object or array, per key, and per other value, rounded up from the measurements above. */
const heapPerContainer = 64;
const heapPerKey = 96;
const heapPerValue = 16;

/**
 * Weighs a JSON text as its bytes arrive, in one pass that tells strings
 * apart (quotes and escapes), so a string full of brackets weighs as a
 * string. Text that is not JSON gets a weight all the same; the parser
 * refuses it afterwards.
 */
export class JsonWeigher {
  private containers = 0;
  private keys = 0;
  private values = 0;
  private inString = false;
  private escaped = false;

  push(bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; i++) {
      const c = bytes[i]!;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c) this.escaped = true;
        else if (c === 0x22) this.inString = false;
        continue;
      }
      switch (c) {
        case 0x22:
          this.inString = true;
          break;
        case 0x7b:
        case 0x5b:
          this.containers++;
          break;
        case 0x3a:
          this.keys++;
          break;
        case 0x2c:
          this.values++;
          break;
      }
    }
  }

  /** Heap the parsed text will take, at least. */
  get heapBytes(): number {
    return this.containers * heapPerContainer + this.keys * heapPerKey + (this.values + 1) * heapPerValue;
  }
}
