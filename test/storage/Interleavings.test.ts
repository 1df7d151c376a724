import { describe, expect, layer } from "@effect/vitest"
import { Effect, Exit, Option, Runtime } from "effect"
import fc from "fast-check"
import { Documents } from "../../src/services/Documents.js"
import { Journal } from "../../src/services/Journal.js"
import type { PublishOutcome, PublishUpdate } from "../../src/services/Publisher.js"
import { Publisher } from "../../src/services/Publisher.js"
import { Sequencer } from "../../src/services/Sequencer.js"
import type { Services } from "../support/Providers.js"
import { providers, Transactions } from "../support/Providers.js"

/** One transaction of a writer: some publishes (alone or as one batch), then a commit or an abort. */
interface Step {
  readonly updates: ReadonlyArray<{ readonly doc: number; readonly version: number }>
  readonly batch: boolean
  readonly abort: boolean
  readonly pauseMs: number
}

const step: fc.Arbitrary<Step> = fc.record({
  updates: fc.array(fc.record({ doc: fc.nat(4), version: fc.nat(6) }), { minLength: 1, maxLength: 3 }),
  batch: fc.boolean(),
  abort: fc.boolean(),
  pauseMs: fc.constantFrom(0, 0, 1, 3)
})

const writersArbitrary = fc.array(fc.array(step, { maxLength: 5 }), { minLength: 1, maxLength: 6 })

class Abort {
  readonly _tag = "Abort"
}

let runId = 0

/**
 * Runs the writers concurrently, then checks what must hold whatever the interleaving: watermarks are exactly
 * 1..N (I2), each committed append appears once and aborted ones never (I3, rollback), journal versions of a
 * document only rise and the read model holds the highest committed version (I6).
 */
const check = (writers: ReadonlyArray<ReadonlyArray<Step>>) =>
  Effect.gen(function*() {
    const publisher = yield* Publisher
    const transactions = yield* Transactions
    const journal = yield* Journal
    const documents = yield* Documents
    const topic = `prop.run_${runId++}`
    yield* (yield* Sequencer).register([{ topic, retentionClass: "unspecified" }])

    const committed: Array<{ readonly update: PublishUpdate; readonly outcome: PublishOutcome }> = []
    const abortedTags = new Set<string>()

    yield* Effect.forEach(writers, (steps, writer) =>
      Effect.forEach(steps, (s, index) => {
        const tag = `${writer}.${index}`
        const updates = s.updates.map((u, i): PublishUpdate => ({
          topic,
          docKey: `doc-${u.doc}`,
          docVersion: u.version,
          orgId: "org",
          payload: { tag, i }
        }))
        const publishAll = s.batch
          ? publisher.publishAll(updates)
          : Effect.forEach(updates, (u) => publisher.publish(u))
        return transactions.run(
          Effect.gen(function*() {
            const outcomes = yield* publishAll
            yield* Effect.sleep(s.pauseMs)
            if (s.abort) return yield* Effect.fail(new Abort())
            return outcomes
          })
        ).pipe(
          Effect.exit,
          Effect.map(Exit.match({
            onFailure: () => abortedTags.add(tag),
            onSuccess: (outcomes) => outcomes.forEach((outcome, i) => committed.push({ update: updates[i]!, outcome }))
          }))
        )
      }, { discard: true }), { concurrency: "unbounded", discard: true })

    const page = yield* journal.read(topic, 0, 10_000)
    const watermarks = page.rows.map((r) => r.watermark)
    expect(watermarks).toEqual(watermarks.map((_, i) => i + 1))
    expect(page.head).toBe(watermarks.length)

    const appended = committed.flatMap(({ outcome, update }) =>
      outcome._tag === "Appended" ? [{ watermark: outcome.watermark, update }] : []
    ).sort((a, b) => a.watermark - b.watermark)
    expect(appended.map((a) => a.watermark)).toEqual(watermarks)
    page.rows.forEach((row, i) => {
      expect(row.payload).toEqual(appended[i]!.update.payload)
      expect(abortedTags.has((row.payload as { tag: string }).tag)).toBe(false)
    })

    const byDoc = new Map<string, Array<number>>()
    for (const row of page.rows) byDoc.set(row.docKey, [...(byDoc.get(row.docKey) ?? []), row.docVersion])
    for (const [docKey, versions] of byDoc) {
      expect(versions.every((v, i) => i === 0 || v > versions[i - 1]!)).toBe(true)
      const stored = Option.getOrThrow(yield* documents.get(topic, "org", docKey))
      expect(stored.docVersion).toBe(Math.max(...versions))
      const highest = committed.filter((c) => c.update.docKey === docKey).map((c) => c.update.docVersion)
      expect(stored.docVersion).toBe(Math.max(...highest))
    }
  })

describe.each(providers)("publish/abort interleavings (property): $name", (provider) => {
  describe.skipIf(!provider.available)("", () => {
    layer(provider.layer, { timeout: 360_000, excludeTestServices: true })((it) => {
      it.effect("any interleaving keeps I2, I3 and I6", () =>
        Effect.gen(function*() {
          const runtime = yield* Effect.runtime<Services>()
          yield* Effect.promise(() =>
            fc.assert(
              fc.asyncProperty(writersArbitrary, (writers) => Runtime.runPromise(runtime)(check(writers))),
              { numRuns: 40 }
            )
          )
        }), { timeout: 360_000 })
    })
  })
})
