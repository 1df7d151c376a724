/**
 * `sync:update_batch`, the hot path (protocol.md §5): a batch is serialized once per topic and shared by every socket
 * subscribed to it, so `encodeUpdateBatchJson` builds its JSON text directly around payloads that were serialized
 * once when read from the journal, and `splitUpdates` cuts a list of such rows into batches within the count and
 * byte limits.
 *
 * Browser-safe and free of Effect runtime requirements.
 *
 * @since 0.1.0
 */
import type { TopicWatermark } from "./Watermark.js"
import { topicWatermarks } from "./Watermark.js"

/**
 * Default byte limit of one `sync:update_batch` (protocol.md §5: 2 MiB).
 *
 * @since 0.1.0
 */
export const defaultMaxBatchBytes = 2 * 1024 * 1024

/**
 * Default byte limit of one update's payload (protocol.md §5: 256 KiB).
 *
 * @since 0.1.0
 */
export const defaultMaxPayloadBytes = 256 * 1024

/**
 * One journal row as sent to a client, with its payload as a value.
 *
 * @since 0.1.0
 */
export interface Update {
  /** The topic name in the form the receiving clients used. */
  readonly topic: string
  readonly docKey: string
  readonly docVersion: number
  /** The document; null when `hydrationRequired`. */
  readonly payload: unknown
  /** `sha256:<hex>` or null. */
  readonly payloadHash: string | null
  readonly watermark: number
  readonly hydrationRequired: boolean
  /** The document was deleted: the client drops it (protocol.md §7). */
  readonly deleted: boolean
}

/**
 * One journal row with its payload already serialized (once, for every socket), spliced verbatim into the
 * batch text: `payloadJson` must be valid JSON text, or null for a JSON null.
 *
 * @since 0.1.0
 */
export interface SerializedUpdate extends Omit<Update, "payload"> {
  readonly payloadJson: string | null
}

/**
 * An update as it appears in `updates[]`.
 *
 * @since 0.1.0
 */
export interface UpdateJson {
  readonly topic: string
  readonly doc_key: string
  readonly doc_version: number
  readonly payload: unknown
  readonly payload_hash: string | null
  readonly watermark: number
  readonly hydration_required: boolean
  readonly deleted: boolean
}

/**
 * `sync:update_batch` push.
 *
 * @since 0.1.0
 */
export interface UpdateBatch {
  readonly updates: ReadonlyArray<UpdateJson>
  readonly replay_complete: boolean
  /** The topics' heads; the only place heads travel (protocol.md §5). */
  readonly head_watermarks: ReadonlyArray<TopicWatermark>
  /** Through which watermark the client is caught up, skipped rows included (I7). */
  readonly watermarks: ReadonlyArray<TopicWatermark>
}

/**
 * What a `sync:update_batch` is built from.
 *
 * @since 0.1.0
 */
export interface UpdateBatchOptions<U> {
  readonly updates: ReadonlyArray<U>
  readonly replayComplete: boolean
  readonly headWatermarks: ReadonlyArray<TopicWatermark>
  readonly watermarks: ReadonlyArray<TopicWatermark>
}

/**
 * Builds a `sync:update_batch` payload as an object. For fan-out, prefer `encodeUpdateBatchJson`.
 *
 * @since 0.1.0
 */
export const updateBatch = (options: UpdateBatchOptions<Update>): UpdateBatch => ({
  updates: options.updates.map((update) => ({
    topic: update.topic,
    doc_key: update.docKey,
    doc_version: update.docVersion,
    // `undefined` would make JSON.stringify drop the key; the wire always has `payload`.
    payload: update.payload === undefined ? null : update.payload,
    payload_hash: update.payloadHash,
    watermark: update.watermark,
    hydration_required: update.hydrationRequired,
    deleted: update.deleted
  })),
  replay_complete: options.replayComplete,
  head_watermarks: topicWatermarks(options.headWatermarks),
  watermarks: topicWatermarks(options.watermarks)
})

const payloadJsonOf = (update: Update | SerializedUpdate): string => {
  if ("payloadJson" in update) return update.payloadJson ?? "null"
  return update.payload === undefined ? "null" : JSON.stringify(update.payload)
}

// The text of one update around its payload, keys in the order `updateBatch` produces them.
const updateHead = (update: Omit<Update, "payload">): string =>
  "{\"topic\":" + JSON.stringify(update.topic) +
  ",\"doc_key\":" + JSON.stringify(update.docKey) +
  ",\"doc_version\":" + JSON.stringify(update.docVersion) +
  ",\"payload\":"

