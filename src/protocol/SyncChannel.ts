/**
 * The `sync:v1` channel (protocol.md §5): its topic, its events and the limits every request is held to. The payloads are
 * in `Requests` (client to server), `Replies` (replies, heartbeats and errors) and `UpdateBatch` (the update pushes).
 *
 * Browser-safe and free of Effect runtime requirements.
 *
 * @since 0.1.0
 */
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
  error: "sync:error",
  /** Client → server: replaces the socket's token (protocol.md §5.7). */
  auth: "sync:auth",
  /** Server → client: the socket's token expires soon; refresh it with `sync:auth` (protocol.md §5.7). */
  tokenExpiring: "sync:token_expiring"
} as const

/**
 * The version of this protocol a client states in `protocol_version` on join (protocol.md §5.1).
 *
 * @since 0.1.0
 */
export const protocolVersion = 1

/**
 * Most topics one subscribe or unsubscribe request may name (counted before de-duplication, so the work a
 * request causes is bounded by its length).
 *
 * @since 0.1.0
 */
export const maxTopicsPerRequest = 64

/**
 * `replay_batch_size` when the client gives none (protocol.md §5).
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
