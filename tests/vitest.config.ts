import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    root: new URL("..", import.meta.url).pathname,
    include: ["tests/**/*.test.ts"],
    globalSetup: ["tests/global-setup.ts"],
    // Real servers and real fsyncs: generous per-test time, but no timed assertions.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
