import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import { runCli } from "../support/Processes.js"

const publishArgs = (docKey: string, docVersion: number, payload: string, topic = "runtime.run_summaries") => [
  "publish",
  "--topic",
  topic,
  "--doc-key",
  docKey,
  "--doc-version",
  String(docVersion),
  "--org",
  "org_a",
  "--payload",
  payload
]

describe("khala command line", () => {
  it.live("every command has --help", () =>
    Effect.forEach(
      ["serve", "migrate", "publish", "tail", "topic", "outbox", "audit", "status"],
      (command) =>
        Effect.map(runCli([command, "--help"]), (result) => {
          expect(result.code).toBe(0)
          expect(result.stdout).toContain(command)
        }),
      // each is a process start of a few seconds on a busy machine
      { concurrency: 4 }
    ), { timeout: 270_000 })

  it.live("a bad configuration value is refused with a clear message", () =>
    Effect.map(runCli(["migrate"], { KHALA_DB_MAX_CONNECTIONS: "lots" }), (result) => {
      expect(result.code).toBe(1)
      expect(result.stderr).toContain("KHALA_DB_MAX_CONNECTIONS")
    }))

  it.live("an unreachable DATABASE_URL is one clear line and a failing exit", () =>
    Effect.map(runCli(["migrate"], { DATABASE_URL: "postgres://postgres@127.0.0.1:1/none" }), (result) => {
      expect(result.code).toBe(1)
      expect(result.stderr).toContain("cannot connect to DATABASE_URL")
    }))

  describe.skipIf(!postgresAvailable)("against DATABASE_URL", () => {
    it.live("migrate, publish (dotted and enum names), not-newer, tail", () =>
      Effect.scoped(Effect.gen(function*() {
        const { url } = yield* testDatabase
        const env = { DATABASE_URL: url }
        const first = yield* runCli(["migrate"], env)
        expect(first).toMatchObject({
          code: 0,
          stdout: "applied migrations: 1_journal, 2_faster_publishing, 3_orgs_deletes_epochs, 4_revocations, " +
            "5_outbox, 6_trace_context\n"
        })
        expect((yield* runCli(["migrate"], env)).stdout).toBe("schema khala is up to date\n")

        expect(yield* runCli(publishArgs("run_1", 2, `{"status":"running"}`), env)).toMatchObject({
          code: 0,
          stdout: "1\n"
        })
        const enumName = publishArgs("run_2", 1, `{"n":2}`, "SYNC_TOPIC_RUNTIME_RUN_SUMMARIES")
        expect((yield* runCli([...enumName, "--pointer"], env)).stdout).toBe("2\n")
        const stale = yield* runCli(publishArgs("run_1", 2, `{"status":"again"}`), env)
        expect(stale.code).toBe(0)
        expect(stale.stdout).toContain("not published")

        const tail = yield* runCli(["tail", "--topic", "runtime.run_summaries"], env)
        const rows = tail.stdout.trim().split("\n").map((line) => JSON.parse(line))
        expect(rows).toMatchObject([
          { watermark: 1, doc_key: "run_1", doc_version: 2, payload: { status: "running" }, hydration_required: false },
          { watermark: 2, doc_key: "run_2", payload: null, hydration_required: true }
        ])
        const after = yield* runCli(["tail", "--topic", "runtime.run_summaries", "--after", "1"], env)
        expect(after.stdout.trim().split("\n").map((line) => JSON.parse(line).watermark)).toEqual([2])
        // seven processes, one after another
      })), { timeout: 540_000 })

    it.live(
      "tail --follow prints the journal, then live rows as they are appended",
      () =>
        Effect.scoped(Effect.gen(function*() {
          const { url } = yield* testDatabase
          const env = { DATABASE_URL: url }
          yield* runCli(publishArgs("before", 1, `{"n":1}`), env)
          const follow = yield* runCli(["tail", "--topic", "runtime.run_summaries", "--follow", "--limit", "2"], env)
            .pipe(
              Effect.fork
            )
          // published while the tail follows; --limit 2 ends it once the live row is printed
          yield* Effect.sleep("1500 millis")
          yield* runCli(publishArgs("after", 1, `{"n":2}`), env)
          const result = yield* Fiber.join(follow).pipe(Effect.timeout("20 seconds"))
          expect(result.code).toBe(0)
          expect(result.stdout.trim().split("\n").map((line) => JSON.parse(line).doc_key)).toEqual(["before", "after"])
        })),
      { timeout: 180_000 }
    )

    it.live(
      "publish --delete appends a deleted row; topic reset empties the journal and changes the epoch",
      () =>
        Effect.scoped(Effect.gen(function*() {
          const { url } = yield* testDatabase
          const env = { DATABASE_URL: url }
          expect((yield* runCli(publishArgs("gone", 1, `{"n":1}`), env)).stdout).toBe("1\n")
          const del = ["publish", "--topic", "runtime.run_summaries", "--doc-key", "gone", "--doc-version", "2"]
          expect((yield* runCli([...del, "--org", "org_a", "--delete"], env)).stdout).toBe("2\n")
          const tail = yield* runCli(["tail", "--topic", "runtime.run_summaries"], env)
          expect(tail.stdout.trim().split("\n").map((line) => JSON.parse(line))).toMatchObject([
            { watermark: 1, deleted: false, payload: { n: 1 } },
            { watermark: 2, deleted: true, payload: null, payload_hash: null }
          ])
          const both = yield* runCli([...del, "--org", "org_a", "--delete", "--payload", "{}"], env)
          expect(both).toMatchObject({ code: 1, stderr: expect.stringContaining("--delete takes no --payload") })
          const reset = yield* runCli(["topic", "reset", "--topic", "SYNC_TOPIC_RUNTIME_RUN_SUMMARIES"], env)
          expect(reset.stdout).toMatch(/^reset runtime\.run_summaries: .* epoch is now [0-9a-f-]{36}/)
          expect((yield* runCli(["tail", "--topic", "runtime.run_summaries", "--after", "2"], env)).stdout).toBe("")
          const stale = yield* runCli(["tail", "--topic", "runtime.run_summaries"], env)
          expect(stale).toMatchObject({ code: 1, stderr: expect.stringContaining("below its retention floor 2") })
        })),
      { timeout: 180_000 }
    )

    it.live("bad input fails with one line naming the problem", () =>
      Effect.scoped(Effect.gen(function*() {
        const { url } = yield* testDatabase
        const env = { DATABASE_URL: url }
        const unknown = yield* runCli(publishArgs("k", 1, "{}", "runtime.nope"), env)
        expect(unknown.code).toBe(1)
        expect(unknown.stderr).toContain(`unknown topic "runtime.nope"`)
        const badJson = yield* runCli(publishArgs("k", 1, "{oops"), env)
        expect(badJson.code).toBe(1)
        expect(badJson.stderr).toContain("--payload is not valid JSON")
        const emptyKey = yield* runCli(publishArgs("", 1, "{}"), env)
        expect(emptyKey.code).toBe(1)
        expect(emptyKey.stderr).toContain("docKey must be a non-empty string")
      })), { timeout: 180_000 })

    it.live("migrations are safe when several processes start at once", () =>
      Effect.scoped(Effect.gen(function*() {
        const { url } = yield* testDatabase
        const results = yield* Effect.all(Array.from({ length: 4 }, () => runCli(["migrate"], { DATABASE_URL: url })), {
          concurrency: "unbounded"
        })
        expect(results.map((r) => r.code)).toEqual([0, 0, 0, 0])
        expect(results.filter((r) => r.stdout.includes("applied migrations")).length).toBe(1)
      })), { timeout: 180_000 })
  })
})
