import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { serverNodeFlags } from "../../src/app/node-flags.js";

/** Every way the project starts the server must pass the same Node flags (src/app/node-flags.ts). */
const root = new URL("../../", import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), "utf8");

describe("server Node flags", () => {
  it("are the same in npm start, the bin's shebang and the Dockerfile as in node-flags.ts", () => {
    const flags = serverNodeFlags.join(" ");
    const start = (JSON.parse(read("package.json")) as { scripts: Record<string, string> }).scripts.start;
    expect(start).toBe(`node ${flags} dist/src/app/main.js`);
    expect(read("src/app/main.ts").split("\n", 1)[0]).toBe(`#!/usr/bin/env -S node ${flags}`);
    const cmd = /^CMD (\[.*\])$/m.exec(read("Dockerfile"))?.[1];
    expect(JSON.parse(cmd ?? "null")).toEqual(["node", ...serverNodeFlags, "dist/src/app/main.js"]);
  });
});
