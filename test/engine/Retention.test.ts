import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Context, Deferred, Effect, Fiber, Layer, Option } from "effect"
import * as Retention from "../../src/engine/Retention.js"
import * as KhalaMemory from "../../src/layers/KhalaMemory.js"
import * as KhalaPg from "../../src/layers/KhalaPg.js"
import { Documents } from "../../src/services/Documents.js"
import { HeadSignals } from "../../src/services/HeadSignals.js"
import { Journal } from "../../src/services/Journal.js"
import { Publisher } from "../../src/services/Publisher.js"
import { RetentionStore } from "../../src/services/RetentionStore.js"
import { Sequencer } from "../../src/services/Sequencer.js"
import * as EmbeddedPostgres from "../../src/storage/embedded/EmbeddedPostgres.js"
import { layerDatabase, postgresAvailable, testDatabase } from "../support/Postgres.js"

/** A catalog with a topic whose rows are kept one second, beside the v1 topics (kept for days). */
const catalog = { topics: [{ wireName: "test.short_lived", retentionMs: 1000 }] }

const layers = [
  { name: "memory", available: true, layer: KhalaMemory.layer(catalog) },
  {
    name: "postgres",
    available: postgresAvailable,
    layer: Layer.unwrapScoped(
      Effect.map(
        testDatabase,
        ({ url }) => KhalaPg.layerWith(catalog).pipe(Layer.provide(HeadSignals.none), Layer.provide(layerDatabase(url)))
      )
    )
  },
  {
    name: "embedded",
    available: true,
    layer: KhalaPg.layerWith(catalog).pipe(Layer.provide(EmbeddedPostgres.layerInMemory))
  }
]

const publish = (topic: string, docKey: string, deleted = false) =>
  Effect.flatMap(Publisher, (p) =>
    deleted
      ? p.remove({ topic, docKey, docVersion: 2, orgId: "o" })
      : p.publish({ topic, docKey, docVersion: 1, orgId: "o", payload: { docKey } }))

describe.each(layers)("scheduled retention: $name", ({ available, layer }) => {
  it.live.skipIf(!available)(
    "prunes each topic past its own retention, raises its floor, and drops passed tombstones",
    () =>
      Effect.gen(function*() {
        const topic = "test.short_lived"
        yield* publish(topic, "old")
        yield* publish(topic, "gone")
        yield* publish(topic, "gone", true)
        yield* publish("runtime.run_summaries", "kept")
        yield* Effect.sleep("1500 millis")
        yield* publish(topic, "new")
        const run = Option.getOrThrow(yield* Retention.runOnce)
        expect(run).toEqual([{ topic, deleted: 3, retentionFloor: 3 }])
        const journal = yield* Journal
        expect((yield* journal.read(topic, 3, 10)).rows.map((r) => r.docKey)).toEqual(["new"])
        expect((yield* Effect.flip(journal.read(topic, 0, 10)))._tag).toBe("StaleCursor")
        // a topic kept for days is untouched
        expect((yield* journal.read("runtime.run_summaries", 0, 10)).rows.map((r) => r.docKey)).toEqual(["kept"])
        const documents = yield* Documents
        expect(Option.isNone(yield* documents.get(topic, "o", "gone"))).toBe(true)
        expect(Option.isSome(yield* documents.get(topic, "o", "old"))).toBe(true)
        // nothing more to do until more rows age
        expect(yield* Retention.runOnce).toEqual(Option.some([]))
      }).pipe(Effect.provide(layer), Effect.orDie),
    { timeout: 180_000 }
  )
})

