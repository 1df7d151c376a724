import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Option, Ref, Schedule } from "effect"
import * as Outbox from "../../src/engine/Outbox.js"
import * as Retention from "../../src/engine/Retention.js"
import * as KhalaMemory from "../../src/layers/KhalaMemory.js"
import * as KhalaPg from "../../src/layers/KhalaPg.js"
import { HeadSignals } from "../../src/services/HeadSignals.js"
import { Journal } from "../../src/services/Journal.js"
import { OutboxDeliveryError, OutboxSink } from "../../src/services/OutboxSink.js"
import { OutboxStore } from "../../src/services/OutboxStore.js"
import { Publisher } from "../../src/services/Publisher.js"
import * as OutboxStoreMemory from "../../src/storage/memory/OutboxStoreMemory.js"
import * as OutboxStorePg from "../../src/storage/postgres/OutboxStorePg.js"
import { range } from "../support/Khala.js"
import { layerDatabase, postgresAvailable, testDatabase } from "../support/Postgres.js"

const catalog = { topics: [{ wireName: "test.short_lived", retentionMs: 500 }] }

const layers = [
  {
    name: "memory",
    available: true,
    layer: OutboxStoreMemory.layerMemory.pipe(Layer.provideMerge(KhalaMemory.layer(catalog)))
  },
  {
    name: "postgres",
    available: postgresAvailable,
    layer: Layer.unwrapScoped(
      Effect.map(testDatabase, ({ url }) =>
        OutboxStorePg.layer.pipe(
          Layer.provideMerge(KhalaPg.layerWith(catalog)),
          Layer.provide(HeadSignals.none),
          Layer.provide(layerDatabase(url))
        ))
    )
  }
]

const topics = ["runtime.run_summaries", "runtime.notifications"]

const publish = (topic: string, n: number) =>
  Effect.flatMap(Publisher, (p) => p.publish({ topic, docKey: `d${n}`, docVersion: 1, orgId: "o", payload: { n } }))

interface Delivery {
  readonly topic: string
  readonly watermarks: ReadonlyArray<number>
  readonly failed: boolean
}

/**
 * Checks one topic's deliveries: each batch follows the previous one, or repeats a failed one from its start (the
 * only duplicates at-least-once allows), and together they hold every watermark `1..count`.
 */
const checkDeliveries = (deliveries: ReadonlyArray<Delivery>, topic: string, count: number) => {
  const mine = deliveries.filter((d) => d.topic === topic)
  let previous: Delivery | undefined
  const seen = new Set<number>()
  for (const delivery of mine) {
    // within a batch: consecutive watermarks
    expect(delivery.watermarks).toEqual(range(delivery.watermarks[0]!, delivery.watermarks.at(-1)!))
    if (previous !== undefined) {
      const next = previous.watermarks.at(-1)! + 1
      if (previous.failed) expect([previous.watermarks[0], next]).toContain(delivery.watermarks[0])
      else expect(delivery.watermarks[0]).toBe(next)
    } else {
      expect(delivery.watermarks[0]).toBe(1)
    }
    for (const w of delivery.watermarks) seen.add(w)
    previous = delivery
  }
  expect([...seen].sort((a, b) => a - b)).toEqual(range(1, count))
}

