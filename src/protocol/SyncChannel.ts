/**
 * The `sync:v1` channel payloads (SPEC §5): schemas decoding the client's requests (snake_case on the wire,
 * camelCase once decoded), topic resolution against the catalog and the token's scopes, and builders of the
 * server's replies and pushes as plain JSON objects.
 *
 * `sync:update_batch` is the hot path: a batch is serialized once per topic and shared by every socket
 * subscribed to it, so `encodeUpdateBatchJson` builds its JSON text directly around payloads that were
 * serialized once when read from the journal, and `splitUpdates` cuts a list of such rows into batches within
 * the count and byte limits.
 *
 * Browser-safe and free of Effect runtime requirements: plain functions and schemas.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import { identity } from "effect/Function"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import type { WireErrorCode } from "./ErrorCode.js"
import type { Catalog, TopicInfo } from "./TopicCatalog.js"

/**
 * The channel topic clients join.
 *
 * @since 0.1.0
 */
export const channelTopic = "sync:v1"

/**
 * Events of the `sync:v1` channel.
 *
 * @since 0.1.0
 */
export const SyncEvent = {
  subscribe: "sync:subscribe",
  unsubscribe: "sync:unsubscribe",
  heartbeat: "sync:heartbeat",
  updateBatch: "sync:update_batch",
  error: "sync:error"
} as const

/**
 * Most topics one subscribe or unsubscribe request may name (counted before de-duplication, so the work a
 * request causes is bounded by its length).
 *
 * @since 0.1.0
 */
export const maxTopicsPerRequest = 64

/**
 * `replay_batch_size` when the client gives none (SPEC §5).
 *
 * @since 0.1.0
 */
export const defaultReplayBatchSize = 200

/**
 * Cap of `replay_batch_size`; larger values are lowered to it, not refused, so a client asking for "as
 * many as possible" still works.
 *
 * @since 0.1.0
 */
export const maxReplayBatchSize = 1000

/**
 * Default byte limit of one `sync:update_batch` (SPEC §5: 2 MiB).
 *
 * @since 0.1.0
 */
export const defaultMaxBatchBytes = 2 * 1024 * 1024

/**
 * Default byte limit of one update's payload (SPEC §5: 256 KiB).
 *
 * @since 0.1.0
 */
export const defaultMaxPayloadBytes = 256 * 1024

// -----------------------------------------------------------------------------
// Client requests
// -----------------------------------------------------------------------------

/**
 * A journal watermark: a non-negative safe integer (JSON numbers are exact up to 2^53, SPEC §5).
 *
 * @since 0.1.0
 */
export const Watermark = Schema.NonNegativeInt

/**
 * A topic's watermark, `{topic, watermark}` on the wire.
 *
 * @since 0.1.0
 */
export const TopicWatermark = Schema.Struct({
  topic: Schema.String,
  watermark: Watermark
})

/**
 * @since 0.1.0
 */
export interface TopicWatermark extends Schema.Schema.Type<typeof TopicWatermark> {}

/**
 * A non-empty list of topic names (either form, SPEC §4), de-duplicated keeping the first occurrence.
 *
 * @since 0.1.0
 */
export const TopicNames = Schema.transform(
  Schema.Array(Schema.String).pipe(Schema.minItems(1), Schema.maxItems(maxTopicsPerRequest)),
  Schema.Array(Schema.String),
  { strict: true, decode: (topics) => Array.from(new Set(topics)), encode: identity }
)

const ResumeAfterMap = Schema.transform(
  Schema.Record({ key: Schema.String, value: Watermark }),
  Schema.Array(Schema.typeSchema(TopicWatermark)),
  {
    strict: true,
    decode: (map) => Object.entries(map).map(([topic, watermark]) => ({ topic, watermark })),
    encode: (list) => Object.fromEntries(list.map(({ topic, watermark }) => [topic, watermark]))
  }
)

