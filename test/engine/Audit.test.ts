import { describe, expect, it } from "@effect/vitest"
import type { MetricState } from "effect"
import { Effect, Either, Layer, Metric, Stream } from "effect"
import * as Audit from "../../src/engine/Audit.js"
import * as KhalaMemory from "../../src/layers/KhalaMemory.js"
import { payloadHash } from "../../src/protocol/PayloadHash.js"
import type { LegacyDocument } from "../../src/services/Audit.js"
import { LegacyReader } from "../../src/services/Audit.js"
import { Publisher } from "../../src/services/Publisher.js"
import * as DocumentHashesMemory from "../../src/storage/memory/DocumentHashesMemory.js"

const topic = "runtime.run_summaries"

const legacy = (documents: ReadonlyArray<LegacyDocument>) =>
  Layer.succeed(LegacyReader, LegacyReader.of({ list: (t) => Stream.fromIterable(t === topic ? documents : []) }))

const counted = (kind: Audit.MismatchKind) =>
  Effect.map(
    Metric.value(Metric.tagged(Audit.mismatchesTotal, "kind", kind)),
    (state) => (state as MetricState.MetricState.Counter<number>).count
  )

describe("audit", () => {
  it.effect("reports documents missing on either side and hashes that differ, and counts them by kind", () =>
    Effect.gen(function*() {
      const publisher = yield* Publisher
      for (const [orgId, docKey, n] of [["a", "same", 1], ["a", "differs", 2], ["b", "only_khala", 3]] as const) {
        yield* publisher.publish({ topic, docKey, docVersion: 1, orgId, payload: { n } })
      }
      yield* publisher.publish({ topic, docKey: "deleted", docVersion: 1, orgId: "a", payload: {} })
      yield* publisher.remove({ topic, docKey: "deleted", docVersion: 2, orgId: "a" })
      const before = yield* counted("hash_differs")
      const report = yield* Audit.auditTopic(topic).pipe(Effect.provide(legacy([
        // the same document, given by payload (hashed as Khala hashes it) and by hash
        { orgId: "a", docKey: "same", payload: { n: 1 } },
        { orgId: "a", docKey: "differs", hash: Either.getOrThrow(payloadHash({ n: 20 })) },
        // same key, another org: a different document (I7)
        { orgId: "b", docKey: "same", payload: { n: 1 } }
      ])))
      expect(report.khalaDocuments).toBe(3)
      expect(report.legacyDocuments).toBe(3)
      expect(report.mismatches.map((m) => [m.kind, m.orgId, m.docKey])).toEqual([
        ["hash_differs", "a", "differs"],
        ["missing_in_legacy", "b", "only_khala"],
        ["missing_in_khala", "b", "same"]
      ])
      expect(report.mismatches[0]!.khala).toBe(Either.getOrThrow(payloadHash({ n: 2 })))
      expect((yield* counted("hash_differs")) - before).toBe(1)
    }).pipe(Effect.provide(DocumentHashesMemory.layerMemory.pipe(Layer.provideMerge(KhalaMemory.layer())))))

  it.effect("finds nothing when both sides agree", () =>
    Effect.gen(function*() {
      yield* (yield* Publisher).publish({ topic, docKey: "k", docVersion: 1, orgId: "a", payload: [1, "x"] })
      const report = yield* Audit.auditTopic(topic).pipe(
        Effect.provide(legacy([{ orgId: "a", docKey: "k", payload: [1, "x"] }]))
      )
      expect(report).toEqual({ topic, khalaDocuments: 1, legacyDocuments: 1, mismatches: [] })
    }).pipe(Effect.provide(DocumentHashesMemory.layerMemory.pipe(Layer.provideMerge(KhalaMemory.layer())))))
})
