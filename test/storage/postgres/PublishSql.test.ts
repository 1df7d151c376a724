import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Data, Effect, Either, Layer, Runtime } from "effect"
import * as fc from "fast-check"
import * as KhalaPg from "../../../src/layers/KhalaPg.js"
import { payloadHash } from "../../../src/protocol/PayloadHashNode.js"
import { layerTestDatabase, postgresAvailable } from "../../support/Postgres.js"

const sqlState = (error: unknown) => ((error as { cause?: { code?: string } }).cause?.code)

const migrated = KhalaPg.layer().pipe(Layer.provideMerge(layerTestDatabase()), Layer.orDie)

describe.skipIf(!postgresAvailable)("khala.publish from plain SQL", () => {
  layer(migrated, { excludeTestServices: true, timeout: 180_000 })((it) => {
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

    it.effect("publish_batch equals publishing its updates one by one (property)", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const runtime = yield* Effect.runtime<never>()
        const topics = ["runtime.notifications", "runtime.codex_worker_events"]
        const update = fc.record({
          topic: fc.constantFrom(...topics),
          doc_key: fc.constantFrom("a", "b"),
          doc_version: fc.nat(4),
          org_id: fc.constantFrom("o1", "o2"),
          payload: fc.oneof(fc.constant(null), fc.record({ n: fc.integer() })),
          pointer: fc.boolean(),
          hashed: fc.boolean(),
          deleted: fc.boolean()
        }).map(({ deleted, hashed, ...u }) =>
          deleted
            ? { topic: u.topic, doc_key: u.doc_key, doc_version: u.doc_version, org_id: u.org_id, deleted: true }
            : hashed
            ? { ...u, payload_hash: Either.getOrThrow(payloadHash(u.payload)) }
            : u
        )
        const json = (value: unknown) => JSON.stringify(value)
        // Everything a publish writes, read inside the transaction that wrote it.
        const written = Effect.all({
          journal: sql<Record<string, unknown>>`
            select topic, watermark::text, doc_key, doc_version::text, org_id, payload, encode(payload_hash, 'hex') as h,
                   payload_bytes, deleted
              from khala.sync_stream_events order by topic, watermark`,
          documents: sql<Record<string, unknown>>`
            select topic, doc_key, doc_version::text, org_id, payload, encode(payload_hash, 'hex') as h, watermark::text,
                   payload_bytes, deleted
              from khala.sync_documents order by topic, org_id, doc_key`,
          heads: sql<Record<string, unknown>>`
            select topic, next_watermark::text from khala.sync_topic_sequences order by topic`
        })
        const oneByOne = (updates: ReadonlyArray<Record<string, unknown>>) =>
          Effect.forEach(updates, (u) =>
            (u["deleted"] === true
              ? sql<{ w: string | null }>`
              select khala.remove(${u["topic"] as string}, ${u["doc_key"] as string}, ${u["doc_version"] as number},
                                  ${u["org_id"] as string}) as w`
              : sql<{ w: string | null }>`
              select khala.publish(${u["topic"] as string}, ${u["doc_key"] as string}, ${u["doc_version"] as number},
                                   ${u["org_id"] as string}, ${
                json(u["payload"])
              }::jsonb, ${u["pointer"] as boolean}) as w`)
              .pipe(Effect.map((rows) => rows[0]!.w)))
        const asBatch = (updates: ReadonlyArray<Record<string, unknown>>) =>
          sql<{ w: ReadonlyArray<string | null> }>`select khala.publish_batch(${json(updates)}::jsonb) as w`.pipe(
            Effect.map((rows) => rows[0]!.w)
          )
        // Each run seeds the same documents, applies the batch one way, reads what it wrote and rolls it all back.
        const outcome = (
          seed: ReadonlyArray<Record<string, unknown>>,
          apply: Effect.Effect<ReadonlyArray<string | null>, unknown>
        ) =>
          sql.withTransaction(Effect.gen(function*() {
            yield* oneByOne(seed)
            const watermarks = yield* apply
            return yield* Effect.fail(new RolledBack({ result: { watermarks, ...(yield* written) } }))
          })).pipe(Effect.flip, Effect.map((rolledBack) => (rolledBack as RolledBack).result))
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(
              fc.array(update, { maxLength: 4 }),
              fc.array(update, { minLength: 1, maxLength: 16 }),
              (seed, batch) =>
                Runtime.runPromise(runtime)(
                  Effect.gen(function*() {
                    const batched = yield* outcome(seed, asBatch(batch))
                    const sequential = yield* outcome(seed, oneByOne(batch))
                    expect(batched).toEqual(sequential)
                  }).pipe(Effect.orDie)
                )
            ),
            { numRuns: 150 }
          )
        )
      }))
  })
})

class RolledBack extends Data.TaggedError("RolledBack")<{ readonly result: unknown }> {}
