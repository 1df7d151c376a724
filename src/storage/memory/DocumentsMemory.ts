import { Effect, HashMap, Layer, Option } from "effect"
import { compareCodePoints } from "../../protocol/CanonicalJson.js"
import { defaultMaxPayloadBytes } from "../../protocol/UpdateBatch.js"
import { checkLimit } from "../../services/Arguments.js"
import type { Document, ListedDocument } from "../../services/Documents.js"
import { Documents, listedDocumentJson } from "../../services/Documents.js"
import { defaultReadMaxBytes } from "../../services/Journal.js"
import { documentId, MemoryStore } from "./MemoryStore.js"
import { getTopic } from "./SequencerMemory.js"

// Postgres orders doc_key by bytes (COLLATE "C"), which is code point order.
const byKey = (a: Document, b: Document) => compareCodePoints(a.docKey, b.docKey)

export const make = Effect.gen(function*() {
  const store = yield* MemoryStore

  const getMany = (topic: string, orgId: string, docKeys: ReadonlyArray<string>) =>
    Effect.flatMap(store.read, (state) =>
      Effect.as(
        getTopic(state, topic),
        Array.from(new Set(docKeys)).flatMap((docKey) =>
          Option.toArray(HashMap.get(state.documents, documentId(topic, orgId, docKey)))
        ).sort(byKey)
      ))

  return Documents.of({
    get: (topic, orgId, docKey) =>
      Effect.map(getMany(topic, orgId, [docKey]), (found) => Option.fromNullable(found[0])),
    getMany,
    list: ({ afterKey, docKeyPrefix, limit, maxBytes, maxPayloadBytes, orgId, topic }) =>
      Effect.flatMap(
        Effect.zipRight(checkLimit(limit), store.read),
        (state) =>
          Effect.map(getTopic(state, topic), (t) => {
            const payloadLimit = maxPayloadBytes ?? defaultMaxPayloadBytes
            const byteLimit = maxBytes ?? defaultReadMaxBytes
            const matching = Array.from(HashMap.values(state.documents))
              .filter((d) =>
                d.topic === topic && d.orgId === orgId && !d.deleted &&
                (afterKey === undefined || compareCodePoints(d.docKey, afterKey) > 0) &&
                (docKeyPrefix === undefined || d.docKey.startsWith(docKeyPrefix))
              )
              .sort(byKey)
            const documents: Array<ListedDocument> = []
            let bytes = 0
            for (const d of matching) {
              if (documents.length === limit || bytes >= byteLimit) break
              const oversize = d.payloadBytes > payloadLimit
              bytes += oversize ? 0 : d.payloadBytes
              documents.push({
                docKey: d.docKey,
                json: listedDocumentJson({
                  docKey: d.docKey,
                  docVersion: d.docVersion,
                  payloadJson: oversize ? undefined : JSON.stringify(d.payload),
                  // a live document always has its hash
                  payloadHash: d.payloadHash!,
                  watermark: d.watermark
                })
              })
            }
            return {
              documents,
              watermark: t.head,
              epoch: t.epoch,
              nextKey: matching.length > documents.length && documents.length > 0
                ? Option.some(documents[documents.length - 1]!.docKey)
                : Option.none()
            }
          })
      )
  })
})

export const layerMemory = Layer.effect(Documents, make)
