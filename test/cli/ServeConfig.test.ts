/**
 * `khala serve` checks its whole configuration before it opens the data directory, the database or a port: a bad
 * value stops it with one line naming the setting, and nothing was touched.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { existsSync } from "node:fs"
import { join } from "node:path"
import { hsKeys } from "../support/Khala.js"
import { freePort, runCli, tempDir } from "../support/Processes.js"

const keyring = hsKeys.map((k) => `${k.kid}:${k.secret}`).join(",")

describe("khala serve configuration", () => {
  it.live("a bad server setting is reported before the database is reached", () =>
    Effect.gen(function*() {
      // nothing listens on port 1: reaching for the database first would fail with "cannot connect"
      const result = yield* runCli(["serve"], {
        DATABASE_URL: "postgres://postgres@127.0.0.1:1/khala",
        KHALA_AUTH_HS256_KEYS: keyring,
        KHALA_PORT: String(yield* freePort),
        KHALA_DRAIN_WINDOW: "soon"
      })
      expect(result.code).toBe(1)
      const lines = result.stderr.trim().split("\n")
      expect(lines).toHaveLength(1)
      expect(lines[0]).toContain("bad configuration")
      expect(lines[0]).toContain("KHALA_DRAIN_WINDOW")
      expect(result.stderr).not.toContain("cannot connect")
    }), { timeout: 90_000 })

  it.live("a trace sample ratio outside 0..1 is one line naming it", () =>
    Effect.gen(function*() {
      const result = yield* runCli(["serve"], {
        DATABASE_URL: "postgres://postgres@127.0.0.1:1/khala",
        KHALA_AUTH_HS256_KEYS: keyring,
        KHALA_PORT: String(yield* freePort),
        KHALA_TRACING: "true",
        KHALA_TRACE_SAMPLE_RATIO: "1.5"
      })
      expect(result.code).toBe(1)
      const lines = result.stderr.trim().split("\n")
      expect(lines).toHaveLength(1)
      expect(lines[0]).toContain("KHALA_TRACE_SAMPLE_RATIO")
      expect(result.stderr).not.toContain("cannot connect")
    }), { timeout: 90_000 })

  it.scoped("a bad port is reported before the embedded database's directory is created", () =>
    Effect.gen(function*() {
      const dataDir = join(yield* tempDir, "data")
      const result = yield* runCli(["serve"], {
        DATABASE_URL: "",
        KHALA_DATA_DIR: dataDir,
        KHALA_AUTH_HS256_KEYS: keyring,
        KHALA_PORT: "not-a-port"
      })
      expect(result.code).toBe(1)
      expect(result.stderr).toContain("KHALA_PORT")
      expect(existsSync(dataDir)).toBe(false)
    }), { timeout: 90_000 })
})
