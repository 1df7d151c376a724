/**
 * Retention never silently loses data (I8): after `khala retention prune`, a resume below the floor is refused with
 * `stale_cursor` (reply and `sync:error` push), never a partial replay, even when every row was pruned; a resume
 * at or above the floor replays the rest.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { range, sqlPublisher, startKhala, token } from "../support/Khala.js"
import { connectJoined, subscribeOk, waitUntil } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import { runCli } from "../support/Processes.js"

const runs = "runtime.run_summaries"
const notes = "runtime.notifications"

describe.skipIf(!postgresAvailable)("stale cursors after retention", () => {
  it.live(
    "resume below the retention floor: stale_cursor reply and push; at the floor: the rest",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { env, server } = yield* startKhala(db.url)
        const sql = yield* sqlPublisher(db.url)
        yield* sql.publishAll(range(1, 8).map((i) => ({ docKey: `r${i}`, payload: { i } })))
        yield* sql.publishAll(range(1, 3).map((i) => ({ topic: notes, docKey: `n${i}`, payload: { i } })))

        const pruned = yield* runCli(["retention", "prune", "--topic", runs, "--before-watermark", "5"], env)
        expect(pruned.code).toBe(0)
        expect(pruned.stdout).toContain("retention floor is now 5")

        const { client } = yield* connectJoined({
          port: server.port,
          token: yield* token({ org: "org_a", scopes: [runs, notes] })
        })
        const stale = yield* client.subscribe({
          topics: [runs, notes],
          resume_after: [{ topic: runs, watermark: 2 }, { topic: notes, watermark: 0 }],
          request_id: "resume-1"
        })
        expect(stale.status).toBe("error")
        expect(stale.response).toMatchObject({
          code: "stale_cursor",
          full_resync_required: true,
          stale_topics: [{ topic: runs, resume_after: 2, retention_floor: 5 }],
          request_id: "resume-1"
        })
        yield* waitUntil("a sync:error push", () => client.errors.length > 0)
        expect(client.errors[0]).toMatchObject({
          code: "stale_cursor",
          full_resync_required: true,
          stale_topics: [{ topic: runs, resume_after: 2, retention_floor: 5 }]
        })
        // the whole request was refused: not even the fresh topic started replaying (no partial replay)
        yield* Effect.sleep("200 millis")
        expect(client.batches).toEqual([])

        // the enum form is reported as given
        const staleEnum = yield* client.subscribe({
          topics: ["SYNC_TOPIC_RUNTIME_RUN_SUMMARIES"],
          resume_after: { SYNC_TOPIC_RUNTIME_RUN_SUMMARIES: 4 }
        })
        expect(staleEnum.response).toMatchObject({
          code: "stale_cursor",
          stale_topics: [{ topic: "SYNC_TOPIC_RUNTIME_RUN_SUMMARIES", resume_after: 4, retention_floor: 5 }]
        })

        // at the floor: exactly the rows after it
        yield* subscribeOk(client, { topics: [runs], resume_after: { [runs]: 5 } })
        yield* client.waitForWatermark(runs, 8)
        expect(client.watermarks(runs)).toEqual([6, 7, 8])
      })),
    { timeout: 180_000 }
  )

  it.live(
    "every row pruned: the floor still refuses old cursors; a cursor at the floor goes live",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { env, server } = yield* startKhala(db.url)
        const sql = yield* sqlPublisher(db.url)
        yield* sql.publishAll(range(1, 4).map((i) => ({ docKey: `r${i}`, payload: { i } })))
        // past the head: capped at the head, every row goes
        const pruned = yield* runCli(["retention", "prune", "--topic", runs, "--before-watermark", "100"], env)
        expect(pruned.code).toBe(0)
        expect(pruned.stdout).toContain("retention floor is now 4")

        const { client } = yield* connectJoined({
          port: server.port,
          token: yield* token({ org: "org_a", scopes: [runs] })
        })
        const stale = yield* client.subscribe({ topics: [runs], resume_after: { [runs]: 3 } })
        expect(stale).toEqual({
          status: "error",
          response: expect.objectContaining({
            code: "stale_cursor",
            full_resync_required: true,
            stale_topics: [{ topic: runs, resume_after: 3, retention_floor: 4, epoch: expect.any(String) }]
          })
        })
        yield* waitUntil("a sync:error push", () => client.errors.length > 0)
        expect(client.errors[0].code).toBe("stale_cursor")

        yield* subscribeOk(client, { topics: [runs], resume_after: { [runs]: 4 } })
        const end = yield* client.waitForReplayComplete(runs)
        expect(end.updates).toEqual([])
        yield* sql.publish({ docKey: "r5", payload: { i: 5 } })
        yield* client.waitForWatermark(runs, 5)
        expect(client.watermarks(runs)).toEqual([5])
      })),
    { timeout: 180_000 }
  )
})
