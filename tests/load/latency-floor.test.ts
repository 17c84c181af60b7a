/**
 * The bench's latency floor: the stub must answer like tally for the load
 * generator to measure the same path (a real gRPC client reads its answer
 * as a PublishResponse with one accepted event), and the open-loop run the
 * bench makes against it must see every call answered OK.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PublishResult_Status } from "../../gen/aggregator/v1/aggregator_pb.js";
import { makeBatches } from "../../src/cli/load/batches.js";
import { EventCache } from "../../src/cli/load/event-cache.js";
import { runLoad } from "../../src/cli/load/run-load.js";
import { RunRecord } from "../../src/cli/load/run-record.js";
import { buildWorkload } from "../../src/cli/load/workload.js";
import { grpcClient } from "../support/clients.js";
import { makeEvent } from "../support/events.js";

const stubEntry = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "dist", "src", "cli", "bench", "stub-server.js");

let stub: ChildProcess;
let url: string;
beforeAll(async () => {
  stub = spawn(process.execPath, [stubEntry], { stdio: ["ignore", "pipe", "inherit"] });
  const [line] = (await once(createInterface({ input: stub.stdout! }), "line")) as [string];
  const listening = JSON.parse(line) as { msg: string; port: number };
  expect(listening.msg).toBe("listening");
  url = `http://127.0.0.1:${listening.port}`;
});
afterAll(() => {
  if (stub.exitCode === null) stub.kill("SIGKILL");
});

describe("latency floor stub", () => {
  it("answers a gRPC Publish as tally answers a new event", async () => {
    const response = await grpcClient(url).publish({ events: [makeEvent()] });
    expect(response.accepted).toBe(1);
    expect(response.results.map((r) => r.status)).toEqual([PublishResult_Status.ACCEPTED]);
  });

  it("answers every call of an open-loop run OK, and exits 0 on SIGTERM", async () => {
    const workload = buildWorkload({ seed: 7, sends: 300, dupRate: 0.2, indexBase: 0 });
    const record = new RunRecord(workload);
    const batches = makeBatches("grpc", workload, 1, new EventCache(7, 4, 0));
    const result = await runLoad({ target: url, transport: "grpc", concurrency: 100, rate: 3_000, openLoop: true }, batches, record);
    expect(result.statusCodes).toEqual({ OK: 300 });
    expect(result.sends).toBe(300);
    expect(result.latency.count).toBe(300);

    const exited = once(stub, "exit");
    stub.kill("SIGTERM");
    expect((await exited)[0]).toBe(0);
  });
});
