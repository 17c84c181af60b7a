import http from "node:http";

/**
 * Reads the server's committed counters through the Stats RPC in Connect
 * JSON, which every tally serves whatever transport the load used.
 */

/** The counters a load run is checked against. */
export interface ServerCounts {
  received: number;
  uniqueProcessed: number;
  duplicateDropped: number;
  conflicts: number;
}

/** How long a Stats read may take: it reads a WAL snapshot and should answer in milliseconds. */
const statsTimeoutMs = 10_000;

/**
 * One Stats call on a connection of its own, closed after the answer. A
 * pooled keep-alive connection (fetch's) would stay open idle, and an idle
 * connection holds a server's graceful shutdown for its whole grace period.
 */
export function readStats(target: string): Promise<ServerCounts> {
  const url = new URL("/aggregator.v1.AggregatorService/Stats", target);
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: "POST", agent: false, headers: { "content-type": "application/json", connection: "close" }, timeout: statsTimeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          if (res.statusCode !== 200) {
            reject(new Error(`Stats answered HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
            return;
          }
          try {
            resolve(countsOf(JSON.parse(text) as Record<string, unknown>));
          } catch (err) {
            reject(err);
          }
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`Stats did not answer within ${statsTimeoutMs} ms`)));
    req.on("error", reject);
    req.end("{}");
  });
}

function countsOf(body: Record<string, unknown>): ServerCounts {
  // 64-bit counters are JSON strings in the protobuf JSON mapping; either field spelling may come back.
  const read = (snake: string, camel: string) => Number(body[snake] ?? body[camel] ?? 0);
  return {
    received: read("received", "received"),
    uniqueProcessed: read("unique_processed", "uniqueProcessed"),
    duplicateDropped: read("duplicate_dropped", "duplicateDropped"),
    conflicts: read("conflicts", "conflicts"),
  };
}

/** What the counters should have moved by, and what they did. */
export interface CountCheck {
  ok: boolean;
  /** One line per counter: expected, got. */
  lines: string[];
}

/**
 * Compares the counters' movement with what a run sent: every acknowledged
 * event received, each distinct one stored once, every other send a
 * duplicate, nothing a conflict (the load never changes a payload).
 */
export function checkCounts(before: ServerCounts, after: ServerCounts, sent: { sends: number; distinct: number }): CountCheck {
  const expected: ServerCounts = { received: sent.sends, uniqueProcessed: sent.distinct, duplicateDropped: sent.sends - sent.distinct, conflicts: 0 };
  const lines: string[] = [];
  let ok = true;
  for (const key of Object.keys(expected) as (keyof ServerCounts)[]) {
    const delta = after[key] - before[key];
    const good = delta === expected[key];
    ok &&= good;
    lines.push(`${good ? "ok  " : "FAIL"} ${key}: expected +${expected[key]}, server counted +${delta}`);
  }
  return { ok, lines };
}
