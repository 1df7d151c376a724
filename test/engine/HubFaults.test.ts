/**
 * The hub under faults: holes in the journal, consumers that fall behind, failed reads, defects in the tail, hints
 * above the real head. Each test drives the hub through its public API on the memory layers (and the hole test on
 * every layer), with failures injected where the database would fail.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Fiber, Layer, Logger, Ref, Stream } from "effect"
import * as Hub from "../../src/engine/Hub.js"
import { engine } from "../../src/layers/Core.js"
import { HeadSignals } from "../../src/services/HeadSignals.js"
import type { Batch } from "../../src/services/Hub.js"
import { Audience, Hub as HubService } from "../../src/services/Hub.js"
import { Journal } from "../../src/services/Journal.js"
import { Publisher } from "../../src/services/Publisher.js"
import { Sequencer } from "../../src/services/Sequencer.js"
import { Wakeups } from "../../src/services/Wakeups.js"
import * as AppenderMemory from "../../src/storage/memory/AppenderMemory.js"
import * as DocumentsMemory from "../../src/storage/memory/DocumentsMemory.js"
import * as JournalMemory from "../../src/storage/memory/JournalMemory.js"
import * as MemoryStore from "../../src/storage/memory/MemoryStore.js"
import * as RetentionStoreMemory from "../../src/storage/memory/RetentionStoreMemory.js"
import * as SequencerMemory from "../../src/storage/memory/SequencerMemory.js"
import { Erasure, providers } from "../support/Providers.js"

const register = (topic: string) =>
  Effect.flatMap(Sequencer, (s) => s.register([{ topic, retentionClass: "unspecified" }]))

const publishOne = (topic: string, i: number) =>
  Effect.flatMap(Publisher, (p) => p.publish({ topic, docKey: `d${i}`, docVersion: 1, orgId: "org_a", payload: { i } }))

/** Every watermark a subscription receives until it is caught up through `through`. */
const receiveThrough = (stream: Stream.Stream<Batch, unknown>, through: number) =>
  stream.pipe(
    Stream.takeUntil((batch) => batch.through >= through),
    Stream.runFold([] as Array<number>, (seen, batch) => {
      for (const row of batch.updates) seen.push(row.watermark)
      return seen
    }),
    Effect.timeout("20 seconds")
  )

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

/** Counts the journal reads of one page size: the tail's, when the tail page is set to it. */
class Reads extends Context.Tag("test/Reads")<Reads, {
  readonly count: Ref.Ref<number>
  /** Reads of this page size die (a defect) while positive. */
  readonly dieNext: Ref.Ref<number>
}>() {}

const tailPage = 777

const instrumentedJournal = Layer.effect(
  Journal,
  Effect.gen(function*() {
    const inner = yield* Journal
    const reads = yield* Reads
    return Journal.of({
      ...inner,
      read: (topic, after, limit, options) =>
        limit !== tailPage ? inner.read(topic, after, limit, options) : Effect.gen(function*() {
          yield* Ref.update(reads.count, (n) => n + 1)
          if ((yield* Ref.getAndUpdate(reads.dieNext, (n) => Math.max(0, n - 1))) > 0) {
            return yield* Effect.die(new Error("a bug in the tail's read"))
          }
          return yield* inner.read(topic, after, limit, options)
        })
    })
  })
).pipe(Layer.provide(JournalMemory.layerMemory))

/** The memory core with the journal instrumented, and hub settings of the test's choosing. */
const instrumented = (settings: Record<string, string> = {}) =>
  engine(
    Layer.mergeAll(
      SequencerMemory.layerMemory,
      instrumentedJournal,
      DocumentsMemory.layerMemory,
      RetentionStoreMemory.layerMemory,
      AppenderMemory.layerMemory
    )
  ).pipe(
    Layer.provide(HeadSignals.none),
    Layer.provideMerge(MemoryStore.layer),
    Layer.provideMerge(Layer.effect(Reads, Effect.all({ count: Ref.make(0), dieNext: Ref.make(0) }))),
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
      new Map(Object.entries({ KHALA_HUB_TAIL_PAGE: String(tailPage), ...settings }))
    )))
  )

describe.each(providers)("hub over a journal with holes: $name", (provider) => {
  describe.skipIf(!provider.available)("", () => {
    layer(provider.layer, { timeout: 180_000, excludeTestServices: true })((it) => {
      it.scoped("a hole longer than a replay page is stepped over: the rows after it and live rows arrive", () =>
        Effect.gen(function*() {
          const topic = "hub.holes"
          yield* register(topic)
          for (let i = 1; i <= 30; i++) yield* publishOne(topic, i)
          // an erasure of rows 4..25, longer than the subscriber's pages of 5
          yield* (yield* Erasure).erase(topic, 3, 25)
          const hub = yield* HubService
          const subscription = hub.subscribe({ topic, after: 0, audience: Audience.org("org_a"), batchSize: 5 })
          const received = yield* Effect.fork(receiveThrough(subscription, 32))
          yield* Effect.sleep("100 millis")
          yield* publishOne(topic, 31)
          yield* publishOne(topic, 32)
          expect(yield* Fiber.join(received)).toEqual([1, 2, 3, ...range(26, 32)])
        }))
    })
  })
})

