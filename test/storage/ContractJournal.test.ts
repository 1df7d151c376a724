import { describe, expect, layer } from "@effect/vitest"
import { Effect, Option } from "effect"
import { Documents } from "../../src/services/Documents.js"
import { Journal } from "../../src/services/Journal.js"
import { Publisher } from "../../src/services/Publisher.js"
import { Sequencer } from "../../src/services/Sequencer.js"
import { Erasure, providers } from "../support/Providers.js"

const register = (topic: string) =>
  Effect.flatMap(Sequencer, (s) => s.register([{ topic, retentionClass: "unspecified" }]))

const publishMany = (topic: string, count: number, payload: (i: number) => unknown = (i) => ({ i })) =>
  Effect.flatMap(Publisher, (p) =>
    p.publishAll(Array.from({ length: count }, (_, i) => ({
      topic,
      orgId: "org_a",
      docKey: `d${i}`,
      docVersion: 1,
      payload: payload(i)
    }))))

/** Every watermark a reader paging from `after` with pages of `limit` sees, and how many reads it took. */
const readThrough = (topic: string, after: number, limit: number) =>
  Effect.gen(function*() {
    const journal = yield* Journal
    const seen: Array<number> = []
    let reads = 0
    while (true) {
      const page = yield* journal.read(topic, after, limit)
      reads++
      for (const row of page.rows) seen.push(row.watermark)
      expect(page.through).toBeGreaterThanOrEqual(after)
      if (page.through === after) break
      after = page.through
    }
    return { seen, reads, through: after }
  })

describe.each(providers)("journal contract: $name", (provider) => {
  describe.skipIf(!provider.available)("", () => {
    layer(provider.layer, { timeout: 180_000, excludeTestServices: true })((it) => {
      it.effect("a hole longer than a page is stepped over: a reader reaches the head and gets every row after it", () =>
        Effect.gen(function*() {
          const topic = "test.holes"
          yield* register(topic)
          yield* publishMany(topic, 40)
          // an erasure of rows 6..30 (longer than a page of 10) and of the last row
          yield* (yield* Erasure).erase(topic, 5, 30)
          yield* (yield* Erasure).erase(topic, 39, 40)
          const { reads, seen, through } = yield* readThrough(topic, 0, 10)
          expect(seen).toEqual([1, 2, 3, 4, 5, 31, 32, 33, 34, 35, 36, 37, 38, 39])
          expect(through).toBe(40)
          // the hole costs one read, not one per page it spans
          expect(reads).toBeLessThanOrEqual(5)
          const page = yield* (yield* Journal).read(topic, 5, 10)
          expect(page).toMatchObject({ through: 30, head: 40 })
          expect(page.rows).toEqual([])
        }))

      it.effect("a page is bounded in bytes and continues where it was cut; oversize payloads are left out", () =>
        Effect.gen(function*() {
          const topic = "test.page_bytes"
          yield* register(topic)
          yield* publishMany(topic, 6, (i) => ({ text: i === 2 ? "y".repeat(5000) : "x".repeat(90) }))
          const journal = yield* Journal
          const first = yield* journal.read(topic, 0, 100, { maxBytes: 150 })
          // the bytes before a row must be under the budget for the row to be taken
          expect(first.rows.map((r) => r.watermark)).toEqual([1, 2])
          expect(first.through).toBe(2)
          const oversize = yield* journal.read(topic, 2, 100, { maxPayloadBytes: 1000, maxBytes: 150 })
          // row 3 is over the per-update limit: left out (hydration required) and not counted against the page
          expect(oversize.rows.map((r) => [r.watermark, r.pointer, r.payload === undefined])).toEqual([
            [3, true, true],
            [4, false, false],
            [5, false, false]
          ])
          expect(oversize.through).toBe(5)
          expect(oversize.rows[0]!.payloadHash).toMatch(/^sha256:/)
          const rest = yield* journal.read(topic, 5, 100, { maxBytes: 1 })
          expect(rest).toMatchObject({ through: 6, head: 6 })
        }))

      it.effect("resetting a topic empties its journal, makes every resume point stale and changes its epoch", () =>
        Effect.gen(function*() {
          const topic = "test.reset"
          yield* register(topic)
          const sequencer = yield* Sequencer
          const journal = yield* Journal
          yield* publishMany(topic, 3)
          const before = (yield* sequencer.positions([topic]))[0]!
          expect((yield* journal.read(topic, 0, 10)).epoch).toBe(before.epoch)
          // registering again keeps the epoch: only a reset changes it
          yield* register(topic)
          expect((yield* sequencer.positions([topic]))[0]!.epoch).toBe(before.epoch)
          const epoch = yield* sequencer.resetTopic(topic)
          expect(epoch).not.toBe(before.epoch)
          expect((yield* sequencer.positions([topic]))[0]).toEqual({ topic, head: 3, retentionFloor: 3, epoch })
          expect((yield* Effect.flip(journal.read(topic, 0, 10)))._tag).toBe("StaleCursor")
          expect(yield* journal.read(topic, 3, 10)).toMatchObject({ rows: [], through: 3, epoch })
          // the read model stays: clients re-hydrate from it
          expect(Option.isSome(yield* (yield* Documents).get(topic, "org_a", "d0"))).toBe(true)
          expect((yield* Effect.flip(sequencer.resetTopic("test.missing")))._tag).toBe("UnknownTopic")
        }))
    })
  })
})