describe.each(layers)("retention's progress: $name", ({ available, layer }) => {
  it.live.skipIf(!available)(
    "reports each step, and the rows it reports removed are the rows it removed",
    () =>
      Effect.gen(function*() {
        const topic = "test.short_lived"
        for (const key of ["a", "b", "c", "d"]) yield* publish(topic, key)
        yield* Effect.sleep("1500 millis")
        const reports: Array<Retention.RetentionProgress> = []
        const run = yield* Retention.run({ onProgress: (p) => Effect.sync(() => void reports.push(p)) })
        expect(run).toEqual(Option.some([{ topic, deleted: 4, retentionFloor: 4 }]))
        const registered = (yield* (yield* Sequencer).topics).length
        expect(reports[0]).toEqual({ ...Retention.noProgress, topics: registered })
        expect(reports.at(-1)).toEqual({
          topics: registered,
          topicsDone: registered,
          pruning: Option.none(),
          rowsRemoved: 4,
          batches: 1
        })
        // the topic being pruned is named while it is
        const during = reports.filter((p) => Option.isSome(p.pruning))
        expect(during.map((p) => Option.getOrThrow(p.pruning))).toContain(topic)
        expect(reports.find((p) => p.rowsRemoved === 4)?.pruning).toEqual(Option.some(topic))
        // counts only grow
        for (const [i, p] of reports.entries()) {
          if (i === 0) continue
          expect(p.rowsRemoved).toBeGreaterThanOrEqual(reports[i - 1]!.rowsRemoved)
          expect(p.topicsDone).toBeGreaterThanOrEqual(reports[i - 1]!.topicsDone)
        }
      }).pipe(Effect.provide(layer), Effect.orDie),
    { timeout: 180_000 }
  )
})

describe.skipIf(!postgresAvailable)("retention's progress over several batches", () => {
  it.live(
    "25 000 rows: three batches of at most 10 000, each reported with what it deleted",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { url } = yield* testDatabase
        const context = yield* Layer.build(
          KhalaPg.layerWith(catalog).pipe(Layer.provide(HeadSignals.none), Layer.provideMerge(layerDatabase(url)))
        )
        const sql = Context.get(context, SqlClient.SqlClient)
        yield* sql`
        select cardinality(khala.publish_batch(jsonb_agg(jsonb_build_object(
          'topic', 'test.short_lived', 'doc_key', 'd' || i, 'doc_version', 1, 'org_id', 'o', 'payload', '{}'::jsonb
        )))) from generate_series(1, 25000) i`
        yield* Effect.sleep("1500 millis")
        const batches: Array<number> = []
        let last = Retention.noProgress
        const run = yield* Retention.run({
          onProgress: (p) =>
            Effect.sync(() => {
              if (p.batches > last.batches) batches.push(p.rowsRemoved - last.rowsRemoved)
              last = p
            })
        }).pipe(Effect.provide(context))
        expect(run).toEqual(Option.some([{ topic: "test.short_lived", deleted: 25_000, retentionFloor: 25_000 }]))
        expect(batches).toEqual([10_000, 10_000, 5_000])
        expect(last).toMatchObject({ rowsRemoved: 25_000, batches: 3, pruning: Option.none() })
        expect(last.topicsDone).toBe(last.topics)
      })),
    { timeout: 180_000 }
  )
})

describe.skipIf(!postgresAvailable)("retention across nodes", () => {
  it.live("only one node runs retention at a time", () =>
    Effect.scoped(Effect.gen(function*() {
      const { url } = yield* testDatabase
      const node = () =>
        Layer.build(KhalaPg.layerWith(catalog).pipe(Layer.provide(HeadSignals.none), Layer.provide(layerDatabase(url))))
      const a = yield* node()
      const b = yield* node()
      const started = yield* Deferred.make<void>()
      const finish = yield* Deferred.make<void>()
      const first = yield* Effect.flatMap(RetentionStore, (store) =>
        store.exclusive(Effect.zipRight(Deferred.succeed(started, undefined), Deferred.await(finish)))).pipe(
          Effect.provide(a),
          Effect.fork
        )
      yield* Deferred.await(started)
      expect(yield* Retention.runOnce.pipe(Effect.provide(b))).toEqual(Option.none())
      yield* Deferred.succeed(finish, undefined)
      expect(yield* Fiber.join(first)).toEqual(Option.some(undefined))
      expect(Option.isSome(yield* Retention.runOnce.pipe(Effect.provide(b)))).toBe(true)
    })), { timeout: 180_000 })
})
