/**
 * The client side of the wire (protocol.md §5): the frames it sends on `sync:v1`, and plain decoders of what the server
 * sends back. The decoders check every field they read, by hand rather than with `Schema`: they run on every frame
 * and sit in the browser bundle, where `Schema` and the Effect runtime it needs would exceed the size budget.
 *
 * @since 0.1.0
 */
import type { WireErrorCode } from "../protocol/ErrorCode.js"
import { channelTopic, SyncEvent } from "../protocol/SyncChannel.js"
import type * as UpdateBatch from "../protocol/UpdateBatch.js"

/**
 * The Phoenix socket topic and the channel events the client uses.
 *
 * @since 0.1.0
 */
export const Phoenix = {
  topic: "phoenix",
  heartbeat: "heartbeat",
  join: "phx_join",
  reply: "phx_reply",
  close: "phx_close",
  error: "phx_error"
} as const

export { channelTopic, SyncEvent }

/**
 * The in-band token refresh event (protocol.md §8).
 *
 * @since 0.1.0
 */
export const authEvent = "sync:auth"

/**
 * A decoded server frame.
 *
 * @since 0.1.0
 */
export interface InboundFrame {
  readonly joinRef: string | null
  readonly ref: string | null
  readonly topic: string
  readonly event: string
  readonly payload: unknown
}

/**
 * Encodes a client frame, `[join_ref, ref, topic, event, payload]`.
 *
 * @since 0.1.0
 */
export const encodeFrame = (
  joinRef: string | null,
  ref: string | null,
  topic: string,
  event: string,
  payload: unknown
): string => JSON.stringify([joinRef, ref, topic, event, payload])

const isRecord = (u: unknown): u is { readonly [key: string]: unknown } =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const isRef = (u: unknown): u is string | null => u === null || typeof u === "string"

const isWatermark = (u: unknown): u is number => typeof u === "number" && Number.isSafeInteger(u) && u >= 0

/**
 * Decodes a text frame; undefined when it is not a Phoenix v2 frame.
 *
 * @since 0.1.0
 */
export const decodeFrame = (text: string): InboundFrame | undefined => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return undefined
  }
  if (!Array.isArray(json) || json.length !== 5) return undefined
  const [joinRef, ref, topic, event, payload] = json as Array<unknown>
  if (!isRef(joinRef) || !isRef(ref) || typeof topic !== "string" || typeof event !== "string") return undefined
  return { joinRef, ref, topic, event, payload }
}

/**
 * A `phx_reply` payload.
 *
 * @since 0.1.0
 */
export interface Reply {
  readonly status: "ok" | "error"
  readonly response: { readonly [key: string]: unknown }
}

/**
 * Decodes a `phx_reply` payload.
 *
 * @since 0.1.0
 */
export const decodeReply = (payload: unknown): Reply | undefined => {
  if (!isRecord(payload)) return undefined
  const status = payload["status"]
  if (status !== "ok" && status !== "error") return undefined
  const response = payload["response"]
  return { status, response: isRecord(response) ? response : {} }
}

/**
 * An error reply or `sync:error` push (protocol.md §5), the fields the client acts on.
 *
 * @since 0.1.0
 */
export interface ErrorInfo {
  readonly code: WireErrorCode | (string & {})
  readonly message: string
  readonly reason: string | undefined
  readonly retryAfterMs: number | undefined
  readonly staleTopics: ReadonlyArray<{ readonly topic: string; readonly retentionFloor: number }>
  readonly forbiddenTopics: ReadonlyArray<string>
}

const strings = (u: unknown): Array<string> =>
  Array.isArray(u) ? u.filter((s): s is string => typeof s === "string") : []

/**
 * Decodes an error payload; an unreadable one reads as `internal`, which the client answers by reconnecting.
 *
 * @since 0.1.0
 */
export const decodeError = (payload: unknown): ErrorInfo => {
  const error = isRecord(payload) ? payload : {}
  const retryAfter = error["retry_after_ms"]
  const stale = Array.isArray(error["stale_topics"]) ? error["stale_topics"] as Array<unknown> : []
  return {
    code: typeof error["code"] === "string" ? error["code"] : "internal",
    message: typeof error["message"] === "string" ? error["message"] : "",
    reason: typeof error["reason"] === "string" ? error["reason"] : undefined,
    retryAfterMs: typeof retryAfter === "number" && retryAfter >= 0 ? retryAfter : undefined,
    staleTopics: stale.flatMap((entry) =>
      isRecord(entry) && typeof entry["topic"] === "string"
        ? [{
          topic: entry["topic"],
          retentionFloor: isWatermark(entry["retention_floor"]) ? entry["retention_floor"] : 0
        }]
        : []
    ),
    forbiddenTopics: strings(error["forbidden_topics"])
  }
}

