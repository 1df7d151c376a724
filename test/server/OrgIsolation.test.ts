/**
 * Tenant isolation (I7): two orgs' clients on one topic each receive only their org's rows, in replay and live,
 * and the watermarks they are told (batches, heartbeats) move past the other org's rows, so a persisted
 * watermark never sits below rows the client may not see.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { SqlUpdate } from "../support/Khala.js"
import { range, sqlPublisher, startKhala, token } from "../support/Khala.js"
import type { SyncClient } from "../support/PhoenixClient.js"
import { connectJoined, subscribeOk } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"

const runs = "runtime.run_summaries"

// watermark i belongs to org_b when i % 3 === 0, else to org_a; the last rows of each phase are org_b's
const orgOf = (i: number) => (i % 3 === 0 ? "org_b" : "org_a")
const row = (i: number): SqlUpdate => ({
  docKey: `${orgOf(i)}-doc-${i}`,
  orgId: orgOf(i),
  payload: { i, org: orgOf(i) }
})

/** Heartbeats until the reply reports the watermark; returns it. */
const heartbeatUntil = (client: SyncClient, watermark: number) =>
  Effect.gen(function*() {
    let last: unknown
    for (let attempt = 0; attempt < 200; attempt++) {
      const beat = yield* client.heartbeat
      last = beat.response
      if (beat.response?.watermarks?.[0]?.watermark === watermark) return beat.response
      yield* Effect.sleep("25 millis")
    }
    return yield* Effect.die(new Error(`heartbeat never reported ${watermark}: ${JSON.stringify(last)}`))
  })

describe.skipIf(!postgresAvailable)("org isolation", () => {
  it.live(
    "each org receives only its rows; batch and heartbeat watermarks move past skipped rows",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { server } = yield* startKhala(db.url)
        const sql = yield* sqlPublisher(db.url)
        // replay phase: 1..12, ending with an org_b row (12)
        yield* sql.publishAll(range(1, 12).map(row))

        const a =
          (yield* connectJoined({ port: server.port, token: yield* token({ org: "org_a", scopes: [runs] }) })).client
        const b =
          (yield* connectJoined({ port: server.port, token: yield* token({ org: "org_b", scopes: [runs] }) })).client
        yield* subscribeOk(a, { topics: [runs] })
        yield* subscribeOk(b, { topics: [runs] })
        const aEnd = yield* a.waitForReplayComplete(runs)
        const bEnd = yield* b.waitForReplayComplete(runs)
        expect(a.watermarks(runs)).toEqual(range(1, 12).filter((i) => orgOf(i) === "org_a"))
        expect(b.watermarks(runs)).toEqual([3, 6, 9, 12])
        // org_a's last visible row is 11, yet its replay is caught up through 12
        expect(aEnd.watermarks).toEqual([{ topic: runs, watermark: 12 }])
        expect(bEnd.watermarks).toEqual([{ topic: runs, watermark: 12 }])
        expect(a.persisted(runs)).toBe(12)

        // live phase: 13..30, again ending with org_b rows (30)
        yield* sql.publishAll(range(13, 30).map(row))
        yield* a.waitForWatermark(runs, 29)
        yield* b.waitForWatermark(runs, 30)
        const expectedA = range(1, 30).filter((i) => orgOf(i) === "org_a")
        const expectedB = range(1, 30).filter((i) => orgOf(i) === "org_b")
        expect(a.watermarks(runs)).toEqual(expectedA)
        expect(b.watermarks(runs)).toEqual(expectedB)
        expect(a.updates(runs).every((u) => (u.payload as any).org === "org_a" && u.doc_key.startsWith("org_a-"))).toBe(
          true
        )
        expect(b.updates(runs).every((u) => (u.payload as any).org === "org_b" && u.doc_key.startsWith("org_b-"))).toBe(
          true
        )

        // org_a is caught up through 30 although its last row is 29: heartbeats say so
        const beatA = yield* heartbeatUntil(a, 30)
        expect(beatA.watermarks).toEqual([{ topic: runs, watermark: 30 }])
        const beatB = yield* heartbeatUntil(b, 30)
        expect(beatB.watermarks).toEqual([{ topic: runs, watermark: 30 }])
        // batch watermarks never run behind the client's own updates
        for (const client of [a, b]) {
          for (const batch of client.batches) {
            const through = batch.watermarks?.[0]?.watermark ?? 0
            for (const u of batch.updates) expect(u.watermark).toBeLessThanOrEqual(through)
          }
        }

        // a run of only org_b rows: org_a receives nothing, but its heartbeat watermark moves to the head
        yield* sql.publishAll(
          range(31, 33).map((i) => ({ docKey: `org_b-only-${i}`, orgId: "org_b", payload: { i, org: "org_b" } }))
        )
        yield* b.waitForWatermark(runs, 33)
        expect(yield* heartbeatUntil(a, 33)).toEqual(
          expect.objectContaining({ watermarks: [{ topic: runs, watermark: 33 }] })
        )
        expect(a.watermarks(runs)).toEqual(expectedA)

        // a new org_a client resuming from the persisted (skipped-past) watermark gets exactly the later org_a rows
        yield* sql.publishAll([{ docKey: "org_a-late", orgId: "org_a", payload: { org: "org_a" } }])
        const resumed =
          (yield* connectJoined({ port: server.port, token: yield* token({ org: "org_a", scopes: [runs] }) })).client
        yield* subscribeOk(resumed, { topics: [runs], resume_after: { [runs]: 33 } })
        yield* resumed.waitForWatermark(runs, 34)
        expect(resumed.watermarks(runs)).toEqual([34])
        expect(a.errors.concat(b.errors, resumed.errors)).toEqual([])
      })),
    { timeout: 180_000 }
  )
})
