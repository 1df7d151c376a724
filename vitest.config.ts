import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "examples/**/*.test.ts"],
    globalSetup: ["test/support/globalSetup.ts"],
    // generous: many tests start servers and CLI processes, which take seconds each on a busy 2-core machine; the
    // limits only bound how long a test that hangs takes to fail
    testTimeout: 90_000,
    hookTimeout: 180_000,
    pool: "forks",
    // Most suites wait on servers, child processes and Postgres rather than compute: three at once keep two cores
    // busy (vitest's default on two cores is one at a time).
    maxWorkers: 3,
    minWorkers: 1
  }
})
