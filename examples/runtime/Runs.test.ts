import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer } from "effect"
import { Documents, EmbeddedPostgres, Journal, KhalaMemory, KhalaPg } from "khala"
import * as Runs from "./Runs.js"

const run = (status: Runs.Run["status"], version: number) =>
  new Runs.Run({ id: "run_1", orgId: "org_a", status, version })

describe("example runtime", () => {
  // The runtime's own unit test: its projection on Khala's memory layers, no database needed.
  it.effect("projects a run's summary, newest version wins", () =>
    Effect.gen(function*() {
      expect(yield* Runs.projectRun(run("running", 1))).toMatchObject({ _tag: "Appended", watermark: 1 })
      expect(yield* Runs.projectRun(run("queued", 0))).toMatchObject({ _tag: "NotNewer" })
      const page = yield* (yield* Journal).read("runtime.run_summaries", 0, 10)
      expect(page.rows.map((r) => r.payload)).toEqual([{ run_id: "run_1", status: "running" }])
    }).pipe(Effect.provide(KhalaMemory.layer())))

  // Composition with a real database: the authority row and the summary commit or roll back together.
  it.scoped("writes its authority row and publishes in one transaction", () =>
    Effect.gen(function*() {
      yield* Runs.migrate
      const sql = yield* SqlClient.SqlClient
      const runs = yield* Runs.Runs
      yield* runs.save(run("running", 1))
      // the runtime's enclosing transaction fails after the save published: nothing of it may remain
      const failed = yield* sql.withTransaction(
        Effect.zipRight(runs.save(run("failed", 2)), Effect.fail("boom"))
      ).pipe(Effect.exit)
      expect(Exit.isFailure(failed)).toBe(true)
      const page = yield* (yield* Journal).read("runtime.run_summaries", 0, 10)
      expect(page.rows.map((r) => r.docVersion)).toEqual([1])
      const doc = yield* (yield* Documents).get("runtime.run_summaries", "org_a", "org_a:run_1")
      expect(doc._tag === "Some" && doc.value.payload).toEqual({ run_id: "run_1", status: "running" })
    }).pipe(
      Effect.provide(Runs.layer.pipe(
        Layer.provideMerge(KhalaPg.layerWith()),
        Layer.provideMerge(EmbeddedPostgres.layerInMemory)
      ))
    ), { timeout: 60_000 })
})

describe("example runtime program", () => {
  it.live("runs end to end on the embedded database", () =>
    Effect.promise(async () => {
      const { execFile } = await import("node:child_process")
      const { mkdtemp, rm } = await import("node:fs/promises")
      const { tmpdir } = await import("node:os")
      const dataDir = await mkdtemp(`${tmpdir()}/khala-example-`)
      try {
        const stdout = await new Promise<string>((resolve, reject) =>
          execFile(
            process.execPath,
            ["--import", "tsx", new URL("./main.ts", import.meta.url).pathname],
            { env: { ...process.env, KHALA_DATA_DIR: dataDir, DATABASE_URL: "" } },
            (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out))
          )
        )
        const printed = stdout.split("\n").filter((line) => line !== "" && !line.startsWith("[")) // minus log lines
        expect(printed).toEqual([
          `1 org_a:run_1 {"run_id":"run_1","status":"running"}`,
          `2 org_a:run_1 {"run_id":"run_1","status":"succeeded"}`
        ])
      } finally {
        await rm(dataDir, { recursive: true, force: true })
      }
    }), { timeout: 60_000 })
})
