import { describe, expect, layer } from "@effect/vitest"
import { Chunk, Effect, Fiber, Queue, Stream } from "effect"
import type { Batch } from "../../src/services/Hub.js"
import { Audience, Hub } from "../../src/services/Hub.js"
import { Journal } from "../../src/services/Journal.js"
import { Publisher } from "../../src/services/Publisher.js"
import { Sequencer } from "../../src/services/Sequencer.js"
import { providers, Transactions } from "../support/Providers.js"

let topicId = 0
const newTopic = Effect.gen(function*() {
  const topic = `hub.t${topicId++}`
  yield* (yield* Sequencer).register([{ topic, retentionClass: "unspecified" }])
  return topic
})

const publish = (topic: string, docKey: string, orgId = "org_a") =>
  Effect.flatMap(Publisher, (p) => p.publish({ topic, docKey, docVersion: 1, orgId, payload: { docKey } }))

/** Runs a subscription in the background, its batches into a queue. */
const collect = (topic: string, after: number, orgId = "org_a", batchSize = 200) =>
  Effect.gen(function*() {
    const batches = yield* Queue.unbounded<Batch>()
    const fiber = yield* (yield* Hub).subscribe({ topic, after, audience: Audience.org(orgId), batchSize }).pipe(
      Stream.runForEach((batch) => Queue.offer(batches, batch)),
      Effect.forkScoped
    )
    return { batches, fiber }
  })

/** Takes batches until one is caught up through `watermark`; returns them all. */
const until = (batches: Queue.Queue<Batch>, watermark: number) =>
  Effect.gen(function*() {
    const seen: Array<Batch> = []
    while (seen.length === 0 || seen[seen.length - 1]!.through < watermark) seen.push(yield* Queue.take(batches))
    return seen
  }).pipe(Effect.timeout("10 seconds"))

const keys = (batches: ReadonlyArray<Batch>) => batches.flatMap((b) => b.updates.map((u) => u.docKey))
const watermarks = (batches: ReadonlyArray<Batch>) => batches.flatMap((b) => b.updates.map((u) => u.watermark))

describe.each(providers)("hub: $name", (provider) => {
  describe.skipIf(!provider.available)("", () => {
    layer(provider.layer, { timeout: 180_000, excludeTestServices: true })((it) => {
      it.scoped("replays the suffix after the resume point, marks the end of replay, then goes live", () =>
        Effect.gen(function*() {
          const topic = yield* newTopic
          yield* Effect.forEach([1, 2, 3, 4, 5], (i) => publish(topic, `d${i}`))
          const { batches } = yield* collect(topic, 2, "org_a", 2)
          const replay = yield* until(batches, 5)
          expect(watermarks(replay)).toEqual([3, 4, 5])
          expect(replay.map((b) => b.replayComplete)).toEqual([false, true])
          yield* Effect.forEach([6, 7, 8], (i) => publish(topic, `d${i}`))
          const live = yield* until(batches, 8)
          expect(watermarks(live)).toEqual([6, 7, 8])
          expect(live.every((b) => b.replayComplete)).toBe(true)
        }))

      it.scoped("sends the end-of-replay marker even when there is nothing to replay", () =>
        Effect.gen(function*() {
          const topic = yield* newTopic
          const { batches } = yield* collect(topic, 0)
          const first = yield* Queue.take(batches)
          expect(first).toMatchObject({ topic, updates: [], through: 0, replayComplete: true })
        }))

      it.scoped("a publish inside a caller's transaction reaches subscribers once committed", () =>
        Effect.gen(function*() {
          const topic = yield* newTopic
          const { batches } = yield* collect(topic, 0)
          yield* Queue.take(batches)
          yield* (yield* Transactions).run(publish(topic, "in-tx"))
          expect(keys(yield* until(batches, 1))).toEqual(["in-tx"])
        }))

      it.scoped("org isolation: other orgs' rows are skipped but the watermark moves past them (I7)", () =>
        Effect.gen(function*() {
          const topic = yield* newTopic
          yield* publish(topic, "a1", "org_a")
          yield* publish(topic, "b1", "org_b")
          const { batches } = yield* collect(topic, 0, "org_a")
          const replay = yield* until(batches, 2)
          expect(keys(replay)).toEqual(["a1"])
          yield* publish(topic, "b2", "org_b")
          yield* publish(topic, "a2", "org_a")
          const live = yield* until(batches, 4)
          expect(keys(live)).toEqual(["a2"])
          expect(live.flatMap((b) => b.updates).every((u) => u.orgId === "org_a")).toBe(true)
        }))

      it.scoped("a resume point below the retention floor fails with StaleCursor, never a partial replay (I8)", () =>
        Effect.gen(function*() {
          const topic = yield* newTopic
          yield* Effect.forEach([1, 2, 3], (i) => publish(topic, `d${i}`))
          yield* (yield* Journal).prune(topic, 3)
          const error = yield* (yield* Hub).subscribe({
            topic,
            after: 1,
            audience: Audience.org("org_a"),
            batchSize: 10
          }).pipe(
            Stream.runDrain,
            Effect.flip
          )
          expect(error).toMatchObject({ _tag: "StaleCursor", after: 1, retentionFloor: 3 })
          const { batches } = yield* collect(topic, 3)
          expect(yield* Queue.take(batches)).toMatchObject({ updates: [], through: 3, replayComplete: true })
        }))

      it.scoped(
        "a subscriber that reads nothing delays nobody, and later gets exactly what it missed",
        () =>
          Effect.gen(function*() {
            const topic = yield* newTopic
            const hub = yield* Hub
            // a slow consumer: pulls one batch, then stalls while many appends go by
            const slowPull = yield* Stream.toPull(
              hub.subscribe({ topic, after: 0, audience: Audience.org("org_a"), batchSize: 50 })
            )
            yield* slowPull
            const fast = yield* collect(topic, 0)
            const total = 600
            for (let i = 1; i <= total; i++) yield* publish(topic, `d${i}`)
            expect(watermarks(yield* until(fast.batches, total))).toEqual(
              Array.from({ length: total }, (_, i) => i + 1)
            )
            const received: Array<number> = []
            while (received.length === 0 || received[received.length - 1]! < total) {
              for (const b of Chunk.toReadonlyArray(yield* slowPull)) {
                for (const u of b.updates) received.push(u.watermark)
              }
            }
            expect(received).toEqual(Array.from({ length: total }, (_, i) => i + 1))
          }),
        { timeout: 180_000 }
      )

      it.scoped("a resumed subscription continues exactly where the previous one stopped (I4)", () =>
        Effect.gen(function*() {
          const topic = yield* newTopic
          const first = yield* collect(topic, 0)
          for (let i = 1; i <= 5; i++) yield* publish(topic, `d${i}`)
          const before = yield* until(first.batches, 5)
          yield* Fiber.interrupt(first.fiber)
          const through = before[before.length - 1]!.through
          for (let i = 6; i <= 9; i++) yield* publish(topic, `d${i}`)
          const second = yield* collect(topic, through)
          for (let i = 10; i <= 12; i++) yield* publish(topic, `d${i}`)
          const after = yield* until(second.batches, 12)
          expect([...watermarks(before), ...watermarks(after)]).toEqual(Array.from({ length: 12 }, (_, i) => i + 1))
        }))
    })
  })
})
