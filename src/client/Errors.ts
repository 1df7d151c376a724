/**
 * The client's failures, each one a caller can act on. They are `Micro` tagged errors: yieldable in `Micro` and in
 * `Effect` code alike (a `Micro` is an `Effect`) and matched by `_tag` with `Effect.catchTag`, without bringing
 * `Schema` and the full Effect runtime into a browser bundle.
 *
 * @since 0.1.0
 */
import * as Micro from "effect/Micro"

/**
 * The token provider failed or returned no token: the app must sign the user in again (state `needs-auth`).
 *
 * @since 0.1.0
 */
export class TokenUnavailable extends Micro.TaggedError("TokenUnavailable")<{
  readonly cause: unknown
}> {
  override get message(): string {
    return "the token provider returned no token"
  }
}

/**
 * The server refused the token (protocol.md §8: invalid, expired or revoked). The client asks the provider for a fresh one.
 *
 * @since 0.1.0
 */
export class Unauthorized extends Micro.TaggedError("Unauthorized")<{
  readonly reason: string
}> {
  override get message(): string {
    return `the server refused the token: ${this.reason}`
  }
}

/**
 * The server does not support this client (protocol.md §8, `upgrade_required`); retrying cannot help.
 *
 * @since 0.1.0
 */
export class UpgradeRequired extends Micro.TaggedError("UpgradeRequired")<{
  readonly detail: unknown
}> {
  override get message(): string {
    return "the server requires a newer client"
  }
}

/**
 * The topic is unknown or outside the token's scopes (`forbidden_topic`); the subscription ends.
 *
 * @since 0.1.0
 */
export class ForbiddenTopic extends Micro.TaggedError("ForbiddenTopic")<{
  readonly topic: string
}> {
  override get message(): string {
    return `topic ${this.topic} is not allowed for this token`
  }
}

/**
 * The connection ended or could not be made: network, server restart, heartbeat timeout, a malformed frame, or a
 * close asked by the server. The client reconnects; `closeCode` and `retryAfterMs` shape its backoff.
 *
 * @since 0.1.0
 */
export class ConnectionLost extends Micro.TaggedError("ConnectionLost")<{
  readonly reason: string
  readonly closeCode?: number | undefined
  /** The server's `retry_after_ms`, when it gave one. */
  readonly retryAfterMs?: number | undefined
}> {
  override get message(): string {
    return `connection lost: ${this.reason}${this.closeCode === undefined ? "" : ` (close code ${this.closeCode})`}`
  }
}

/**
 * The watermark store failed to load or to commit. Nothing of a failed commit is taken as persisted: its changes
 * are committed again with the next one, so a stored watermark is never ahead of its stored documents.
 *
 * @since 0.1.0
 */
export class StoreFailed extends Micro.TaggedError("StoreFailed")<{
  readonly operation: "load" | "commit"
  readonly cause: unknown
}> {
  override get message(): string {
    return `the watermark store failed to ${this.operation}: ${String(this.cause)}`
  }
}

/**
 * A subscription was asked for a topic that this client already follows with another filter; one client follows a
 * topic through one filter, because the watermark it persists is only valid for that filter.
 *
 * @since 0.1.0
 */
export class FilterConflict extends Micro.TaggedError("FilterConflict")<{
  readonly topic: string
}> {
  override get message(): string {
    return `topic ${this.topic} is already followed with another filter`
  }
}

/**
 * The client was closed.
 *
 * @since 0.1.0
 */
export class ClientClosed extends Micro.TaggedError("ClientClosed") {
  override get message(): string {
    return "the client is closed"
  }
}