/**
 * `resume_after`: a list of `{topic, watermark}` or a `{topic: watermark}` map; both decode to the list.
 * A topic may appear once.
 *
 * @since 0.1.0
 */
export const ResumeAfter = Schema.Union(
  Schema.Array(TopicWatermark).pipe(Schema.maxItems(maxTopicsPerRequest)),
  ResumeAfterMap
).pipe(Schema.filter((entries) => {
  const seen = new Set<string>()
  for (const [i, { topic }] of entries.entries()) {
    if (seen.has(topic)) return { path: [i, "topic"], message: `topic ${topic} is given twice` }
    seen.add(topic)
  }
  return undefined
}))

/**
 * `replay_batch_size`: a positive integer, lowered to `maxReplayBatchSize` when above it.
 *
 * @since 0.1.0
 */
export const ReplayBatchSize = Schema.transform(
  Schema.Int.pipe(Schema.positive()),
  Schema.Int.pipe(Schema.between(1, maxReplayBatchSize)),
  { strict: true, decode: (size) => Math.min(size, maxReplayBatchSize), encode: identity }
)

/**
 * `sync:subscribe` payload. Optional fields given as `null` count as absent. Every `resume_after` topic must
 * be spelled as in `topics`: resolving it to another form is the catalog's job, and a cursor for a topic the
 * request does not subscribe to is a client bug worth reporting.
 *
 * @since 0.1.0
 */
export const SubscribeRequest = Schema.Struct({
  topics: TopicNames,
  resumeAfter: Schema.optionalWith(ResumeAfter, { nullable: true, default: () => [] }).pipe(
    Schema.fromKey("resume_after")
  ),
  replayBatchSize: Schema.optionalWith(ReplayBatchSize, { nullable: true, default: () => defaultReplayBatchSize })
    .pipe(Schema.fromKey("replay_batch_size")),
  requestId: Schema.optionalWith(Schema.String, { nullable: true, exact: true }).pipe(Schema.fromKey("request_id"))
}).pipe(Schema.filter((request) => {
  const topics = new Set(request.topics)
  // No index in the path: for the map form it would be a position the client never wrote.
  for (const { topic } of request.resumeAfter) {
    if (!topics.has(topic)) return { path: ["resume_after"], message: `topic ${topic} is not in topics` }
  }
  return undefined
}))

/**
 * @since 0.1.0
 */
export interface SubscribeRequest extends Schema.Schema.Type<typeof SubscribeRequest> {}

/**
 * `sync:unsubscribe` payload.
 *
 * @since 0.1.0
 */
export const UnsubscribeRequest = Schema.Struct({
  topics: TopicNames
})

/**
 * @since 0.1.0
 */
export interface UnsubscribeRequest extends Schema.Schema.Type<typeof UnsubscribeRequest> {}

/**
 * `sync:heartbeat` payload: `{}`, extra keys ignored (and dropped: an empty struct schema alone would hand
 * the input through as it is).
 *
 * @since 0.1.0
 */
export const HeartbeatRequest = Schema.transform(Schema.Struct({}), Schema.Struct({}), {
  strict: true,
  decode: () => ({}),
  encode: identity
})

/**
 * @since 0.1.0
 */
export interface HeartbeatRequest extends Schema.Schema.Type<typeof HeartbeatRequest> {}

/**
 * A client request payload that does not decode; answered with `bad_subscription` (SPEC §5). `requestId`
 * is the payload's `request_id` when it had a readable one, so the error can be correlated.
 *
 * @since 0.1.0
 */
export class MalformedRequest extends Schema.TaggedError<MalformedRequest>()("MalformedRequest", {
  event: Schema.String,
  message: Schema.String,
  requestId: Schema.optional(Schema.String)
}) {}

/**
 * Longest error message sent back: parse messages quote the offending input, which must not let a client
 * make the server echo a large frame back.
 */
const maxMessageLength = 300

