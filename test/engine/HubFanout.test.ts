import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Queue, Ref, Stream } from "effect"
import { engine } from "../../src/layers/Core.js"
import { HeadSignals } from "../../src/services/HeadSignals.js"
import type { Batch } from "../../src/services/Hub.js"
import { Audience, Hub } from "../../src/services/Hub.js"
import { Journal } from "../../src/services/Journal.js"
import { Publisher } from "../../src/services/Publisher.js"
import { Sequencer } from "../../src/services/Sequencer.js"
import * as AppenderMemory from "../../src/storage/memory/AppenderMemory.js"
import * as DocumentsMemory from "../../src/storage/memory/DocumentsMemory.js"
import * as JournalMemory from "../../src/storage/memory/JournalMemory.js"
import * as MemoryStore from "../../src/storage/memory/MemoryStore.js"
import * as RetentionStoreMemory from "../../src/storage/memory/RetentionStoreMemory.js"
import * as SequencerMemory from "../../src/storage/memory/SequencerMemory.js"

/** Counts every journal read, to see how often the hub goes to storage. */
class ReadCount extends Context.Tag("test/ReadCount")<ReadCount, Ref.Ref<number>>() {}

const countingJournal = Layer.effect(
  Journal,
  Effect.gen(function*() {
    const inner = yield* Journal
    const reads = yield* ReadCount
    return Journal.of({
      ...inner,
      read: (...args) => Effect.zipRight(Ref.update(reads, (n) => n + 1), inner.read(...args))
    })
  })
).pipe(Layer.provide(JournalMemory.layerMemory))

const layer = engine(
  Layer.mergeAll(
    SequencerMemory.layerMemory,
    countingJournal,
    DocumentsMemory.layerMemory,
    RetentionStoreMemory.layerMemory,
    AppenderMemory.layerMemory
  )
).pipe(
  Layer.provide(HeadSignals.none),
  Layer.provideMerge(MemoryStore.layer),
  Layer.provideMerge(Layer.effect(ReadCount, Ref.make(0)))
)

describe("hub fan-out", () => {
  it.live("one tail reads each append once, whatever the number of subscribers", () =>
    Effect.gen(function*() {
      const topic = "fanout.t"
      yield* (yield* Sequencer).register([{ topic, retentionClass: "unspecified" }])
      const hub = yield* Hub
      const subscribers = 100
      const queues = yield* Effect.forEach(Array.from({ length: subscribers }), () =>
        Effect.gen(function*() {
          const queue = yield* Queue.unbounded<Batch>()
          yield* hub.subscribe({ topic, after: 0, audience: Audience.org("org"), batchSize: 200 }).pipe(
            Stream.runForEach((b) => Queue.offer(queue, b)),
            Effect.forkScoped
          )
          // wait for the end of its replay, so what follows is live delivery only
          yield* Queue.take(queue)
          return queue
        }))
      const reads = yield* ReadCount
      const before = yield* Ref.get(reads)
      const appends = 50
      const publisher = yield* Publisher
      for (let i = 1; i <= appends; i++) {
        yield* publisher.publish({ topic, docKey: `d${i}`, docVersion: 1, orgId: "org", payload: { i } })
      }
      for (const queue of queues) {
        let through = 0
        while (through < appends) through = (yield* Queue.take(queue)).through
      }
      const liveReads = (yield* Ref.get(reads)) - before
      // each wake-up reads once for all subscribers: at most one read per append, not one per subscriber
      expect(liveReads).toBeGreaterThan(0)
      expect(liveReads).toBeLessThanOrEqual(appends)
    }).pipe(Effect.scoped, Effect.provide(layer)), { timeout: 90_000 })
})
