import { Chunk, Effect, HashMap, Layer, Option } from "effect"
import type { PreparedUpdate } from "../../services/Appender.js"
import { Appender } from "../../services/Appender.js"
import type { Document } from "../../services/Documents.js"
import type { JournalRow } from "../../services/Journal.js"
import type { PublishOutcome } from "../../services/Publisher.js"
import { Appended, NotNewer } from "../../services/Publisher.js"
import type { MemoryState } from "./MemoryStore.js"
import { documentId, MemoryStore, payloadBytesOf } from "./MemoryStore.js"
import { getTopic } from "./SequencerMemory.js"

/** The memory twin of `khala.append`: version check within the org, dense watermark, journal row, read model. */
const applyUpdate = (state: MemoryState, update: PreparedUpdate) =>
  Effect.map(getTopic(state, update.topic), (topic): readonly [PublishOutcome, MemoryState] => {
    const id = documentId(update.topic, update.orgId, update.docKey)
    const stored = HashMap.get(state.documents, id)
    if (Option.isSome(stored) && stored.value.docVersion >= update.docVersion) {
      return [NotNewer(update.topic), state]
    }
    const watermark = topic.head + 1
    const now = new Date()
    const payload = update.deleted ? undefined : JSON.parse(update.canonicalPayload)
    const pointer = !update.deleted && (update.pointer === true || topic.registration.pointerMode === true)
    const document: Document = {
      topic: update.topic,
      docKey: update.docKey,
      docVersion: update.docVersion,
      orgId: update.orgId,
      payload,
      payloadHash: update.payloadHash,
      payloadBytes: update.payloadBytes,
      deleted: update.deleted,
      watermark,
      updatedAt: now
    }
    const row: JournalRow = {
      topic: update.topic,
      watermark,
      docKey: update.docKey,
      docVersion: update.docVersion,
      orgId: update.orgId,
      payload: pointer ? undefined : payload,
      pointer,
      deleted: update.deleted,
      payloadHash: update.payloadHash,
      insertedAt: now,
      ...(update.traceContext === undefined ? {} : { traceContext: update.traceContext })
    }
    payloadBytesOf.set(row, pointer ? 0 : update.payloadBytes)
    return [Appended(update.topic, watermark), {
      ...state,
      topics: HashMap.set(state.topics, update.topic, {
        ...topic,
        head: watermark,
        events: Chunk.append(topic.events, row)
      }),
      documents: HashMap.set(state.documents, id, document)
    }]
  })

export const make = Effect.gen(function*() {
  const store = yield* MemoryStore

  const applyAll = (updates: ReadonlyArray<PreparedUpdate>, options?: { readonly traceContext?: string | undefined }) =>
    store.write((initial) =>
      Effect.reduce(
        options?.traceContext === undefined
          ? updates
          : updates.map((update) => ({ ...update, traceContext: options.traceContext })),
        [[] as Array<PublishOutcome>, initial] as const,
        ([outcomes, state], update) =>
          Effect.map(applyUpdate(state, update), ([outcome, next]) => {
            outcomes.push(outcome)
            return [outcomes, next] as const
          })
      )
    )

  return Appender.of({
    inTransaction: store.inTransaction,
    appendOne: (update) => Effect.map(applyAll([update]), (outcomes) => outcomes[0]!),
    appendAll: (updates, options) => applyAll(updates, options)
  })
})

export const layerMemory: Layer.Layer<Appender, never, MemoryStore> = Layer.effect(Appender, make)