// `topics[1]`, `resume_after["runtime.run_summaries"]`: map keys are topic names, which contain dots.
const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>((out, key) => {
    if (typeof key === "number") return `${out}[${key}]`
    const name = String(key)
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return `${out}[${JSON.stringify(name)}]`
    return out === "" ? name : `${out}.${name}`
  }, "")

// With `errors: "all"`, a union reports each member's failure; the deepest issue is the one closest to the
// actual mistake (`resume_after.x: Expected a non-negative number` rather than `Expected ReadonlyArray<…>`).
const describe = (error: ParseResult.ParseError): string => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  let best = issues[0]
  for (const issue of issues) if (best === undefined || issue.path.length > best.path.length) best = issue
  if (best === undefined) return "malformed request"
  const path = formatPath(best.path)
  const message = path === "" ? best.message : `${path}: ${best.message}`
  return message.length > maxMessageLength ? message.slice(0, maxMessageLength - 1) + "…" : message
}

const decoder = <A, I>(schema: Schema.Schema<A, I>, event: string) => {
  const decode = Schema.decodeUnknownEither(schema, { errors: "all" })
  return (payload: unknown): Either.Either<A, MalformedRequest> => {
    // Phoenix payloads are objects; a struct schema alone would also accept arrays or strings.
    if (!Predicate.isRecord(payload)) {
      return Either.left(new MalformedRequest({ event, message: "payload must be a JSON object" }))
    }
    return Either.mapLeft(decode(payload), (error) => {
      const requestId = payload["request_id"]
      return new MalformedRequest({
        event,
        message: describe(error),
        ...(typeof requestId === "string" ? { requestId } : {})
      })
    })
  }
}

/**
 * Decodes a `sync:subscribe` payload.
 *
 * @since 0.1.0
 */
export const decodeSubscribe: (payload: unknown) => Either.Either<SubscribeRequest, MalformedRequest> = decoder(
  SubscribeRequest,
  SyncEvent.subscribe
)

/**
 * Decodes a `sync:unsubscribe` payload.
 *
 * @since 0.1.0
 */
export const decodeUnsubscribe: (payload: unknown) => Either.Either<UnsubscribeRequest, MalformedRequest> = decoder(
  UnsubscribeRequest,
  SyncEvent.unsubscribe
)

/**
 * Decodes a `sync:heartbeat` payload (any JSON object).
 *
 * @since 0.1.0
 */
export const decodeHeartbeat: (payload: unknown) => Either.Either<HeartbeatRequest, MalformedRequest> = decoder(
  HeartbeatRequest,
  SyncEvent.heartbeat
)

// -----------------------------------------------------------------------------
// Topic resolution
// -----------------------------------------------------------------------------

/**
 * A requested topic the client may read.
 *
 * @since 0.1.0
 */
export interface ResolvedTopic {
  readonly topic: TopicInfo
  /** The name as the client gave it; replies and pushes use it (SPEC §4). */
  readonly requestedAs: string
  /** Watermark to replay after; none when the client gave no cursor (replay from 0, SPEC §5). */
  readonly resumeAfter: Option.Option<number>
}

/**
 * The outcome of resolving a request's topics.
 *
 * @since 0.1.0
 */
export interface ResolvedTopics {
  /** In request order, one entry per catalog topic even when the client named it in both forms. */
  readonly topics: ReadonlyArray<ResolvedTopic>
  /** Names that are unknown or outside the token's scopes, as given: `forbidden_topics` of the error. */
  readonly forbidden: ReadonlyArray<string>
}

/**
 * Resolves the topics of a subscribe (or unsubscribe) request against the catalog and the token's scopes.
 *
 * A scope is a topic name in either form and grants exactly the topic it resolves to; there are no wildcards.
 * A topic named in both forms is kept once, under the first name used. Cursors are matched through the
 * catalog too, and if both names of one topic carry a cursor the lower one wins: replaying a few rows twice
 * is harmless, skipping rows is not (I1).
 *
 * @since 0.1.0
 */
