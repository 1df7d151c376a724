/**
 * The audit (outbox.md): compares the read model's document hashes with a legacy projection's, so that a
 * migration onto Khala can be checked before clients move: a document missing on either side, or whose hash differs.
 */
import { Effect, Either, Metric, Schema, Stream } from "effect"
import { payloadHash } from "../protocol/PayloadHash.js"
import type { LegacyReadError } from "../services/Audit.js"
import { DocumentHashes, LegacyReader } from "../services/Audit.js"
import type { StorageError } from "../services/StorageError.js"

export type MismatchKind = "missing_in_khala" | "missing_in_legacy" | "hash_differs"

export interface Mismatch {
  readonly kind: MismatchKind
  readonly topic: string
  readonly orgId: string
  readonly docKey: string
  readonly khala: string | null
  readonly legacy: string | null
}

export interface AuditReport {
  readonly topic: string
  readonly khalaDocuments: number
  readonly legacyDocuments: number
  readonly mismatches: ReadonlyArray<Mismatch>
}

/** Mismatches found, by kind (three values: a bounded label). */
export const mismatchesTotal = Metric.counter("khala_audit_mismatches_total", {
  description: "Documents whose read-model hash and legacy projection disagree, by kind",
  incremental: true
})

/** The audit found mismatches: the report says which. */
export class AuditMismatches extends Schema.TaggedError<AuditMismatches>()("AuditMismatches", {
  topic: Schema.String,
  count: Schema.Number
}) {
  override get message() {
    return `audit of ${this.topic}: ${this.count} mismatch${this.count === 1 ? "" : "es"}`
  }
}

const key = (orgId: string, docKey: string) => `${orgId}\u0000${docKey}`

/**
 * Audits one topic: the legacy side is held in memory by `(orgId, docKey)` (a payload is hashed as Khala hashes it),
 * then the read model is streamed past it in pages. Each mismatch counts in `khala_audit_mismatches_total`.
 */
export const auditTopic = (
  topic: string
): Effect.Effect<AuditReport, StorageError | LegacyReadError, LegacyReader | DocumentHashes> =>
  Effect.gen(function*() {
    const legacy = new Map<string, { readonly orgId: string; readonly docKey: string; readonly hash: string | null }>()
    yield* (yield* LegacyReader).list(topic).pipe(
      Stream.runForEach((document) =>
        Effect.sync(() => {
          const hash = document.hash ??
            (document.payload === undefined ? null : Either.getOrNull(payloadHash(document.payload)))
          legacy.set(key(document.orgId, document.docKey), { orgId: document.orgId, docKey: document.docKey, hash })
        })
      )
    )
    const legacyDocuments = legacy.size
    const mismatches: Array<Mismatch> = []
    let khalaDocuments = 0
    yield* (yield* DocumentHashes).list(topic).pipe(
      Stream.runForEach((document) =>
        Effect.sync(() => {
          khalaDocuments++
          const id = key(document.orgId, document.docKey)
          const other = legacy.get(id)
          legacy.delete(id)
          const base = { topic, orgId: document.orgId, docKey: document.docKey, khala: document.hash }
          if (other === undefined) mismatches.push({ ...base, kind: "missing_in_legacy", legacy: null })
          else if (other.hash !== document.hash) mismatches.push({ ...base, kind: "hash_differs", legacy: other.hash })
        })
      )
    )
    for (const other of legacy.values()) {
      mismatches.push({
        kind: "missing_in_khala",
        topic,
        orgId: other.orgId,
        docKey: other.docKey,
        khala: null,
        legacy: other.hash
      })
    }
    for (const mismatch of mismatches) yield* Metric.increment(Metric.tagged(mismatchesTotal, "kind", mismatch.kind))
    return { topic, khalaDocuments, legacyDocuments, mismatches }
  })
