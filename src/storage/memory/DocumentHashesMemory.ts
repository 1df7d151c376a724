import { Effect, Layer, Stream } from "effect"
import type { DocumentHash } from "../../services/Audit.js"
import { DocumentHashes } from "../../services/Audit.js"
import { MemoryStore } from "./MemoryStore.js"

export const make = Effect.map(MemoryStore, (store) =>
  DocumentHashes.of({
    list: (topic) =>
      Stream.fromIterableEffect(Effect.map(store.read, (state) => {
        const hashes: Array<DocumentHash> = []
        for (const [, d] of state.documents) {
          if (d.topic === topic && !d.deleted && d.payloadHash !== null) {
            hashes.push({ orgId: d.orgId, docKey: d.docKey, hash: d.payloadHash })
          }
        }
        return hashes.sort((a, b) =>
          a.orgId < b.orgId ? -1 : a.orgId > b.orgId ? 1 : a.docKey < b.docKey ? -1 : a.docKey > b.docKey ? 1 : 0
        )
      }))
  }))

export const layerMemory: Layer.Layer<DocumentHashes, never, MemoryStore> = Layer.effect(DocumentHashes, make)