describe.each(layers)("outbox: $name", ({ available, layer }) => {
  it.live.skipIf(!available)(
    "delivers every row at least once, in order per topic, across a sink failing intermittently",
    () =>
      Effect.gen(function*() {
        const count = 40
        const deliveries = yield* Ref.make<ReadonlyArray<Delivery>>([])
        const done = yield* Deferred.make<void>()
        let calls = 0
        const acknowledged = new Map<string, number>()
        // every third call is recorded but fails (a lost acknowledgement), every fifth fails before recording
        const sink = OutboxSink.make("test", (topic, rows) =>
          Effect.gen(function*() {
            calls++
            if (calls % 5 === 0) return yield* new OutboxDeliveryError({ sink: "test", topic, message: "down" })
            const failed = calls % 3 === 0
            yield* Ref.update(
              deliveries,
              (all) => [...all, { topic, watermarks: rows.map((r) => r.watermark), failed }]
            )
            if (failed) return yield* new OutboxDeliveryError({ sink: "test", topic, message: "lost ack" })
            acknowledged.set(topic, rows.at(-1)!.watermark)
            if (topics.every((t) => acknowledged.get(t) === count)) yield* Deferred.succeed(done, undefined)
          }))
        for (const n of range(1, count / 2)) yield* Effect.forEach(topics, (t) => publish(t, n))
        const outbox = yield* Outbox.run({ topics, batchSize: 4 }).pipe(
          Effect.provideService(OutboxSink, sink),
          Effect.fork
        )
        // the rest while the outbox forwards: it is woken by the commits
        for (const n of range(count / 2 + 1, count)) yield* Effect.forEach(topics, (t) => publish(t, n))
        yield* Deferred.await(done).pipe(
          Effect.timeout("5 seconds"),
          Effect.tapError(() =>
            Effect.sync(() =>
              console.error(
                JSON.stringify([...acknowledged], null, 0),
                calls,
                JSON.stringify(Ref.get(deliveries).pipe(Effect.runSync).slice(0, 12))
              )
            )
          )
        )
        // the cursors are persisted after the deliveries
        const store = yield* OutboxStore
        for (const topic of topics) {
          yield* store.cursor("test", topic).pipe(
            Effect.repeat({ until: (w) => w === count, schedule: Schedule.spaced("20 millis") }),
            Effect.timeout("5 seconds")
          )
        }
        yield* Fiber.interrupt(outbox)
        const all = yield* Ref.get(deliveries)
        expect(all.some((d) => d.failed)).toBe(true)
        for (const topic of topics) checkDeliveries(all, topic, count)
      }).pipe(Effect.provide(layer)),
    30_000
  )

  it.live.skipIf(!available)(
    "retention keeps the rows the outbox has not delivered, and prunes them once it has",
    () =>
      Effect.gen(function*() {
        const topic = "test.short_lived"
        const attempted = yield* Deferred.make<void>()
        let up = false
        const delivered: Array<number> = []
        const sink = OutboxSink.make("slow", (_topic, rows) =>
          Effect.gen(function*() {
            yield* Deferred.succeed(attempted, undefined)
            if (!up) return yield* new OutboxDeliveryError({ sink: "slow", topic, message: "down" })
            for (const row of rows) delivered.push(row.watermark)
          }))
        for (const n of range(1, 3)) yield* publish(topic, n)
        const outbox = yield* Outbox.run({ topics: [topic] }).pipe(Effect.provideService(OutboxSink, sink), Effect.fork)
        yield* Deferred.await(attempted).pipe(Effect.timeout("5 seconds"))
        yield* Effect.sleep("700 millis")
        // past their retention, but the sink has none of them: nothing is pruned
        expect(yield* Retention.runOnce).toEqual(Option.some([]))
        expect((yield* (yield* Journal).read(topic, 0, 10)).rows.length).toBe(3)
        up = true
        const store = yield* OutboxStore
        yield* store.cursor("slow", topic).pipe(
          Effect.repeat({ until: (w) => w === 3, schedule: Schedule.spaced("50 millis") }),
          Effect.timeout("10 seconds")
        )
        yield* Fiber.interrupt(outbox)
        expect(delivered).toEqual([1, 2, 3])
        expect(yield* Retention.runOnce).toEqual(Option.some([{ topic, deleted: 3, retentionFloor: 3 }]))
        // a dropped sink no longer holds retention back
        yield* publish(topic, 4)
        yield* Effect.sleep("700 millis")
        expect(yield* Retention.runOnce).toEqual(Option.some([]))
        expect(yield* store.drop("slow")).toBe(1)
        expect(yield* Retention.runOnce).toEqual(Option.some([{ topic, deleted: 1, retentionFloor: 4 }]))
      }).pipe(Effect.provide(layer)),
    30_000
  )
})