export const resolveSubscribe = (
  request: { readonly topics: ReadonlyArray<string>; readonly resumeAfter?: ReadonlyArray<TopicWatermark> },
  catalog: Catalog,
  allowedScopes: Iterable<string>
): ResolvedTopics => {
  const allowed = new Set<string>()
  for (const scope of allowedScopes) {
    const topic = catalog.get(scope)
    if (Option.isSome(topic)) allowed.add(topic.value.wireName)
  }
  const cursors = new Map<string, number>()
  for (const { topic: name, watermark } of request.resumeAfter ?? []) {
    const topic = catalog.get(name)
    if (Option.isNone(topic)) continue
    const previous = cursors.get(topic.value.wireName)
    cursors.set(topic.value.wireName, previous === undefined ? watermark : Math.min(previous, watermark))
  }

  const topics: Array<ResolvedTopic> = []
  const forbidden: Array<string> = []
  const taken = new Set<string>()
  for (const name of request.topics) {
    const topic = catalog.get(name)
    if (Option.isNone(topic) || !allowed.has(topic.value.wireName)) {
      if (!forbidden.includes(name)) forbidden.push(name)
      continue
    }
    if (taken.has(topic.value.wireName)) continue
    taken.add(topic.value.wireName)
    topics.push({
      topic: topic.value,
      requestedAs: name,
      resumeAfter: Option.fromNullable(cursors.get(topic.value.wireName))
    })
  }
  return { topics, forbidden }
}

// -----------------------------------------------------------------------------
// Server replies and pushes
// -----------------------------------------------------------------------------

// Copies keep stray properties of the caller's objects out of the JSON.
const watermarkList = (list: ReadonlyArray<TopicWatermark>): Array<TopicWatermark> =>
  list.map(({ topic, watermark }) => ({ topic, watermark }))

/**
 * `phx_join` ok response.
 *
 * @since 0.1.0
 */
export interface JoinReply {
  readonly subscription_id: string
  readonly allowed_topics: ReadonlyArray<string>
  readonly current_watermarks: ReadonlyArray<TopicWatermark>
}

/**
 * @since 0.1.0
 */
export const joinReply = (options: {
  readonly subscriptionId: string
  readonly allowedTopics: ReadonlyArray<string>
  readonly currentWatermarks: ReadonlyArray<TopicWatermark>
}): JoinReply => ({
  subscription_id: options.subscriptionId,
  allowed_topics: [...options.allowedTopics],
  current_watermarks: watermarkList(options.currentWatermarks)
})

/**
 * `sync:subscribe` ok response. `current_watermarks` are what this socket has been sent through, never the
 * heads (SPEC §5).
 *
 * @since 0.1.0
 */
export interface SubscribeReply {
  readonly subscription_id: string
  readonly topics: ReadonlyArray<string>
  readonly current_watermarks: ReadonlyArray<TopicWatermark>
}

/**
 * @since 0.1.0
 */
export const subscribeReply = (options: {
  readonly subscriptionId: string
  readonly topics: ReadonlyArray<string>
  readonly currentWatermarks: ReadonlyArray<TopicWatermark>
}): SubscribeReply => ({
  subscription_id: options.subscriptionId,
  topics: [...options.topics],
  current_watermarks: watermarkList(options.currentWatermarks)
})

/**
 * `sync:unsubscribe` ok response: the topics that remain subscribed.
 *
 * @since 0.1.0
 */
export interface UnsubscribeReply {
  readonly subscription_id: string
  readonly topics: ReadonlyArray<string>
}

/**
 * @since 0.1.0
 */
export const unsubscribeReply = (options: {
  readonly subscriptionId: string
  readonly topics: ReadonlyArray<string>
}): UnsubscribeReply => ({ subscription_id: options.subscriptionId, topics: [...options.topics] })

/**
 * `sync:heartbeat` ok response.
 *
 * @since 0.1.0
 */
export interface HeartbeatReply {
  readonly subscription_id: string
  readonly watermarks: ReadonlyArray<TopicWatermark>
}

