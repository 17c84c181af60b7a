import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { scratchEnv } from "./support/server.js";

/**
 * Tests drive the compiled server (and the compiled bench tools) as users run
 * them, so both are built once before any test starts. Their databases go
 * under one scratch directory, removed when the run ends, so runs do not pile
 * up files in /tmp.
 */
export default function setup(): () => void {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..");
  const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
  for (const project of [join(root, "src", "tsconfig.json"), join(root, "src", "tools", "tsconfig.json")]) {
    execFileSync(process.execPath, [tsc, "-p", project], { cwd: root, stdio: "inherit" });
  }
  const scratch = mkdtempSync(join(tmpdir(), "tally-tests-"));
  process.env[scratchEnv] = scratch;
  return () => {
    try {
      rmSync(scratch, { recursive: true, force: true });
    } catch (err) {
      // A file system a failed test left mounted there (storage-faults) must not hide that test's own failure.
      console.warn(`could not remove ${scratch}: ${(err as Error).message}`);
    }
  };
}
