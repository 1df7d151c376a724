import { describe, expect, layer } from "@effect/vitest"
import { Effect, Exit, Fiber, Ref } from "effect"
import { Journal } from "../../src/services/Journal.js"
import { Publisher } from "../../src/services/Publisher.js"
import { Sequencer } from "../../src/services/Sequencer.js"
import { providers, Transactions } from "../support/Providers.js"

class Abort {
  readonly _tag = "Abort"
}

const writers = 8
const perWriter = 40

/** Whether watermarks are exactly `from + 1 .. from + n`: no hole, no duplicate, in order (I2). */
const isDenseFrom = (from: number, watermarks: ReadonlyArray<number>) => watermarks.every((w, i) => w === from + i + 1)

describe.each(providers)("concurrent publishers: $name", (provider) => {
  describe.skipIf(!provider.available)("", () => {
    layer(provider.layer, { timeout: 360_000, excludeTestServices: true })((it) => {
      it.effect(
        `${writers} writers on one topic with aborted transactions leave watermarks exactly 1..N (I2), and a reader ` +
          `never sees N+1 while N is invisible (I3)`,
        () =>
          Effect.gen(function*() {
            const publisher = yield* Publisher
            const journal = yield* Journal
            const transactions = yield* Transactions
            const topic = "test.concurrent"
            yield* (yield* Sequencer).register([{ topic, retentionClass: "unspecified" }])

            const committed = yield* Ref.make<ReadonlyArray<number>>([])
            const aborted = yield* Ref.make(0)
            const violations = yield* Ref.make<ReadonlyArray<string>>([])
            const done = yield* Ref.make(false)

            // Holding the transaction open after the append (with a pause) lets later writers queue behind it and
            // gives the reader time to look while watermark N is allocated but not committed.
            const write = (writer: number, i: number) =>
              transactions.run(
                Effect.gen(function*() {
                  const outcome = yield* publisher.publish({
                    topic,
                    docKey: `w${writer}-${i}`,
                    docVersion: 1,
                    orgId: "org",
                    payload: { writer, i }
                  })
                  yield* Effect.sleep(i % 3 === 0 ? "2 millis" : "0 millis")
                  if ((writer * 7 + i) % 10 === 3) return yield* Effect.fail(new Abort())
                  return outcome
                })
              ).pipe(
                Effect.exit,
                Effect.flatMap(Exit.match({
                  onFailure: () => Ref.update(aborted, (n) => n + 1),
                  onSuccess: (o) =>
                    o._tag === "Appended" ? Ref.update(committed, (ws) => [...ws, o.watermark]) : Effect.void
                }))
              )

            const reader = Effect.gen(function*() {
              while (!(yield* Ref.get(done))) {
                const page = yield* journal.read(topic, 0, 100_000)
                const watermarks = page.rows.map((r) => r.watermark)
                if (!isDenseFrom(0, watermarks) || page.head !== watermarks.length) {
                  const seen = `head ${page.head}, ${watermarks.length} rows: ${watermarks.slice(0, 5)}..${
                    watermarks.slice(-5)
                  }`
                  yield* Ref.update(violations, (v) => v.length < 5 ? [...v, seen] : v)
                }
                // paced, not spinning: on the memory layer a read never waits, and a spinning reader starved the
                // writers it watches; a pause of a millisecond still looks many times inside each 2 ms window
                yield* Effect.sleep("1 millis")
              }
            })

            const readerFiber = yield* Effect.fork(reader)
            yield* Effect.forEach(
              Array.from({ length: writers }, (_, w) => w),
              (w) => Effect.forEach(Array.from({ length: perWriter }, (_, i) => i), (i) => write(w, i)),
              { concurrency: "unbounded", discard: true }
            )
            yield* Ref.set(done, true)
            yield* Fiber.join(readerFiber)

            const page = yield* journal.read(topic, 0, 100_000)
            const watermarks = page.rows.map((r) => r.watermark)
            const mine = [...(yield* Ref.get(committed))].sort((a, b) => a - b)
            expect(yield* Ref.get(aborted)).toBeGreaterThan(0)
            expect(mine.length + (yield* Ref.get(aborted))).toBe(writers * perWriter)
            expect(isDenseFrom(0, watermarks)).toBe(true)
            expect(watermarks).toEqual(mine)
            expect(page.head).toBe(mine.length)
            expect(yield* Ref.get(violations)).toEqual([])
          }),
        120_000
      )

      it.effect("concurrent publishes of one document keep the newest version, and journal versions only rise (I6)", () =>
        Effect.gen(function*() {
          const publisher = yield* Publisher
          const journal = yield* Journal
          const topic = "test.versions"
          yield* (yield* Sequencer).register([{ topic, retentionClass: "unspecified" }])
          const versions = Array.from({ length: 60 }, (_, i) => (i * 37) % 60)
          yield* Effect.forEach(
            versions,
            (docVersion) =>
              publisher.publish({ topic, docKey: "doc", docVersion, orgId: "org", payload: { docVersion } }),
            { concurrency: writers, discard: true }
          )
          const rows = (yield* journal.read(topic, 0, 1000)).rows
          const journalVersions = rows.map((r) => r.docVersion)
          expect(journalVersions).toEqual([...journalVersions].sort((a, b) => a - b))
          expect(new Set(journalVersions).size).toBe(journalVersions.length)
          expect(journalVersions[journalVersions.length - 1]).toBe(59)
        }))
    })
  })
})