const updateTail = (update: Omit<Update, "payload">): string =>
  ",\"payload_hash\":" + JSON.stringify(update.payloadHash) +
  ",\"watermark\":" + JSON.stringify(update.watermark) +
  ",\"hydration_required\":" + (update.hydrationRequired ? "true" : "false") +
  ",\"deleted\":" + (update.deleted ? "true" : "false") + "}"

/**
 * Builds the JSON text of a `sync:update_batch` payload directly: serialized payloads are spliced in without
 * being parsed or stringified again. The result is the text of `updateBatch` of the same rows (same keys, same
 * order), ready for `PhoenixFrame.encodePush`.
 *
 * @since 0.1.0
 */
export const encodeUpdateBatchJson = (options: UpdateBatchOptions<Update | SerializedUpdate>): string => {
  let updates = ""
  for (const update of options.updates) {
    if (updates !== "") updates += ","
    updates += updateHead(update) + payloadJsonOf(update) + updateTail(update)
  }
  return "{\"updates\":[" + updates + "],\"replay_complete\":" + (options.replayComplete ? "true" : "false") +
    ",\"head_watermarks\":" + JSON.stringify(topicWatermarks(options.headWatermarks)) +
    ",\"watermarks\":" + JSON.stringify(topicWatermarks(options.watermarks)) + "}"
}

/**
 * Number of bytes of the UTF-8 encoding of a string, without encoding it. A lone surrogate counts as the 3
 * bytes of U+FFFD, as `TextEncoder` writes it.
 *
 * @since 0.1.0
 */
export const utf8ByteLength = (text: string): number => {
  let bytes = 0
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i)
    if (unit < 0x80) bytes += 1
    else if (unit < 0x800) bytes += 2
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1)
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4
        i++
      } else bytes += 3
    } else bytes += 3
  }
  return bytes
}

// A UTF-16 code unit takes 1 to 3 UTF-8 bytes (a surrogate pair, 2 units, takes 4), so the string's length
// settles most payloads without counting.
const exceeds = (text: string, limit: number): boolean =>
  text.length > limit ? true : text.length * 3 <= limit ? false : utf8ByteLength(text) > limit

/**
 * Limits of `splitUpdates`.
 *
 * @since 0.1.0
 */
export interface SplitOptions {
  /** Most updates per batch (the subscription's `replay_batch_size`); at least 1. */
  readonly maxUpdates: number
  /**
   * Most bytes per batch, counted as the UTF-8 text of its `updates` array. The envelope around it (flags and
   * watermark lists, a few dozen bytes per topic) is not counted. Default `defaultMaxBatchBytes`.
   */
  readonly maxBatchBytes?: number | undefined
  /** Most bytes of one payload's JSON text. Default `defaultMaxPayloadBytes`. */
  readonly maxPayloadBytes?: number | undefined
}

/**
 * Cuts rows into consecutive batches of at most `maxUpdates` updates and `maxBatchBytes` bytes, keeping their
 * order. A payload over `maxPayloadBytes` is sent as `payload: null, hydration_required: true` rather than
 * dropped (protocol.md §5). An update too large for a batch on its own (only possible with a batch limit near the
 * payload limit) gets a batch to itself. No rows, no batches: the caller sends the empty batch that completes
 * a replay itself.
 *
 * @since 0.1.0
 */
export const splitUpdates = (
  updates: ReadonlyArray<SerializedUpdate>,
  options: SplitOptions
): Array<Array<SerializedUpdate>> => {
  const maxUpdates = Math.max(1, Math.floor(options.maxUpdates))
  const maxBatchBytes = options.maxBatchBytes ?? defaultMaxBatchBytes
  const maxPayloadBytes = options.maxPayloadBytes ?? defaultMaxPayloadBytes

  const batches: Array<Array<SerializedUpdate>> = []
  let batch: Array<SerializedUpdate> = []
  let batchBytes = 2 // "[]"
  for (const row of updates) {
    const update: SerializedUpdate = row.payloadJson !== null && exceeds(row.payloadJson, maxPayloadBytes)
      ? { ...row, payloadJson: null, hydrationRequired: true }
      : row
    const bytes = utf8ByteLength(updateHead(update)) + utf8ByteLength(update.payloadJson ?? "null") +
      utf8ByteLength(updateTail(update))
    // A batch that is not empty gets a comma before the new update.
    if (batch.length > 0 && (batch.length >= maxUpdates || batchBytes + 1 + bytes > maxBatchBytes)) {
      batches.push(batch)
      batch = []
      batchBytes = 2
    }
    batchBytes += (batch.length === 0 ? 0 : 1) + bytes
    batch.push(update)
  }
  if (batch.length > 0) batches.push(batch)
  return batches
}
