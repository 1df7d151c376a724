import { describe, expect, layer } from "@effect/vitest"
import { Effect, Option } from "effect"
import type { ListedDocument } from "../../src/services/Documents.js"
import { Documents } from "../../src/services/Documents.js"
import { Journal } from "../../src/services/Journal.js"
import { Publisher } from "../../src/services/Publisher.js"
import { Sequencer } from "../../src/services/Sequencer.js"
import { providers } from "../support/Providers.js"

/** A listed document's JSON, parsed. */
const listed = (document: ListedDocument) => JSON.parse(document.json) as Record<string, unknown>

const register = (topic: string) =>
  Effect.flatMap(Sequencer, (s) => s.register([{ topic, retentionClass: "unspecified" }]))

const publish = (topic: string, orgId: string, docKey: string, docVersion: number, payload: unknown = { docKey }) =>
  Effect.flatMap(Publisher, (p) => p.publish({ topic, orgId, docKey, docVersion, payload }))

const remove = (topic: string, orgId: string, docKey: string, docVersion: number) =>
  Effect.flatMap(Publisher, (p) => p.remove({ topic, orgId, docKey, docVersion }))

describe.each(providers)("documents contract: $name", (provider) => {
  describe.skipIf(!provider.available)("", () => {
    layer(provider.layer, { timeout: 180_000, excludeTestServices: true })((it) => {
      it.effect("another org cannot take over, overwrite or version-probe a document with the same key (I7)", () =>
        Effect.gen(function*() {
          const topic = "test.tenancy"
          yield* register(topic)
          const documents = yield* Documents
          expect(yield* publish(topic, "org_a", "run_1", 3, { owner: "a" })).toMatchObject({ _tag: "Appended" })
          // org_b's v1 is its own document: not refused as "not newer", which would tell org_b that org_a has run_1
          expect(yield* publish(topic, "org_b", "run_1", 1, { owner: "b" })).toMatchObject({ _tag: "Appended" })
          // org_b's v10 does not replace org_a's document, nor its org
          expect(yield* publish(topic, "org_b", "run_1", 10, { owner: "b" })).toMatchObject({ _tag: "Appended" })
          const a = Option.getOrThrow(yield* documents.get(topic, "org_a", "run_1"))
          expect(a).toMatchObject({ orgId: "org_a", docVersion: 3, payload: { owner: "a" } })
          const b = Option.getOrThrow(yield* documents.get(topic, "org_b", "run_1"))
          expect(b).toMatchObject({ orgId: "org_b", docVersion: 10, payload: { owner: "b" } })
          // versions are per org: org_a's v4 is newer than org_a's v3, whatever org_b holds
          expect(yield* publish(topic, "org_a", "run_1", 4, { owner: "a" })).toMatchObject({ _tag: "Appended" })
          expect(yield* publish(topic, "org_a", "run_1", 4)).toMatchObject({ _tag: "NotNewer" })
          expect(Option.isNone(yield* documents.get(topic, "org_c", "run_1"))).toBe(true)
          expect(
            (yield* documents.list({ topic, orgId: "org_a", limit: 10 })).documents.map((d) => listed(d).doc_version)
          )
            .toEqual([4])
          expect((yield* documents.getMany(topic, "org_b", ["run_1", "run_2"])).map((d) => d.docVersion)).toEqual([
            10
          ])
        }))

      it.effect("a delete appends a deleted row and keeps a tombstone, so versions stay monotonic (I6)", () =>
        Effect.gen(function*() {
          const topic = "test.deletes"
          yield* register(topic)
          const documents = yield* Documents
          const journal = yield* Journal
          yield* publish(topic, "org_a", "d1", 2, { v: 2 })
          yield* publish(topic, "org_a", "d2", 1)
          expect(yield* remove(topic, "org_a", "d1", 2)).toMatchObject({ _tag: "NotNewer" })
          expect(yield* remove(topic, "org_a", "d1", 3)).toEqual({ _tag: "Appended", topic, watermark: 3 })
          const row = (yield* journal.read(topic, 2, 10)).rows[0]!
          expect(row).toMatchObject({ docKey: "d1", docVersion: 3, deleted: true, payloadHash: null, pointer: false })
          expect(row.payload).toBeUndefined()
          const tombstone = Option.getOrThrow(yield* documents.get(topic, "org_a", "d1"))
          expect(tombstone).toMatchObject({ deleted: true, docVersion: 3, payloadHash: null, watermark: 3 })
          expect(tombstone.payload).toBeUndefined()
          // listings skip tombstones; a lower version cannot bring the document back, a higher one can
          expect((yield* documents.list({ topic, orgId: "org_a", limit: 10 })).documents.map((d) => d.docKey))
            .toEqual(["d2"])
          expect(yield* publish(topic, "org_a", "d1", 3)).toMatchObject({ _tag: "NotNewer" })
          expect(yield* publish(topic, "org_a", "d1", 4, { back: true })).toMatchObject({ _tag: "Appended" })
          expect(Option.getOrThrow(yield* documents.get(topic, "org_a", "d1"))).toMatchObject({
            deleted: false,
            payload: { back: true }
          })
          // deleting a document that never existed still keeps its version
          expect(yield* remove(topic, "org_a", "never", 5)).toMatchObject({ _tag: "Appended" })
          expect(yield* publish(topic, "org_a", "never", 5)).toMatchObject({ _tag: "NotNewer" })
        }))

      it.effect("pruning drops the tombstones it has passed, and only those", () =>
        Effect.gen(function*() {
          const topic = "test.tombstones"
          yield* register(topic)
          const documents = yield* Documents
          yield* publish(topic, "org_a", "gone", 1)
          yield* remove(topic, "org_a", "gone", 2)
          yield* publish(topic, "org_a", "late", 1)
          yield* remove(topic, "org_a", "late", 2)
          yield* (yield* Journal).prune(topic, 2)
          expect(Option.isNone(yield* documents.get(topic, "org_a", "gone"))).toBe(true)
          expect(Option.getOrThrow(yield* documents.get(topic, "org_a", "late"))).toMatchObject({ deleted: true })
        }))

      it.effect("listing filters by key prefix and bounds a page in bytes, leaving oversize payloads out", () =>
        Effect.gen(function*() {
          const topic = "test.listing"
          yield* register(topic)
          const documents = yield* Documents
          const big = { text: "x".repeat(2000) }
          for (const key of ["run:1", "run:2", "run:3", "ru%n", "run_x", "task:1"]) {
            yield* publish(topic, "org_a", key, 1, key === "run:2" ? big : { key })
          }
          const prefixed = yield* documents.list({
            topic,
            orgId: "org_a",
            docKeyPrefix: "run:",
            limit: 10,
            maxPayloadBytes: 1000
          })
          expect(prefixed.documents.map((d) => d.docKey)).toEqual(["run:1", "run:2", "run:3"])
          // LIKE wildcards in a prefix are plain characters
          expect((yield* documents.list({ topic, orgId: "org_a", docKeyPrefix: "ru%", limit: 10 })).documents.map((
            d
          ) => d.docKey)).toEqual(["ru%n"])
          // over the per-document limit: listed without payload, to be fetched alone
          expect(listed(prefixed.documents[1]!)).toMatchObject({ payload: null, hydration_required: true })
          expect(listed(prefixed.documents[0]!)).toMatchObject({ payload: { key: "run:1" }, hydration_required: false })
          const small = yield* documents.list({ topic, orgId: "org_a", limit: 10, maxPayloadBytes: 100_000 })
          expect(listed(small.documents.find((d) => d.docKey === "run:2")!).payload).toEqual(big)
          // a byte budget cuts the page after the document that reaches it; the next page goes on from there
          const first = yield* documents.list({
            topic,
            orgId: "org_a",
            limit: 10,
            maxBytes: 10,
            maxPayloadBytes: 100_000
          })
          expect(first.documents.map((d) => d.docKey)).toEqual(["ru%n"])
          expect(first.nextKey).toEqual(Option.some("ru%n"))
          const rest = yield* documents.list({
            topic,
            orgId: "org_a",
            limit: 10,
            afterKey: "ru%n",
            maxBytes: 2000,
            maxPayloadBytes: 100_000
          })
          expect(rest.documents.map((d) => d.docKey)).toEqual(["run:1", "run:2"])
          expect(rest.epoch).toBe(first.epoch)
        }))

      it.effect("a listed document's JSON is the hydration document, whatever its key and payload hold", () =>
        Effect.gen(function*() {
          const topic = "test.listed_json"
          yield* register(topic)
          const documents = yield* Documents
          const keys = ["plain", "quote\"d", "back\\slash", "tab\tnew\nline\u0001", "é/ü", "emoji 🚀", "\u2028"]
          for (const [i, key] of keys.entries()) {
            yield* publish(topic, "org_a", key, i + 1, { key, n: i, nested: { list: [1.5, null, true], text: key } })
          }
          const page = yield* documents.list({ topic, orgId: "org_a", limit: 100 })
          expect(page.documents).toHaveLength(keys.length)
          for (const document of page.documents) {
            const stored = Option.getOrThrow(yield* documents.get(topic, "org_a", document.docKey))
            expect(listed(document)).toEqual({
              doc_key: stored.docKey,
              doc_version: stored.docVersion,
              payload: stored.payload,
              payload_hash: stored.payloadHash,
              watermark: stored.watermark,
              deleted: false,
              hydration_required: false
            })
          }
        }))
    })
  })
})