/**
 * @since 0.1.0
 */
export const heartbeatReply = (options: {
  readonly subscriptionId: string
  readonly watermarks: ReadonlyArray<TopicWatermark>
}): HeartbeatReply => ({ subscription_id: options.subscriptionId, watermarks: watermarkList(options.watermarks) })

/**
 * `sync:heartbeat` push.
 *
 * @since 0.1.0
 */
export interface HeartbeatPush {
  readonly watermarks: ReadonlyArray<TopicWatermark>
}

/**
 * @since 0.1.0
 */
export const heartbeatPush = (options: { readonly watermarks: ReadonlyArray<TopicWatermark> }): HeartbeatPush => ({
  watermarks: watermarkList(options.watermarks)
})

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
}

/**
 * `sync:update_batch` push.
 *
 * @since 0.1.0
 */
export interface UpdateBatch {
  readonly updates: ReadonlyArray<UpdateJson>
  readonly replay_complete: boolean
  /** The topics' heads; the only place heads travel (SPEC §5). */
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
    hydration_required: update.hydrationRequired
  })),
  replay_complete: options.replayComplete,
  head_watermarks: watermarkList(options.headWatermarks),
  watermarks: watermarkList(options.watermarks)
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
  ",\"hydration_required\":" + (update.hydrationRequired ? "true" : "false") + "}"

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
    ",\"head_watermarks\":" + JSON.stringify(watermarkList(options.headWatermarks)) +
    ",\"watermarks\":" + JSON.stringify(watermarkList(options.watermarks)) + "}"
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
 * dropped (SPEC §5). An update too large for a batch on its own (only possible with a batch limit near the
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

/**
 * A topic whose resume cursor is below the retention floor.
 *
 * @since 0.1.0
 */
export interface StaleTopic {
  readonly topic: string
  readonly resumeAfter: number
  readonly retentionFloor: number
}

/**
 * Error response (`phx_reply` with status error) or `sync:error` push.
 *
 * @since 0.1.0
 */
export interface ErrorPayload {
  readonly code: WireErrorCode
  readonly message: string
  readonly retry_after_ms?: number
  readonly full_resync_required?: boolean
  readonly stale_topics?: ReadonlyArray<
    { readonly topic: string; readonly resume_after: number; readonly retention_floor: number }
  >
  readonly forbidden_topics?: ReadonlyArray<string>
  readonly request_id?: string
}

/**
 * Builds an error payload; absent options are left out of the JSON. `stale_cursor` always requires a full
 * resync (SPEC §5), so `full_resync_required` defaults to true for it.
 *
 * @since 0.1.0
 */
export const errorPayload = (options: {
  readonly code: WireErrorCode
  readonly message: string
  readonly retryAfterMs?: number | undefined
  readonly fullResyncRequired?: boolean | undefined
  readonly staleTopics?: ReadonlyArray<StaleTopic> | undefined
  readonly forbiddenTopics?: ReadonlyArray<string> | undefined
  readonly requestId?: string | undefined
}): ErrorPayload => {
  const fullResyncRequired = options.fullResyncRequired ?? (options.code === "stale_cursor" ? true : undefined)
  return {
    code: options.code,
    message: options.message,
    ...(options.retryAfterMs !== undefined ? { retry_after_ms: options.retryAfterMs } : {}),
    ...(fullResyncRequired !== undefined ? { full_resync_required: fullResyncRequired } : {}),
    ...(options.staleTopics !== undefined
      ? {
        stale_topics: options.staleTopics.map(({ resumeAfter, retentionFloor, topic }) => ({
          topic,
          resume_after: resumeAfter,
          retention_floor: retentionFloor
        }))
      }
      : {}),
    ...(options.forbiddenTopics !== undefined ? { forbidden_topics: [...options.forbiddenTopics] } : {}),
    ...(options.requestId !== undefined ? { request_id: options.requestId } : {})
  }
}
