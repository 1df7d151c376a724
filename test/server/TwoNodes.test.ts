/**
 * Two `khala serve` nodes on one database (design.md §4 signalling, I4): rows published by another process (the CLI,
 * plain SQL) reach subscribers of both nodes, and a client that drops from node A resumes on node B without gap
 * or duplicate. With KHALA_NOTIFY=false on every process, the poll alone still delivers everything.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { range, sqlPublisher, startKhala, token } from "../support/Khala.js"
import { connectJoined, subscribeOk } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import { runCli } from "../support/Processes.js"

const runs = "runtime.run_summaries"

describe.skipIf(!postgresAvailable)("two nodes on one database", () => {
  for (const notify of ["true", "false"] as const) {
    it.live(
      `KHALA_NOTIFY=${notify}: both nodes deliver everything; a client moves from A to B without gap`,
      () =>
        Effect.scoped(Effect.gen(function*() {
          const db = yield* testDatabase
          const extra = { KHALA_NOTIFY: notify }
          const nodeA = yield* startKhala(db.url, extra)
          const nodeB = yield* startKhala(db.url, extra)
          const sql = yield* sqlPublisher(db.url)
          const jwt = yield* token({ org: "org_a", scopes: [runs] })

          const onA = (yield* connectJoined({ port: nodeA.server.port, token: jwt })).client
          const onB = (yield* connectJoined({ port: nodeB.server.port, token: jwt })).client
          yield* subscribeOk(onA, { topics: [runs] })
          yield* subscribeOk(onB, { topics: [runs] })
          yield* onA.waitForReplayComplete(runs)
          yield* onB.waitForReplayComplete(runs)

          // another process publishes with node A's configuration (the CLI), then plain SQL
          const start = Date.now()
          const cli = yield* runCli([
            "publish",
            "--topic",
            runs,
            "--doc-key",
            "from-cli",
            "--doc-version",
            "1",
            "--org",
            "org_a",
            "--payload",
            "{\"via\":\"cli\"}"
          ], nodeA.env)
          expect(cli).toMatchObject({ code: 0, stdout: "1\n" })
          yield* sql.publishAll(range(2, 20).map((i) => ({ docKey: `r${i}`, payload: { i } })))
          yield* onA.waitForWatermark(runs, 20)
          yield* onB.waitForWatermark(runs, 20)
          yield* Effect.logInfo(
            `KHALA_NOTIFY=${notify}: 20 rows delivered on both nodes ${Date.now() - start} ms after the CLI started`
          )
          expect(onA.watermarks(runs)).toEqual(range(1, 20))
          expect(onB.watermarks(runs)).toEqual(range(1, 20))
          expect(onA.updates(runs)[0]).toMatchObject({ doc_key: "from-cli", payload: { via: "cli" } })

          // the client on A drops mid-stream and resumes on B
          const writer = yield* Effect.fork(
            sql.publishAll(range(21, 80).map((i) => ({ docKey: `r${i}`, payload: { i } })))
          )
          yield* onA.waitForWatermark(runs, 30)
          const seen = [...onA.batches]
          yield* onA.disconnect
          const persisted = onA.persisted(runs, seen) ?? 0
          const firstSession = seen.flatMap((b) => b.updates).map((u) => u.watermark)
          expect(firstSession).toEqual(range(1, persisted))

          const moved = (yield* connectJoined({ port: nodeB.server.port, token: jwt })).client
          yield* subscribeOk(moved, { topics: [runs], resume_after: [{ topic: runs, watermark: persisted }] })
          yield* Fiber.join(writer)
          yield* moved.waitForWatermark(runs, 80)
          yield* onB.waitForWatermark(runs, 80)
          expect([...firstSession, ...moved.watermarks(runs)]).toEqual(range(1, 80))
          expect(onB.watermarks(runs)).toEqual(range(1, 80))
          expect(moved.errors.concat(onB.errors)).toEqual([])
          expect([nodeA.server.process.exitCode, nodeB.server.process.exitCode]).toEqual([null, null])
        })),
      { timeout: 180_000 }
    )
  }
})
