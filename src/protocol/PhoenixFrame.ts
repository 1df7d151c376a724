/**
 * Phoenix Channels v2 JSON frames (protocol.md §5): `[join_ref, ref, topic, event, payload]` as JSON text.
 *
 * Pure functions, browser-safe: decoding a client frame into a `Frame` (or a `FrameError` carrying whatever
 * refs could be read, so the server can still answer the frame), encoding frames, and builders for the frames
 * the server sends.
 *
 * Refs are strings, as the official `phoenix` client makes them (`makeRef` returns `counter.toString()`). A
 * numeric ref is refused rather than coerced: the reply would carry the string `"1"` and a client comparing
 * refs with `===` against its number `1` would never match it, so the request would time out silently
 * instead of failing visibly.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"

/**
 * A decoded frame. `payload` is any JSON value; Phoenix sends `{}` for an empty payload and the channel code
 * checks for objects where it needs them.
 *
 * @since 0.1.0
 */
export const Frame = Schema.Struct({
  joinRef: Schema.NullOr(Schema.String),
  ref: Schema.NullOr(Schema.String),
  topic: Schema.String,
  event: Schema.String,
  payload: Schema.Unknown
})

/**
 * @since 0.1.0
 */
export interface Frame extends Schema.Schema.Type<typeof Frame> {}

/**
 * The topic of socket-level messages (heartbeats), outside every channel.
 *
 * @since 0.1.0
 */
export const phoenixTopic = "phoenix"

/**
 * Events of the Phoenix channel protocol itself.
 *
 * @since 0.1.0
 */
export const PhoenixEvent = {
  join: "phx_join",
  leave: "phx_leave",
  reply: "phx_reply",
  close: "phx_close",
  error: "phx_error",
  heartbeat: "heartbeat"
} as const

/**
 * Which element of the frame array was of the wrong type.
 *
 * @since 0.1.0
 */
export const FrameField = Schema.Literal("join_ref", "ref", "topic", "event")

/**
 * @since 0.1.0
 */
export type FrameField = typeof FrameField.Type

/**
 * A text frame that is not a Phoenix v2 frame. `joinRef`, `ref`, `topic` and `event` are present when they
 * could be read (right position, right type) despite the failure, so the server can reply to the frame.
 *
 * @since 0.1.0
 */
export class FrameError extends Schema.TaggedError<FrameError>()("FrameError", {
  reason: Schema.Literal("not_json", "not_an_array", "wrong_arity", "bad_field"),
  /** The first offending element, for `bad_field`. */
  field: Schema.optional(FrameField),
  joinRef: Schema.optional(Schema.NullOr(Schema.String)),
  ref: Schema.optional(Schema.NullOr(Schema.String)),
  topic: Schema.optional(Schema.String),
  event: Schema.optional(Schema.String)
}) {
  override get message(): string {
    switch (this.reason) {
      case "not_json":
        return "frame is not JSON"
      case "not_an_array":
        return "frame is not a JSON array"
      case "wrong_arity":
        return "frame is not [join_ref, ref, topic, event, payload]"
      case "bad_field":
        return `frame element ${this.field ?? "?"} has the wrong type`
    }
  }
}

const isRef = (u: unknown): u is string | null => u === null || typeof u === "string"

/**
 * Decodes a text frame. Never throws: anything `JSON.parse` rejects (including nesting too deep for the engine)
 * is `not_json`.
 *
 * @since 0.1.0
 */
export const decodeFrame = (text: string): Either.Either<Frame, FrameError> => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return Either.left(new FrameError({ reason: "not_json" }))
  }
  if (!Array.isArray(json)) return Either.left(new FrameError({ reason: "not_an_array" }))

  const elements: ReadonlyArray<unknown> = json
  const [joinRef, ref, topic, event, payload] = elements
  const wellTyped = isRef(joinRef) && isRef(ref) && typeof topic === "string" && typeof event === "string"
  if (elements.length === 5 && wellTyped) {
    return Either.right({ joinRef, ref, topic, event, payload })
  }
  // Keep every field that has the right type, so that even a frame of the wrong length or with one bad
  // element can be answered on its ref.
  const readable = {
    ...(isRef(joinRef) ? { joinRef } : {}),
    ...(isRef(ref) ? { ref } : {}),
    ...(typeof topic === "string" ? { topic } : {}),
    ...(typeof event === "string" ? { event } : {})
  }
  if (elements.length !== 5) return Either.left(new FrameError({ reason: "wrong_arity", ...readable }))
  const field: FrameField = !isRef(joinRef)
    ? "join_ref"
    : !isRef(ref)
    ? "ref"
    : typeof topic !== "string"
    ? "topic"
    : "event"
  return Either.left(new FrameError({ reason: "bad_field", field, ...readable }))
}

/**
 * Encodes a frame as the JSON array the `phoenix` client's serializer reads.
 *
 * @since 0.1.0
 */
export const encodeFrame = (frame: Frame): string =>
  // An absent payload goes out as `{}`: Phoenix clients read an empty payload as an object, never null.
  JSON.stringify([frame.joinRef, frame.ref, frame.topic, frame.event, frame.payload === undefined ? {} : frame.payload])

/**
 * Encodes a push (ref null) around a payload that is already JSON text, without parsing or re-serializing it:
 * a fan-out payload is serialized once and shared by every socket, which only differ in `join_ref`.
 *
 * `payloadJson` must be valid JSON text; it is spliced in verbatim.
 *
 * @since 0.1.0
 */
export const encodePush = (joinRef: string | null, topic: string, event: string, payloadJson: string): string =>
  "[" + JSON.stringify(joinRef) + ",null," + JSON.stringify(topic) + "," + JSON.stringify(event) + "," +
  payloadJson + "]"

/**
 * Status of a `phx_reply`.
 *
 * @since 0.1.0
 */
export type ReplyStatus = "ok" | "error"

/**
 * The `phx_reply` answering the frame with the given refs.
 *
 * @since 0.1.0
 */
export const reply = (
  joinRef: string | null,
  ref: string | null,
  topic: string,
  status: ReplyStatus,
  response: unknown
): Frame => ({ joinRef, ref, topic, event: PhoenixEvent.reply, payload: { status, response } })

/**
 * A server push on a joined channel; pushes carry no ref.
 *
 * @since 0.1.0
 */
export const push = (joinRef: string | null, topic: string, event: string, payload: unknown): Frame => ({
  joinRef,
  ref: null,
  topic,
  event,
  payload
})

/**
 * `phx_close` for the channel joined as `joinRef`: tells the client the join is over (after a leave, or when
 * a second join replaces it). As Phoenix does, the ref is the join ref.
 *
 * @since 0.1.0
 */
export const close = (joinRef: string | null, topic: string): Frame => ({
  joinRef,
  ref: joinRef,
  topic,
  event: PhoenixEvent.close,
  payload: {}
})

/**
 * The reply to a socket heartbeat (`["phoenix" topic] heartbeat`), owed whether or not a channel is joined.
 *
 * @since 0.1.0
 */
export const phoenixHeartbeatReply = (ref: string | null): Frame => reply(null, ref, phoenixTopic, "ok", {})

/**
 * Whether a decoded payload is a JSON object (not an array, not null), as every channel request payload is.
 *
 * @since 0.1.0
 */
export const isObjectPayload = (payload: unknown): payload is { readonly [key: string]: unknown } =>
  Predicate.isRecord(payload)