/**
 * A topic's position as the server reports it, with its epoch once the server has epochs (protocol.md §7).
 *
 * @since 0.1.0
 */
export interface Position {
  readonly topic: string
  readonly watermark: number
  readonly epoch: string | undefined
}

const epochOf = (u: unknown): string | undefined =>
  typeof u === "string" ? u : typeof u === "number" ? String(u) : undefined

/**
 * Decodes a `{topic, watermark, epoch?}` list (`current_watermarks`, `watermarks`, `head_watermarks`); entries that do
 * not read are left out. Epochs may also come as a separate `epochs` list or `{topic: epoch}` map beside it.
 *
 * @since 0.1.0
 */
export const decodePositions = (list: unknown, epochs?: unknown): Array<Position> => {
  const byTopic = new Map<string, string>()
  if (Array.isArray(epochs)) {
    for (const entry of epochs) {
      const epoch = isRecord(entry) ? epochOf(entry["epoch"]) : undefined
      if (isRecord(entry) && typeof entry["topic"] === "string" && epoch !== undefined) {
        byTopic.set(entry["topic"], epoch)
      }
    }
  } else if (isRecord(epochs)) {
    for (const [topic, value] of Object.entries(epochs)) {
      const epoch = epochOf(value)
      if (epoch !== undefined) byTopic.set(topic, epoch)
    }
  }
  if (!Array.isArray(list)) return []
  return list.flatMap((entry): Array<Position> =>
    isRecord(entry) && typeof entry["topic"] === "string" && isWatermark(entry["watermark"])
      ? [{
        topic: entry["topic"],
        watermark: entry["watermark"],
        epoch: epochOf(entry["epoch"]) ?? byTopic.get(entry["topic"])
      }]
      : []
  )
}

/**
 * One update of a `sync:update_batch`: the protocol's own type (a type-only import, so nothing of the server's batch
 * encoder reaches the bundle).
 *
 * @since 0.1.0
 */
export type Update = UpdateBatch.Update

/**
 * A decoded `sync:update_batch`.
 *
 * @since 0.1.0
 */
export interface Batch {
  readonly updates: ReadonlyArray<Update>
  readonly replayComplete: boolean
  /** Through which watermark the socket is caught up per topic, skipped rows included. */
  readonly through: ReadonlyArray<Position>
}

const decodeUpdate = (u: unknown): Update | undefined => {
  if (!isRecord(u)) return undefined
  const { doc_key, doc_version, payload_hash, topic, watermark } = u
  if (typeof topic !== "string" || typeof doc_key !== "string") return undefined
  if (!isWatermark(doc_version) || !isWatermark(watermark)) return undefined
  if (payload_hash !== null && payload_hash !== undefined && typeof payload_hash !== "string") return undefined
  return {
    topic,
    docKey: doc_key,
    docVersion: doc_version,
    payload: u["payload"] ?? null,
    payloadHash: payload_hash ?? null,
    watermark,
    hydrationRequired: u["hydration_required"] === true,
    deleted: u["deleted"] === true
  }
}

/**
 * Decodes a `sync:update_batch` payload; undefined when any update is malformed, since skipping one would open a gap.
 *
 * @since 0.1.0
 */
export const decodeBatch = (payload: unknown): Batch | undefined => {
  if (!isRecord(payload) || !Array.isArray(payload["updates"])) return undefined
  const updates: Array<Update> = []
  for (const raw of payload["updates"] as Array<unknown>) {
    const update = decodeUpdate(raw)
    if (update === undefined) return undefined
    updates.push(update)
  }
  return {
    updates,
    replayComplete: payload["replay_complete"] === true,
    through: decodePositions(payload["watermarks"])
  }
}

/**
 * The `exp` claim of a JWT, in milliseconds since the epoch; undefined when the token does not read as a JWT. The
 * client only schedules its refresh with it: the server verifies tokens.
 *
 * @since 0.1.0
 */
export const tokenExpiry = (token: string): number | undefined => {
  const part = token.split(".")[1]
  if (part === undefined) return undefined
  try {
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/")
    const claims: unknown = JSON.parse(atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4)))
    const exp = isRecord(claims) ? claims["exp"] : undefined
    return typeof exp === "number" ? exp * 1000 : undefined
  } catch {
    return undefined
  }
}
