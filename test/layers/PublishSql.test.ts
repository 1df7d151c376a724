import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"
import * as KhalaPg from "../../src/layers/KhalaPg.js"
import { payloadHash } from "../../src/protocol/PayloadHashNode.js"
import { layerTestDatabase, postgresAvailable } from "../support/Postgres.js"

const sqlState = (error: unknown) => ((error as { cause?: { code?: string } }).cause?.code)

const migrated = KhalaPg.layer().pipe(Layer.provideMerge(layerTestDatabase()), Layer.orDie)

describe.skipIf(!postgresAvailable)("khala.publish from plain SQL", () => {
  layer(migrated, { excludeTestServices: true, timeout: 60_000 })((it) => {
    it.effect("returns the watermark, or NULL when the version is not newer", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const publish = (key: string, version: number) =>
          sql<{ w: string | null }>`
            select khala.publish('runtime.notifications', ${key}, ${version}, 'org', '{"b":1,"a":[1.50]}'::jsonb) as w`
            .pipe(Effect.map((rows) => rows[0]!.w))
        expect(yield* publish("n1", 2)).toBe("1")
        expect(yield* publish("n1", 2)).toBeNull()
        expect(yield* publish("n1", 1)).toBeNull()
        expect(yield* publish("n1", 3)).toBe("2")
        const [row] = yield* sql<{ hash: Uint8Array; pointer: boolean }>`
          select payload_hash as hash, payload is null as pointer from khala.sync_stream_events where watermark = 2
            and topic = 'runtime.notifications'`
        expect(`sha256:${Buffer.from(row!.hash).toString("hex")}`).toBe(
          Either.getOrThrow(payloadHash({ a: [1.5], b: 1 }))
        )
        const [pointer] = yield* sql<{ w: string }>`
          select khala.publish('runtime.notifications', 'n2', 1, 'org', '{}'::jsonb, pointer => true) as w`
        const [stored] = yield* sql<{ pointer: boolean }>`
          select payload is null as pointer from khala.sync_stream_events
           where topic = 'runtime.notifications' and watermark = ${pointer!.w}`
        expect(stored!.pointer).toBe(true)
      }))

    it.effect("refuses unknown topics and empty keys with Khala's SQLSTATEs", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const unknown = yield* Effect.flip(sql`select khala.publish('nope.topic', 'k', 1, 'org', '{}'::jsonb)`)
        expect(sqlState(unknown)).toBe("KH001")
        const emptyKey = yield* Effect.flip(sql`select khala.publish('runtime.notifications', '', 1, 'org', '{}')`)
        expect(sqlState(emptyKey)).toBe("KH002")
        const emptyOrg = yield* Effect.flip(sql`select khala.publish('runtime.notifications', 'k', 1, '', '{}')`)
        expect(sqlState(emptyOrg)).toBe("KH002")
      }))

    it.effect("publish_batch applies in order and validates every update before writing any", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const batch = (updates: unknown) =>
          sql<{ w: ReadonlyArray<string | null> }>`select khala.publish_batch(${JSON.stringify(updates)}::jsonb) as w`
            .pipe(Effect.map((rows) => rows[0]!.w))
        const update = (key: string, version: number, extra: object = {}) => ({
          topic: "runtime.codex_worker_events",
          doc_key: key,
          doc_version: version,
          org_id: "org",
          payload: { key },
          ...extra
        })
        expect(yield* batch([update("a", 1), update("a", 1), update("b", 1), update("a", 2)])).toEqual([
          "1",
          null,
          "2",
          "3"
        ])
        const badHash = yield* Effect.flip(batch([update("c", 1), update("d", 1, { payload_hash: "sha256:zz" })]))
        expect(sqlState(badHash)).toBe("KH002")
        const badVersion = yield* Effect.flip(batch([update("c", 1), update("d", 1.5)]))
        expect(sqlState(badVersion)).toBe("KH002")
        const [head] = yield* sql<{ head: string }>`
          select next_watermark as head from khala.sync_topic_sequences where topic = 'runtime.codex_worker_events'`
        expect(head!.head).toBe("3")
      }))
  })
})
