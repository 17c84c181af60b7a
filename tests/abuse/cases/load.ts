import { create, toBinary } from "@bufbuild/protobuf";
import http from "node:http";
import { expect } from "vitest";
import { PublishRequestSchema } from "../../../gen/aggregator/v1/aggregator_pb.js";
import { makeEvent } from "../../support/events.js";
import { grpcFrame } from "../../support/raw-http.js";
import { grpcHeaders, grpcStatus, h2Request, h2Session, hold, httpRequest, restEvent, seedRest, type HttpOptions } from "../clients.js";
import { abuseCase, attackerAddress, caseTimeoutMs, holdMs, runCase, scale } from "../harness.js";

const MiB = 1024 * 1024;

interface LoopFigures {
  calls: number;
  errors: number;
  worstMs: number;
  largestBytes: number;
}

/** Repeats one request on a keep-alive connection from `localAddress` until `until()` says stop. */
async function loop(port: number, localAddress: string, request: HttpOptions, until: () => boolean): Promise<LoopFigures> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const figures: LoopFigures = { calls: 0, errors: 0, worstMs: 0, largestBytes: 0 };
  try {
    while (!until()) {
      const started = performance.now();
      try {
        const answer = await httpRequest(port, { ...request, localAddress, agent, timeoutMs: 120_000 });
        if (answer.status !== 200) figures.errors++;
        figures.largestBytes = Math.max(figures.largestBytes, answer.body.length);
      } catch {
        figures.errors++;
      }
      figures.calls++;
      figures.worstMs = Math.max(figures.worstMs, Math.round(performance.now() - started));
    }
  } finally {
    agent.destroy();
  }
  return figures;
}

/**
 * Case 6, expensive queries in parallel: 100,000 distinct topics (1,000,000
 * long), then concurrent loops of Stats (REST and Connect), whose answer
 * names every topic, and of Events filtered on a source no event has, which
 * no index serves, so each call scans the table.
 */
export function expensiveQueries(): void {
  abuseCase(
    "6. expensive queries in parallel: Stats over 100k topics, Events filtered on an unindexed field",
    { args: ["--durability", "normal"], timeout: caseTimeoutMs(90, 900) },
    async (server) => {
      const topics = scale(100_000, 1_000_000);
      await seedRest(
        server,
        Array.from({ length: topics }, (_, i) => restEvent(`topic-${i}`, "e", { i })),
        10_000,
      );
      return runCase("6 expensive-queries", server, async () => {
        let stop = false;
        const until = () => stop;
        const restStats: HttpOptions = { path: "/stats" };
        const connectStats: HttpOptions = { method: "POST", path: "/aggregator.v1.AggregatorService/Stats", headers: { "content-type": "application/json" }, body: "{}" };
        const restScan: HttpOptions = { path: "/events?source=nobody&limit=1000" };
        const connectScan: HttpOptions = {
          method: "POST",
          path: "/aggregator.v1.AggregatorService/Events",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ source: "nobody", limit: 1000 }),
        };
        const plan: [string, HttpOptions][] = [
          ["restStats", restStats],
          ["restStats", restStats],
          ["restStats", restStats],
          ["connectStats", connectStats],
          ["restScan", restScan],
          ["restScan", restScan],
          ["connectScan", connectScan],
        ];
        const running = plan.map(([name, request], i) => loop(server.port, attackerAddress(i), request, until).then((f) => [name, f] as const));
        await hold(holdMs(4, 30));
        stop = true;
        const done = await Promise.all(running);
        const sum = (name: string, pick: (f: LoopFigures) => number, combine: (a: number, b: number) => number) =>
          done.filter(([n]) => n === name).reduce((acc, [, f]) => combine(acc, pick(f)), 0);
        return {
          topics,
          loops: plan.length,
          statsCalls: sum("restStats", (f) => f.calls, (a, b) => a + b) + sum("connectStats", (f) => f.calls, (a, b) => a + b),
          scanCalls: sum("restScan", (f) => f.calls, (a, b) => a + b) + sum("connectScan", (f) => f.calls, (a, b) => a + b),
          errors: done.reduce((acc, [, f]) => acc + f.errors, 0),
          worstStatsMs: Math.max(sum("restStats", (f) => f.worstMs, Math.max), sum("connectStats", (f) => f.worstMs, Math.max)),
          worstScanMs: Math.max(sum("restScan", (f) => f.worstMs, Math.max), sum("connectScan", (f) => f.worstMs, Math.max)),
          restStatsBytes: sum("restStats", (f) => f.largestBytes, Math.max),
          connectStatsBytes: sum("connectStats", (f) => f.largestBytes, Math.max),
        };
      });
    },
    (facts) => expect.soft(Math.max(facts.restStatsBytes, facts.connectStatsBytes), "Stats answer (bytes) bounded: top topics, not all").toBeLessThan(MiB),
  );
}

/**
 * Many tiny concurrent unary calls: a few HTTP/2 connections each keeping
 * hundreds of one-event gRPC Publish calls in flight, a new one as soon as
 * one ends. Each call is cheap; their number is the attack.
 */
export function manyTinyUnaryCalls(): void {
  abuseCase(
    "many tiny concurrent unary calls: hundreds of one-event gRPC Publish calls in flight per connection",
    { timeout: caseTimeoutMs(60, 300) },
    async (server) => {
      const connections = 4;
      const inFlight = scale(250, 1000);
      return runCase("many-tiny-unary-calls", server, async (attackers) => {
        let stop = false;
        const outcomes: Record<string, number> = {};
        let calls = 0;
        let worstMs = 0;
        const sessions = attackers.open(connections, (address) => h2Session(server.port, address));
        const workers = sessions.flatMap((session) =>
          Array.from({ length: inFlight }, async () => {
            while (!stop && !session.closed && !session.destroyed) {
              const body = grpcFrame(toBinary(PublishRequestSchema, create(PublishRequestSchema, { events: [makeEvent({ topic: "tiny" })] })));
              const started = performance.now();
              const answer = await h2Request(session, grpcHeaders("Publish"), body);
              worstMs = Math.max(worstMs, performance.now() - started);
              calls++;
              const outcome = answer.rstCode !== 0 ? `rst ${answer.rstCode}` : `grpc-status ${grpcStatus(answer) ?? "none"}`;
              outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
            }
          }),
        );
        await hold(holdMs(4, 60));
        stop = true;
        await Promise.race([Promise.all(workers), hold(15_000)]);
        return { connections, inFlight: connections * inFlight, calls, outcomes, worstCallMs: Math.round(worstMs) };
      });
    },
  );
}
