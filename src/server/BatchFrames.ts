/**
 * The frames a socket's subscriptions send (protocol.md §5.4): rows as the wire has them, cut into `sync:update_batch`
 * frames, with what is shared between sockets: each payload serialized once per process, each live frame encoded once.
 */
import * as PhoenixFrame from "../protocol/PhoenixFrame.js"
import * as SyncChannel from "../protocol/SyncChannel.js"
import type { SerializedUpdate } from "../protocol/UpdateBatch.js"
import * as UpdateBatch from "../protocol/UpdateBatch.js"
import type { Batch } from "../services/Hub.js"
import type { JournalRow } from "../services/Journal.js"

const topic = SyncChannel.channelTopic

// The hub hands the same row objects to every subscriber of a topic: each payload is serialized once per process,
// not once per socket.
const payloadJsons = new WeakMap<JournalRow, string>()
const payloadJson = (row: JournalRow) => {
  let json = payloadJsons.get(row)
  if (json === undefined) {
    json = JSON.stringify(row.payload ?? null)
    payloadJsons.set(row, json)
  }
  return json
}

/**
 * The frames of one live batch, by join ref, topic name and batch size: the hub hands the same batch to every
 * subscriber of a topic and org that is caught up, so each frame is serialized and encoded once per process, and
 * every socket whose client joined with the same ref (clients number refs alike) sends the same bytes.
 */
export const liveFrames = new WeakMap<Batch, Map<string, ReadonlyArray<Uint8Array>>>()
export const encoder = new TextEncoder()

/** A row as the wire sends it; pointer rows ask the client to hydrate (I5). */
const serialized = (row: JournalRow, requestedAs: string): SerializedUpdate => ({
  topic: requestedAs,
  docKey: row.docKey,
  docVersion: row.docVersion,
  payloadJson: row.pointer ? null : payloadJson(row),
  payloadHash: row.payloadHash,
  watermark: row.watermark,
  hydrationRequired: row.pointer,
  deleted: row.deleted
})

/**
 * The frames of a batch, each update list cut to the batch and byte limits, with the watermark each frame brings
 * the client through. Live batches whose rows were all another org's have none: they move the cursor but send
 * nothing (I7); the last replay batch is sent even when empty, so the client knows the replay is complete.
 */
export const framesOf = (joinRef: string, requestedAs: string, batch: Batch, batchSize: number, empty: boolean) => {
  const rows = batch.updates.map((row) => serialized(row, requestedAs))
  const parts = UpdateBatch.splitUpdates(rows, { maxUpdates: batchSize })
  if (parts.length === 0 && empty) parts.push([])
  const heads = [{ topic: requestedAs, watermark: batch.head }]
  return parts.map((updates, i) => {
    const last = i === parts.length - 1
    const through = last ? batch.through : updates[updates.length - 1]!.watermark
    // encoded when it is sent: a subscription waiting for its socket holds one frame's text, not a page's
    const text = () =>
      PhoenixFrame.encodePush(
        joinRef,
        topic,
        SyncChannel.SyncEvent.updateBatch,
        UpdateBatch.encodeUpdateBatchJson({
          updates,
          replayComplete: batch.replayComplete && last,
          headWatermarks: heads,
          watermarks: [{ topic: requestedAs, watermark: through }]
        })
      )
    return { text, through }
  })
}
