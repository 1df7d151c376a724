import { Effect, HashMap, Layer, Option } from "effect"
import { compareCodePoints } from "../../protocol/CanonicalJson.js"
import { checkLimit } from "../../services/Arguments.js"
import { Documents } from "../../services/Documents.js"
import { documentId, MemoryStore } from "./MemoryStore.js"
import { getTopic } from "./SequencerMemory.js"

export const make = Effect.gen(function*() {
  const store = yield* MemoryStore

  return Documents.of({
    get: (topic, docKey) =>
      Effect.flatMap(
        store.read,
        (state) => Effect.as(getTopic(state, topic), HashMap.get(state.documents, documentId(topic, docKey)))
      ),
    list: ({ afterKey, limit, orgId, topic }) =>
      Effect.flatMap(
        Effect.zipRight(checkLimit(limit), store.read),
        (state) =>
          Effect.map(getTopic(state, topic), (t) => {
            // Postgres orders doc_key by bytes (COLLATE "C"), which is code point order.
            const matching = Array.from(HashMap.values(state.documents))
              .filter((d) =>
                d.topic === topic && d.orgId === orgId &&
                (afterKey === undefined || compareCodePoints(d.docKey, afterKey) > 0)
              )
              .sort((a, b) => compareCodePoints(a.docKey, b.docKey))
            const documents = matching.slice(0, limit)
            return {
              documents,
              watermark: t.head,
              nextKey: matching.length > limit && documents.length > 0
                ? Option.some(documents[documents.length - 1]!.docKey)
                : Option.none()
            }
          })
      )
  })
})

export const layerMemory = Layer.effect(Documents, make)
