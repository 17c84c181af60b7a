/**
 * The bench's floors: each stub must answer like tally for the load
 * generator to measure the same path (a real gRPC client reads the gRPC
 * stub's answer as a PublishResponse with one accepted event; the REST stub
 * answers as POST /publish does), and the runs the bench makes against them
 * must see every call answered OK.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PublishResult_Status } from "../../gen/aggregator/v1/aggregator_pb.js";
import { makeBatches } from "../../src/tools/load/batches.js";
import { EventCache } from "../../src/tools/load/event-cache.js";
import { runLoad, type LoadSpec } from "../../src/tools/load/run-load.js";
import { RunRecord } from "../../src/tools/load/run-record.js";
import { buildWorkload } from "../../src/tools/load/workload.js";
import { grpcClient } from "../support/clients.js";
import { jsonEvent, makeEvent } from "../support/events.js";

const stubEntry = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "dist", "tools", "src", "tools", "bench", "stub-server.js");

/** Starts the stub with `args`; resolves with the process and its URL once it says it listens. */
async function startStub(args: string[]): Promise<{ stub: ChildProcess; url: string }> {
  const stub = spawn(process.execPath, [stubEntry, ...args], { stdio: ["ignore", "pipe", "inherit"] });
  const [line] = (await once(createInterface({ input: stub.stdout! }), "line")) as [string];
  const listening = JSON.parse(line) as { msg: string; port: number };
  expect(listening.msg).toBe("listening");
  return { stub, url: `http://127.0.0.1:${listening.port}` };
}

/** 300 sends of the bench's workload; every one must be answered OK, one call each. */
async function loadRun(spec: LoadSpec): Promise<void> {
  const workload = buildWorkload({ seed: 7, sends: 300, dupRate: 0.2, indexBase: 0 });
  const record = new RunRecord(workload);
  const batches = makeBatches(spec.transport, workload, 1, new EventCache(7, 4, 0));
  const result = await runLoad(spec, batches, record);
  expect(result.statusCodes).toEqual({ OK: 300 });
  expect(result.sends).toBe(300);
  expect(result.latency.count).toBe(300);
}

async function stopsCleanly(stub: ChildProcess): Promise<void> {
  const exited = once(stub, "exit");
  stub.kill("SIGTERM");
  expect((await exited)[0]).toBe(0);
}

describe("latency floor stub (gRPC)", () => {
  let stub: ChildProcess;
  let url: string;
  beforeAll(async () => ({ stub, url } = await startStub([])));
  afterAll(() => {
    if (stub.exitCode === null) stub.kill("SIGKILL");
  });

  it("answers a gRPC Publish as tally answers a new event", async () => {
    const response = await grpcClient(url).publish({ events: [makeEvent()] });
    expect(response.accepted).toBe(1);
    expect(response.results.map((r) => r.status)).toEqual([PublishResult_Status.ACCEPTED]);
  });

  it("answers every call of an open-loop run OK, and exits 0 on SIGTERM", async () => {
    await loadRun({ target: url, transport: "grpc", concurrency: 100, rate: 3_000, openLoop: true });
    await stopsCleanly(stub);
  });
});

describe("REST floor stub (HTTP/1.1)", () => {
  let stub: ChildProcess;
  let url: string;
  beforeAll(async () => ({ stub, url } = await startStub(["--http1"])));
  afterAll(() => {
    if (stub.exitCode === null) stub.kill("SIGKILL");
  });

  it("answers POST /publish as tally answers a new event", async () => {
    const res = await fetch(`${url}/publish`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(jsonEvent()) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ received: 1, accepted: 1, duplicates: 0, conflicts: 0, results: [{ status: "ACCEPTED", seq: 1 }] });
  });

  it("answers every request of a closed-loop run OK over 100 connections, and exits 0 on SIGTERM", async () => {
    await loadRun({ target: url, transport: "rest", concurrency: 100 });
    await stopsCleanly(stub);
  });
});
