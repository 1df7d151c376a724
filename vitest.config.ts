import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "examples/**/*.test.ts"],
    globalSetup: ["test/support/globalSetup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Most suites wait on servers, child processes and Postgres rather than compute: three at once keep two cores
    // busy (vitest's default on two cores is one at a time).
    maxWorkers: 3,
    minWorkers: 1
  }
})
