import type { ScenarioResult } from "../measurement.js";
import { againstStub } from "../scenarios.js";
import { renderChart, type Series } from "./svg-chart.js";

/** One line per transport (and stream concurrency), the raw ceiling dashed, one panel per durability. */
const seriesStyle: { name: string; color: string; dashed?: boolean; pick: (r: ScenarioResult) => boolean }[] = [
  { name: "raw ceiling (server pragmas)", color: "#222222", dashed: true, pick: (r) => r.scenario.kind === "raw" && r.scenario.pragmas === "tuned" },
  { name: "raw, SQLite default pragmas", color: "#999999", dashed: true, pick: (r) => r.scenario.kind === "raw" && r.scenario.pragmas === "defaults" },
  { name: "gRPC stream, 1 stream", color: "#1f77b4", pick: (r) => r.scenario.kind === "load" && r.scenario.transport === "grpc-stream" && r.scenario.concurrency === 1 },
  { name: "gRPC stream, 4 streams", color: "#17becf", pick: (r) => r.scenario.kind === "load" && r.scenario.transport === "grpc-stream" && r.scenario.concurrency === 4 },
  { name: "gRPC unary", color: "#d62728", pick: (r) => r.scenario.kind === "load" && r.scenario.transport === "grpc" },
  { name: "Connect JSON unary", color: "#9467bd", pick: (r) => r.scenario.kind === "load" && r.scenario.transport === "connect" },
  { name: "REST POST /publish", color: "#2ca02c", pick: (r) => r.scenario.kind === "load" && r.scenario.transport === "rest" },
];

/** Throughput against batch size per transport, the median run of each scenario. */
export function throughputChart(results: ScenarioResult[]): string {
  const passes = [...new Set(results.map((r) => r.pass))];
  return renderChart({
    title: "tally: events/s by batch size (events per message, call or transaction)",
    xLabel: "batch size (log scale)",
    yLabel: "events/s (acknowledged)",
    panels: passes.map((pass) => ({
      title: `durability ${pass}`,
      series: seriesStyle.map(
        (style): Series => ({
          name: style.name,
          color: style.color,
          ...(style.dashed !== undefined && { dashed: style.dashed }),
          points: results
            .filter((r) => r.pass === pass && style.pick(r) && r.ok && !againstStub(r.scenario))
            .map((r) => ({ x: r.scenario.batch, y: r.median.eventsPerSecond })),
        }),
      ),
    })),
  });
}