describe("hub under faults", () => {
  it.live(
    "a stream consumer that falls behind its live buffer receives every row exactly once",
    () =>
      Effect.gen(function*() {
        const topic = "hub.slow_stream"
        yield* register(topic)
        const hub = yield* HubService
        const appends = 600
        const received = yield* hub.subscribe({ topic, after: 0, audience: Audience.org("org_a"), batchSize: 50 }).pipe(
          // a consumer slower than the appends: its live buffer of 4 batches overflows again and again
          Stream.tap(() => Effect.sleep("3 millis")),
          (stream) => receiveThrough(stream, appends),
          Effect.fork
        )
        yield* Effect.sleep("50 millis")
        for (let i = 1; i <= appends; i++) {
          yield* publishOne(topic, i)
          if (i % 20 === 0) yield* Effect.sleep("1 millis")
        }
        expect(yield* Fiber.join(received)).toEqual(range(1, appends))
      }).pipe(Effect.provide(instrumented({ KHALA_HUB_LIVE_BUFFER: "4", KHALA_HUB_COALESCE: "0 millis" }))),
    {
      timeout: 180_000
    }
  )

  it.live("a failed read while a topic's tail opens is not remembered: the subscriber, and later ones, get the topic", () =>
    Effect.gen(function*() {
      const topic = "hub.failed_open"
      yield* register(topic)
      yield* publishOne(topic, 1)
      const store = yield* MemoryStore.MemoryStore
      const hub = yield* HubService
      yield* store.failNextReads(1)
      const subscribe = () =>
        receiveThrough(hub.subscribe({ topic, after: 0, audience: Audience.org("org_a"), batchSize: 10 }), 1)
      expect(yield* subscribe()).toEqual([1])
      expect(yield* subscribe()).toEqual([1])
    }).pipe(Effect.provide(instrumented())))

  it.live(
    "a database outage mid-replay: the replay waits and resumes by itself, and the outage is logged once",
    () =>
      Effect.gen(function*() {
        const topic = "hub.outage"
        yield* register(topic)
        for (let i = 1; i <= 20; i++) yield* publishOne(topic, i)
        const store = yield* MemoryStore.MemoryStore
        const hub = yield* HubService
        const warnings = yield* Ref.make<Array<string>>([])
        const logger = Logger.make(({ logLevel, message }) => {
          if (logLevel._tag === "Warning") Effect.runSync(Ref.update(warnings, (w) => [...w, String(message)]))
        })
        const received = yield* hub.subscribe({ topic, after: 0, audience: Audience.org("org_a"), batchSize: 5 }).pipe(
          // the outage begins after the first page
          Stream.tap((batch) => batch.through === 5 ? store.failNextReads(6) : Effect.void),
          (stream) => receiveThrough(stream, 20),
          Effect.provide(Logger.replace(Logger.defaultLogger, logger))
        )
        expect(received).toEqual(range(1, 20))
        expect((yield* Ref.get(warnings)).filter((w) => w.includes("reading the journal failed"))).toHaveLength(1)
      }).pipe(Effect.provide(instrumented())),
    { timeout: 180_000 }
  )

  it.live(
    "a defect in a topic's tail is logged and the tail restarts: live subscribers still get new rows",
    () =>
      Effect.gen(function*() {
        const topic = "hub.defect"
        yield* register(topic)
        const hub = yield* HubService
        const reads = yield* Reads
        const errors = yield* Ref.make(0)
        const logger = Logger.make(({ logLevel }) => {
          if (logLevel._tag === "Error") Effect.runSync(Ref.update(errors, (n) => n + 1))
        })
        const received = yield* hub.subscribe({ topic, after: 0, audience: Audience.org("org_a"), batchSize: 10 }).pipe(
          (stream) => receiveThrough(stream, 3),
          Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
          Effect.fork
        )
        yield* Effect.sleep("100 millis")
        yield* Ref.set(reads.dieNext, 1)
        for (let i = 1; i <= 3; i++) {
          yield* publishOne(topic, i)
          yield* Effect.sleep("50 millis")
        }
        expect(yield* Fiber.join(received)).toEqual([1, 2, 3])
        expect(yield* Ref.get(errors)).toBeGreaterThanOrEqual(1)
      }).pipe(Effect.provide(instrumented())),
    { timeout: 90_000 }
  )

  it.live("a hint far above the real head makes the tail read once, not every few milliseconds", () =>
    Effect.gen(function*() {
      const topic = "hub.bogus_hint"
      yield* register(topic)
      const hub = yield* HubService
      const reads = yield* Reads
      yield* hub.subscribe({ topic, after: 0, audience: Audience.org("org_a"), batchSize: 10 }).pipe(
        Stream.runDrain,
        Effect.forkScoped
      )
      yield* Effect.sleep("100 millis")
      const before = yield* Ref.get(reads.count)
      // any database role can NOTIFY, and a restored database has lower heads than its hints
      yield* (yield* Wakeups).committed([{ topic, head: 1_000_000 }])
      yield* Effect.sleep("400 millis")
      expect((yield* Ref.get(reads.count)) - before).toBeLessThanOrEqual(2)
    }).pipe(Effect.scoped, Effect.provide(instrumented())))

  it.effect("a setting out of range stops the hub at start with a message naming it", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Hub.HubConfig.pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["KHALA_HUB_TAIL_PAGE", "0"]])))
      ))
      expect(String(error)).toContain("KHALA_HUB_TAIL_PAGE")
    }))
})
