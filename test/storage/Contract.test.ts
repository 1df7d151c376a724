import { describe, expect, layer } from "@effect/vitest"
import { Effect, Either, Exit, Option } from "effect"
import { payloadHash } from "../../src/protocol/PayloadHashNode.js"
import { Documents } from "../../src/services/Documents.js"
import { Journal } from "../../src/services/Journal.js"
import type { PublishUpdate } from "../../src/services/Publisher.js"
import { Publisher } from "../../src/services/Publisher.js"
import { Sequencer } from "../../src/services/Sequencer.js"
import { providers, Transactions } from "../support/Providers.js"

const runs = "runtime.run_summaries"
const notifications = "runtime.notifications"

const update = (docKey: string, docVersion: number, payload: unknown = { docKey, docVersion }): PublishUpdate => ({
  topic: runs,
  docKey,
  docVersion,
  orgId: "org_a",
  payload
})

const readAll = (topic: string, after = 0) => Effect.flatMap(Journal, (journal) => journal.read(topic, after, 10_000))

class Abort {
  readonly _tag = "Abort"
}

describe.each(providers)("durable core contract: $name", (provider) => {
  describe.skipIf(!provider.available)("", () => {
    layer(provider.layer, { timeout: 180_000, excludeTestServices: true })((it) => {
      it.effect("appends dense watermarks and reads them back in order with payload and hash", () =>
        Effect.gen(function*() {
          const publisher = yield* Publisher
          const before = yield* readAll(runs)
          const outcomes = yield* Effect.forEach([1, 2, 3], (i) => publisher.publish(update(`dense-${i}`, 1)))
          expect(outcomes.map((o) => o._tag)).toEqual(["Appended", "Appended", "Appended"])
          const page = yield* readAll(runs, before.head)
          expect(page.rows.map((r) => r.watermark)).toEqual([before.head + 1, before.head + 2, before.head + 3])
          expect(page.head).toBe(before.head + 3)
          const row = page.rows[0]!
          expect(row).toMatchObject({ docKey: "dense-1", docVersion: 1, orgId: "org_a", pointer: false })
          expect(row.payload).toEqual({ docKey: "dense-1", docVersion: 1 })
          expect(row.payloadHash).toBe(Either.getOrThrow(payloadHash({ docKey: "dense-1", docVersion: 1 })))
        }))

      it.effect("reads page through the journal: each page holds exactly `limit` rows while more follow", () =>
        Effect.gen(function*() {
          const publisher = yield* Publisher
          const journal = yield* Journal
          const before = yield* readAll(runs)
          yield* publisher.publishAll(Array.from({ length: 7 }, (_, i) => update(`paged-${i}`, 1)))
          const pages: Array<ReadonlyArray<number>> = []
          let after = before.head
          while (true) {
            const page = yield* journal.read(runs, after, 3)
            if (page.rows.length === 0) break
            pages.push(page.rows.map((r) => r.watermark - before.head))
            after = page.rows[page.rows.length - 1]!.watermark
          }
          expect(pages).toEqual([[1, 2, 3], [4, 5, 6], [7]])
        }))

      it.effect("a version that is not newer writes nothing and never regresses the document (I6)", () =>
        Effect.gen(function*() {
          const publisher = yield* Publisher
          const documents = yield* Documents
          expect((yield* publisher.publish(update("versioned", 5, { v: 5 })))._tag).toBe("Appended")
          const head = (yield* readAll(runs)).head
          expect(yield* publisher.publish(update("versioned", 5, { v: "same" }))).toEqual({
            _tag: "NotNewer",
            topic: runs
          })
          expect(yield* publisher.publish(update("versioned", 3, { v: 3 }))).toEqual({ _tag: "NotNewer", topic: runs })
          expect((yield* readAll(runs)).head).toBe(head)
          const stored = Option.getOrThrow(yield* documents.get(runs, "org_a", "versioned"))
          expect(stored).toMatchObject({ docVersion: 5, payload: { v: 5 }, watermark: head })
          const newer = yield* publisher.publish(update("versioned", 6, { v: 6 }))
          expect(newer).toEqual({ _tag: "Appended", topic: runs, watermark: head + 1 })
        }))

      it.effect("pointer mode keeps the payload out of the journal but in the read model (I5)", () =>
        Effect.gen(function*() {
          const publisher = yield* Publisher
          const outcome = yield* publisher.publish({ ...update("pointed", 1, { big: "x" }), pointer: true })
          const watermark = outcome._tag === "Appended" ? outcome.watermark : -1
          const row = (yield* readAll(runs, watermark - 1)).rows[0]!
          expect(row).toMatchObject({ watermark, pointer: true, payload: undefined })
          expect(row.payloadHash).toBe(Either.getOrThrow(payloadHash({ big: "x" })))
          const doc = Option.getOrThrow(yield* (yield* Documents).get(runs, "org_a", "pointed"))
          expect(doc.payload).toEqual({ big: "x" })
        }))

      it.effect("a JSON null document is a payload, not a pointer", () =>
        Effect.gen(function*() {
          const outcome = yield* (yield* Publisher).publish(update("null-doc", 1, null))
          const watermark = outcome._tag === "Appended" ? outcome.watermark : -1
          const row = (yield* readAll(runs, watermark - 1)).rows[0]!
          expect(row).toMatchObject({ pointer: false, payload: null })
        }))

      it.effect("bad updates fail with typed errors and write nothing", () =>
        Effect.gen(function*() {
          const publisher = yield* Publisher
          const head = (yield* readAll(runs)).head
          const unknown = yield* Effect.flip(publisher.publish({ ...update("x", 1), topic: "runtime.nope" }))
          expect(unknown).toMatchObject({ _tag: "UnknownTopic", topic: "runtime.nope" })
          for (
            const bad of [
              { ...update("", 1) },
              { ...update("k", 1), orgId: "" },
              { ...update("k", -1) },
              { ...update("k", 1.5) },
              { ...update("k", 1, { n: Number.NaN }) },
              { ...update("k", 1), payload: undefined },
              { ...update("k", 1, { nul: "a\u0000b" }) },
              { ...update("k", 1, { surrogate: "\ud800" }) },
              { ...update("a\u0000b", 1) },
              { ...update("\udc00", 1) },
              { ...update("k", 1), orgId: "x".repeat(1025) }
            ]
          ) {
            expect((yield* Effect.flip(publisher.publish(bad)))._tag).toBe("InvalidUpdate")
          }
          expect((yield* readAll(runs)).head).toBe(head)
        }))

      it.effect("publishAll applies in order, atomically, and names the bad update", () =>
        Effect.gen(function*() {
          const publisher = yield* Publisher
          const runsHead = (yield* readAll(runs)).head
          const notificationsHead = (yield* readAll(notifications)).head
          const outcomes = yield* publisher.publishAll([
            update("batch-a", 1),
            { ...update("batch-n", 1), topic: notifications },
            update("batch-a", 1),
            update("batch-a", 2)
          ])
          expect(outcomes).toEqual([
            { _tag: "Appended", topic: runs, watermark: runsHead + 1 },
            { _tag: "Appended", topic: notifications, watermark: notificationsHead + 1 },
            { _tag: "NotNewer", topic: runs },
            { _tag: "Appended", topic: runs, watermark: runsHead + 2 }
          ])
          const invalid = yield* Effect.flip(publisher.publishAll([update("batch-b", 1), update("", 1)]))
          expect(invalid).toMatchObject({ _tag: "InvalidUpdate", index: 1 })
          const unknown = yield* Effect.flip(
            publisher.publishAll([update("batch-c", 1), { ...update("batch-c", 1), topic: "runtime.nope" }])
          )
          expect(unknown._tag).toBe("UnknownTopic")
          expect((yield* readAll(runs)).head).toBe(runsHead + 2)
          expect(Option.isNone(yield* (yield* Documents).get(runs, "org_a", "batch-c"))).toBe(true)
        }))

      it.effect("a publish inside a caller transaction that rolls back leaves no trace", () =>
        Effect.gen(function*() {
          const publisher = yield* Publisher
          const transactions = yield* Transactions
          const head = (yield* readAll(runs)).head
          const exit = yield* transactions.run(
            Effect.gen(function*() {
              const outcome = yield* publisher.publish(update("rolled-back", 1))
              // the transaction reads its own write
              expect(outcome).toEqual({ _tag: "Appended", topic: runs, watermark: head + 1 })
              yield* publisher.publishAll([update("rolled-back-2", 1)])
              return yield* Effect.fail(new Abort())
            })
          ).pipe(Effect.exit)
          expect(Exit.isFailure(exit)).toBe(true)
          expect((yield* readAll(runs)).head).toBe(head)
          expect(Option.isNone(yield* (yield* Documents).get(runs, "org_a", "rolled-back"))).toBe(true)
          // the watermark was given back: the next publish takes it
          expect(yield* publisher.publish(update("after-rollback", 1))).toEqual({
            _tag: "Appended",
            topic: runs,
            watermark: head + 1
          })
          // and a committing caller transaction publishes with its own writes
          const committed = yield* transactions.run(publisher.publish(update("committed", 1)))
          expect(committed).toEqual({ _tag: "Appended", topic: runs, watermark: head + 2 })
        }))

      it.effect("a typed publish error handled inside a caller transaction leaves that transaction intact", () =>
        Effect.gen(function*() {
          const publisher = yield* Publisher
          const transactions = yield* Transactions
          const head = (yield* readAll(runs)).head
          yield* transactions.run(Effect.gen(function*() {
            yield* publisher.publish(update("kept-1", 1))
            const error = yield* Effect.flip(publisher.publish({ ...update("x", 1), topic: "runtime.nope" }))
            expect(error._tag).toBe("UnknownTopic")
            yield* publisher.publish(update("kept-2", 1))
          }))
          expect((yield* readAll(runs, head)).rows.map((r) => r.docKey)).toEqual(["kept-1", "kept-2"])
        }))

      it.effect("a nested transaction that fails undoes only its own publishes, like a savepoint", () =>
        Effect.gen(function*() {
          const publisher = yield* Publisher
          const transactions = yield* Transactions
          const head = (yield* readAll(runs)).head
          yield* transactions.run(Effect.gen(function*() {
            yield* publisher.publish(update("outer", 1))
            yield* transactions.run(Effect.zipRight(publisher.publish(update("inner", 1)), Effect.fail(new Abort())))
              .pipe(Effect.ignore)
          }))
          expect((yield* readAll(runs, head)).rows.map((r) => r.docKey)).toEqual(["outer"])
        }))

      it.effect("an aborted publish gives its watermark back: the next one takes it (I2)", () =>
        Effect.gen(function*() {
          const sequencer = yield* Sequencer
          const publisher = yield* Publisher
          const transactions = yield* Transactions
          const topic = "test.aborts"
          yield* sequencer.register([{ topic, retentionClass: "unspecified" }])
          yield* transactions.run(
            Effect.zipRight(publisher.publish({ ...update("a", 1), topic }), Effect.fail(new Abort()))
          )
            .pipe(Effect.ignore)
          expect(yield* publisher.publish({ ...update("b", 1), topic })).toEqual({
            _tag: "Appended",
            topic,
            watermark: 1
          })
          const positions = yield* sequencer.positions([topic, "test.missing"])
          expect(positions).toMatchObject([{ topic, head: 1, retentionFloor: 0 }])
          expect(positions[0]!.epoch).toEqual(expect.any(String))
        }))

      it.effect("pruning raises a persisted floor; resuming below it is stale, even on an emptied topic (I8)", () =>
        Effect.gen(function*() {
          const sequencer = yield* Sequencer
          const journal = yield* Journal
          const publisher = yield* Publisher
          const topic = "test.prune"
          yield* sequencer.register([{ topic, retentionClass: "unspecified" }])
          yield* Effect.forEach([1, 2, 3, 4], (i) => publisher.publish({ ...update(`p${i}`, 1), topic }))
          expect(yield* journal.prune(topic, 2)).toEqual({ topic, deleted: 2, retentionFloor: 2 })
          expect((yield* journal.read(topic, 2, 100)).rows.map((r) => r.watermark)).toEqual([3, 4])
          expect(yield* Effect.flip(journal.read(topic, 1, 100))).toMatchObject({
            _tag: "StaleCursor",
            after: 1,
            retentionFloor: 2
          })
          // a floor never moves down, nor above the head
          expect(yield* journal.prune(topic, 1)).toEqual({ topic, deleted: 0, retentionFloor: 2 })
          expect(yield* journal.prune(topic, 99)).toEqual({ topic, deleted: 2, retentionFloor: 4 })
          const empty = yield* journal.read(topic, 4, 100)
          expect(empty).toMatchObject({ rows: [], through: 4, head: 4, retentionFloor: 4 })
          expect((yield* Effect.flip(journal.read(topic, 0, 100)))._tag).toBe("StaleCursor")
          expect(yield* publisher.publish({ ...update("p5", 1), topic })).toEqual({
            _tag: "Appended",
            topic,
            watermark: 5
          })
          expect((yield* Effect.flip(journal.prune("test.missing", 1)))._tag).toBe("UnknownTopic")
        }))

      it.effect("documents list in doc_key order per org, paged, with the watermark of their snapshot", () =>
        Effect.gen(function*() {
          const sequencer = yield* Sequencer
          const publisher = yield* Publisher
          const documents = yield* Documents
          const topic = "test.documents"
          yield* sequencer.register([{ topic, retentionClass: "unspecified" }])
          const keys = ["b", "a", "\u{1F600}", "\uFFFD", "c"]
          yield* Effect.forEach(keys, (docKey) => publisher.publish({ ...update(docKey, 1), topic }))
          yield* publisher.publish({ ...update("other-org", 1), topic, orgId: "org_b" })
          const first = yield* documents.list({ topic, orgId: "org_a", limit: 3 })
          expect(first.documents.map((d) => d.docKey)).toEqual(["a", "b", "c"])
          expect(first.watermark).toBe(6)
          const second = yield* documents.list({
            topic,
            orgId: "org_a",
            limit: 3,
            afterKey: Option.getOrThrow(first.nextKey)
          })
          // code point order: U+FFFD before U+1F600, whatever the database's locale
          expect(second.documents.map((d) => d.docKey)).toEqual(["\uFFFD", "\u{1F600}"])
          expect(Option.isNone(second.nextKey)).toBe(true)
          expect((yield* documents.list({ topic, orgId: "org_b", limit: 10 })).documents.map((d) => d.docKey)).toEqual([
            "other-org"
          ])
          expect((yield* Effect.flip(documents.get("test.missing", "o", "a")))._tag).toBe("UnknownTopic")
          expect((yield* Effect.flip(documents.list({ topic: "test.missing", orgId: "o", limit: 1 })))._tag).toBe(
            "UnknownTopic"
          )
        }))
    })
  })
})
