/**
 * The server's replies and pushes on `sync:v1` other than update batches (protocol.md §5): join, subscribe, unsubscribe and
 * heartbeat replies, the heartbeat push, and error payloads, built as plain JSON objects.
 *
 * Browser-safe and free of Effect runtime requirements.
 *
 * @since 0.1.0
 */
import type { WireErrorCode } from "./ErrorCode.js"
import type { TopicWatermark } from "./Watermark.js"
import { topicWatermarks } from "./Watermark.js"

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
  current_watermarks: topicWatermarks(options.currentWatermarks)
})

/**
 * `sync:subscribe` ok response. `current_watermarks` are what this socket has been sent through, never the
 * heads (protocol.md §5).
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
  current_watermarks: topicWatermarks(options.currentWatermarks)
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
}): HeartbeatReply => ({ subscription_id: options.subscriptionId, watermarks: topicWatermarks(options.watermarks) })

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
  watermarks: topicWatermarks(options.watermarks)
})

/**
 * `sync:auth` ok response: the topics the new token may read, and when the socket's new deadline falls (protocol.md
 * §5.7).
 *
 * @since 0.1.0
 */
export interface AuthReply {
  readonly allowed_topics: ReadonlyArray<string>
  /** The new token's `exp`, in Unix seconds. */
  readonly expires_at: number
}

/**
 * @since 0.1.0
 */
export const authReply = (options: {
  readonly allowedTopics: ReadonlyArray<string>
  readonly expiresAt: Date
}): AuthReply => ({
  allowed_topics: [...options.allowedTopics],
  expires_at: Math.floor(options.expiresAt.getTime() / 1000)
})

/**
 * `sync:token_expiring` push (protocol.md §5.7): the socket's token expires soon and the socket closes then.
 *
 * @since 0.1.0
 */
export interface TokenExpiringPush {
  /** The token's `exp`, in Unix seconds. */
  readonly expires_at: number
  /** Milliseconds until the server closes the socket unless a `sync:auth` replaces the token. */
  readonly closes_in_ms: number
}

/**
 * @since 0.1.0
 */
export const tokenExpiringPush = (options: {
  readonly expiresAt: Date
  readonly closesInMs: number
}): TokenExpiringPush => ({
  expires_at: Math.floor(options.expiresAt.getTime() / 1000),
  closes_in_ms: Math.max(0, Math.round(options.closesInMs))
})

/**
 * One journal row as sent to a client, with its payload as a value.
 *

/**
 * A topic whose resume cursor is stale: below the retention floor, past the head, or of another epoch.
 *
 * @since 0.1.0
 */
export interface StaleTopic {
  readonly topic: string
  readonly resumeAfter: number
  readonly retentionFloor: number
  /** The topic's epoch now, when the cursor was of another one. */
  readonly epoch?: string | undefined
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
    {
      readonly topic: string
      readonly resume_after: number
      readonly retention_floor: number
      readonly epoch?: string
    }
  >
  readonly forbidden_topics?: ReadonlyArray<string>
  readonly request_id?: string
  /** A finer cause, e.g. `epoch_changed` with `stale_cursor`, or `revoked` / `token_expired` with `unauthorized`. */
  readonly reason?: string
  /** With `upgrade_required`: the oldest protocol version the server accepts. */
  readonly min_protocol_version?: number
  /** With `upgrade_required`: the oldest schema version the server accepts. */
  readonly min_schema_version?: number
}

/**
 * Builds an error payload; absent options are left out of the JSON. `stale_cursor` always requires a full
 * resync (protocol.md §5), so `full_resync_required` defaults to true for it.
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
  readonly reason?: string | undefined
  readonly minProtocolVersion?: number | undefined
  readonly minSchemaVersion?: number | undefined
}): ErrorPayload => {
  const fullResyncRequired = options.fullResyncRequired ?? (options.code === "stale_cursor" ? true : undefined)
  return {
    code: options.code,
    message: options.message,
    ...(options.retryAfterMs !== undefined ? { retry_after_ms: options.retryAfterMs } : {}),
    ...(fullResyncRequired !== undefined ? { full_resync_required: fullResyncRequired } : {}),
    ...(options.staleTopics !== undefined
      ? {
        stale_topics: options.staleTopics.map(({ epoch, resumeAfter, retentionFloor, topic }) => ({
          topic,
          resume_after: resumeAfter,
          retention_floor: retentionFloor,
          ...(epoch === undefined ? {} : { epoch })
        }))
      }
      : {}),
    ...(options.forbiddenTopics !== undefined ? { forbidden_topics: [...options.forbiddenTopics] } : {}),
    ...(options.requestId !== undefined ? { request_id: options.requestId } : {}),
    ...(options.reason !== undefined ? { reason: options.reason } : {}),
    ...(options.minProtocolVersion !== undefined ? { min_protocol_version: options.minProtocolVersion } : {}),
    ...(options.minSchemaVersion !== undefined ? { min_schema_version: options.minSchemaVersion } : {})
  }
}
