/**
 * The client's requests on `sync:v1` (protocol.md §5): schemas decoding `sync:subscribe`, `sync:unsubscribe` and
 * `sync:heartbeat` payloads (snake_case on the wire, camelCase once decoded), and decoders that answer a malformed
 * payload with a `MalformedRequest` carrying a short, bounded message.
 *
 * Browser-safe and free of Effect runtime requirements.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import { identity } from "effect/Function"
import * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import { defaultReplayBatchSize, maxReplayBatchSize, maxTopicsPerRequest, SyncEvent } from "./SyncChannel.js"
import { Watermark } from "./Watermark.js"

/**
 * A non-empty list of topic names (either form, protocol.md §4), de-duplicated keeping the first occurrence.
 *
 * @since 0.1.0
 */
export const TopicNames = Schema.transform(
  Schema.Array(Schema.String).pipe(Schema.minItems(1), Schema.maxItems(maxTopicsPerRequest)),
  Schema.Array(Schema.String),
  { strict: true, decode: (topics) => Array.from(new Set(topics)), encode: identity }
)

/**
 * A resume point of `resume_after`: `{topic, watermark}`, with the topic's `epoch` when the client kept it (a resume
 * point of another epoch is stale, protocol.md §7).
 *
 * @since 0.1.0
 */
export const ResumePoint = Schema.Struct({
  topic: Schema.String,
  watermark: Watermark,
  epoch: Schema.optionalWith(Schema.String, { nullable: true, exact: true })
})

/**
 * @since 0.1.0
 */
export interface ResumePoint extends Schema.Schema.Type<typeof ResumePoint> {}

const ResumeAfterMap = Schema.transform(
  Schema.Record({ key: Schema.String, value: Watermark }),
  Schema.Array(Schema.typeSchema(ResumePoint)),
  {
    strict: true,
    decode: (map) => Object.entries(map).map(([topic, watermark]) => ({ topic, watermark })),
    encode: (list) => Object.fromEntries(list.map(({ topic, watermark }) => [topic, watermark]))
  }
)

/**
 * `resume_after`: a list of `{topic, watermark, epoch?}` or a `{topic: watermark}` map; both decode to the list.
 * A topic may appear once.
 *
 * @since 0.1.0
 */
export const ResumeAfter = Schema.Union(
  Schema.Array(ResumePoint).pipe(Schema.maxItems(maxTopicsPerRequest)),
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

/** Most `doc_keys` of one topic's filter. */
export const maxFilterKeys = 1000

/**
 * A topic's filter (protocol.md §7): the documents with these keys, or with keys starting with a prefix.
 *
 * @since 0.1.0
 */
export const TopicFilter = Schema.Union(
  Schema.Struct({
    docKeys: Schema.propertySignature(
      Schema.Array(Schema.String.pipe(Schema.minLength(1))).pipe(Schema.minItems(1), Schema.maxItems(maxFilterKeys))
    ).pipe(Schema.fromKey("doc_keys"))
  }),
  Schema.Struct({
    docKeyPrefix: Schema.propertySignature(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(1024))).pipe(
      Schema.fromKey("doc_key_prefix")
    )
  })
)

/**
 * @since 0.1.0
 */
export type TopicFilter = typeof TopicFilter.Type

/**
 * `sync:subscribe` payload. Optional fields given as `null` count as absent. Every `resume_after` and `filters`
 * topic must be spelled as in `topics`: resolving it to another form is the catalog's job, and a cursor for a topic the
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
  requestId: Schema.optionalWith(Schema.String, { nullable: true, exact: true }).pipe(Schema.fromKey("request_id")),
  filters: Schema.optionalWith(
    Schema.Record({ key: Schema.String, value: TopicFilter }),
    { nullable: true, default: () => ({}) }
  )
}).pipe(Schema.filter((request) => {
  const topics = new Set(request.topics)
  // No index in the path: for the map form it would be a position the client never wrote.
  for (const { topic } of request.resumeAfter) {
    if (!topics.has(topic)) return { path: ["resume_after"], message: `topic ${topic} is not in topics` }
  }
  for (const topic of Object.keys(request.filters)) {
    if (!topics.has(topic)) return { path: ["filters"], message: `topic ${topic} is not in topics` }
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

/** Longest token accepted in band; the frame limit bounds it anyway, this keeps the verifier's input small. */
export const maxTokenLength = 16 * 1024

/**
 * `sync:auth` payload (protocol.md §5.7): the token that replaces the socket's.
 *
 * @since 0.1.0
 */
export const AuthRequest = Schema.Struct({
  token: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(maxTokenLength))
})

/**
 * @since 0.1.0
 */
export interface AuthRequest extends Schema.Schema.Type<typeof AuthRequest> {}

/** Longest `client_build_id`. */
export const maxClientBuildIdLength = 128

const Version = Schema.Int.pipe(Schema.between(0, 2 ** 31 - 1))

/**
 * `phx_join` payload on `sync:v1` (protocol.md §5.1): what the client says about itself, each optional (`null` counts
 * as absent); other keys are ignored.
 *
 * @since 0.1.0
 */
export const JoinRequest = Schema.Struct({
  clientBuildId: Schema.optionalWith(
    Schema.String.pipe(Schema.minLength(1), Schema.maxLength(maxClientBuildIdLength)),
    { nullable: true, exact: true }
  ).pipe(Schema.fromKey("client_build_id")),
  protocolVersion: Schema.optionalWith(Version, { nullable: true, exact: true }).pipe(
    Schema.fromKey("protocol_version")
  ),
  schemaVersion: Schema.optionalWith(Version, { nullable: true, exact: true }).pipe(Schema.fromKey("schema_version"))
})

/**
 * @since 0.1.0
 */
export interface JoinRequest extends Schema.Schema.Type<typeof JoinRequest> {}

/**
 * A client request payload that does not decode; answered with `bad_subscription` (protocol.md §5). `requestId`
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

/**
 * Decodes a `sync:auth` payload.
 *
 * @since 0.1.0
 */
export const decodeAuth: (payload: unknown) => Either.Either<AuthRequest, MalformedRequest> = decoder(
  AuthRequest,
  SyncEvent.auth
)

/**
 * Decodes a `phx_join` payload of `sync:v1`.
 *
 * @since 0.1.0
 */
export const decodeJoin: (payload: unknown) => Either.Either<JoinRequest, MalformedRequest> = decoder(
  JoinRequest,
  "phx_join"
)
