import { describe, expect, layer } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Layer } from "effect"
import { Journal } from "../../src/services/Journal.js"
import { Publisher } from "../../src/services/Publisher.js"
import { Sequencer } from "../../src/services/Sequencer.js"
import { providers } from "../support/Providers.js"

describe.each(providers)("concurrent standalone publishes (group commit): $name", (provider) => {
  describe.skipIf(!provider.available)("", () => {
    layer(provider.layer, { timeout: 180_000, excludeTestServices: true })((it) => {
      it.effect("each caller gets its own watermark, holding its own document, densely", () =>
        Effect.gen(function*() {
          const topic = "gc.dense"
          yield* (yield* Sequencer).register([{ topic, retentionClass: "unspecified" }])
          const publisher = yield* Publisher
          const callers = Array.from({ length: 400 }, (_, i) => i)
          const outcomes = yield* Effect.forEach(callers, (i) =>
            publisher.publish({ topic, docKey: `d${i}`, docVersion: 1, orgId: "o", payload: { i } }), {
            concurrency: "unbounded"
          })
          const rows = (yield* (yield* Journal).read(topic, 0, 1000)).rows
          expect(rows.map((r) =>
            r.watermark
          )).toEqual(rows.map((_, i) => i + 1))
          outcomes.forEach((outcome, i) => {
            expect(outcome._tag).toBe("Appended")
            if (outcome._tag === "Appended") expect(rows[outcome.watermark - 1]!.payload).toEqual({ i })
          })
        }))

      it.effect("a bad update fails alone; the others in flight with it are published", () =>
        Effect.gen(function*() {
          const topic = "gc.isolation"
          yield* (yield* Sequencer).register([{ topic, retentionClass: "unspecified" }])
          const publisher = yield* Publisher
          const results = yield* Effect.forEach(Array.from({ length: 60 }, (_, i) => i), (i) =>
            publisher.publish({
              topic: i === 30 ? "gc.missing" : topic,
              docKey: `d${i}`,
              docVersion: 1,
              orgId: "o",
              payload: { i }
            }).pipe(Effect.either), { concurrency: "unbounded" })
          const failed = results.flatMap((r, i) => (Either.isLeft(r) ? [[i, r.left._tag]] : []))
          expect(failed).toEqual([[30, "UnknownTopic"]])
          expect((yield* (yield* Journal).read(topic, 0, 1000)).rows.length).toBe(59)
        }))

      it.effect("versions that are not newer are told so, each to its own caller", () =>
        Effect.gen(function*() {
          const topic = "gc.versions"
          yield* (yield* Sequencer).register([{ topic, retentionClass: "unspecified" }])
          const publisher = yield* Publisher
          const outcomes = yield* Effect.forEach([1, 1, 1, 1, 1], () =>
            publisher.publish({ topic, docKey: "same", docVersion: 1, orgId: "o", payload: {} }), {
            concurrency: "unbounded"
          })
          expect(
            outcomes.filter((o) =>
              o._tag === "Appended"
            ).length
          ).toBe(1)
          expect(outcomes.filter((o) => o._tag === "NotNewer").length).toBe(4)
        }))
    })
  })
})

// A queue of 4 and batches of 3 with 200 publishers: most find the queue full and wait for room.
const smallQueue = Layer.setConfigProvider(ConfigProvider.fromMap(
  new Map([
    ["KHALA_GROUP_COMMIT_QUEUE", "4"],
    ["KHALA_GROUP_COMMIT_MAX_BATCH", "3"]
  ])
))

describe.each(providers.filter((p) => p.name !== "memory"))("group commit with a full queue: $name", (provider) => {
  describe.skipIf(!provider.available)("", () => {
    layer(provider.layer.pipe(Layer.provide(smallQueue)), { timeout: 180_000, excludeTestServices: true })((it) => {
      it.effect("publishers wait for room, and each still gets its own watermark", () =>
        Effect.gen(function*() {
          const topic = "gc.full"
          yield* (yield* Sequencer).register([{ topic, retentionClass: "unspecified" }])
          const publisher = yield* Publisher
          const outcomes = yield* Effect.forEach(Array.from({ length: 200 }, (_, i) => i), (i) =>
            publisher.publish({ topic, docKey: `d${i}`, docVersion: 1, orgId: "o", payload: { i } }), {
            concurrency: "unbounded"
          })
          const rows = (yield* (yield* Journal).read(topic, 0, 1000)).rows
          expect(rows.map((r) =>
            r.watermark
          )).toEqual(Array.from({ length: 200 }, (_, i) => i + 1))
          outcomes.forEach((outcome, i) => {
            expect(outcome._tag).toBe("Appended")
            if (outcome._tag === "Appended") expect(rows[outcome.watermark - 1]!.payload).toEqual({ i })
          })
        }))
    })
  })
})
