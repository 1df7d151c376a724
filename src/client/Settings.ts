/**
 * The client's options, their defaults, and what a session is given: the resolved settings and the registry of
 * followed topics.
 *
 * @since 0.1.0
 */
import * as Micro from "effect/Micro"
import type { BackoffOptions } from "./Backoff.js"
import type { WebSocketConstructor } from "./Connection.js"
import { httpUrl } from "./Connection.js"
import { TokenUnavailable } from "./Errors.js"
import type { TopicCache } from "./TopicCache.js"
import type { WatermarkStore } from "./WatermarkStore.js"
import { memoryStore } from "./WatermarkStore.js"

/**
 * @since 0.1.0
 */
export interface ClientOptions {
  /**
   * The server: `https://sync.example.com` (or `wss://...`, with or without a `/socket` path as `phoenix` users write
   * it); the socket and hydration paths are appended.
   */
  readonly url: string
  /**
   * Gives a token (protocol.md §8). Called at every connect and before the current token expires, so it should return a
   * fresh one; throwing or returning an empty string puts the client in `needs-auth` until it succeeds.
   */
  readonly token: () => string | PromiseLike<string>
  /** Where watermarks and documents persist. Default: in memory. */
  readonly store?: WatermarkStore | undefined
  /** Default `globalThis.WebSocket`; on Node 20 pass `ws`'s (or use `khala/client/node`). */
  readonly webSocket?: WebSocketConstructor | undefined
  /** Default `globalThis.fetch`. */
  readonly fetch?: typeof globalThis.fetch | undefined
  /**
   * How a topic with nothing stored is loaded: `hydrate` lists its documents over HTTP at a snapshot and subscribes
   * from there (fewer bytes than a replay); `replay` subscribes from watermark 0 and receives the journal. A topic
   * whose journal was pruned is hydrated either way. Default `hydrate`.
   */
  readonly initialLoad?: "hydrate" | "replay" | undefined
  /**
   * How the token is refreshed before it expires: `in-band` sends `sync:auth` on the open socket (protocol.md §8) and falls
   * back to reconnecting if the server refuses it; `reconnect` reconnects with a fresh token. Default `reconnect`.
   */
  readonly tokenRefresh?: "reconnect" | "in-band" | undefined
  /** How long before expiry the token is refreshed (at most half its remaining life). Default 30 s. */
  readonly refreshBeforeExpiryMs?: number | undefined
  /** Socket heartbeat period. Default 15 s (the server closes a socket silent for 60 s). */
  readonly heartbeatIntervalMs?: number | undefined
  /** A heartbeat unanswered this long ends the connection. Default 10 s. */
  readonly heartbeatTimeoutMs?: number | undefined
  /** How long the join may take. Default 10 s. */
  readonly requestTimeoutMs?: number | undefined
  /** Reconnect backoff (full jitter). */
  readonly backoff?: BackoffOptions | undefined
  /** `replay_batch_size` of subscriptions; default the server's. */
  readonly replayBatchSize?: number | undefined
  /** Documents per hydration page. Default 500. */
  readonly hydrationPageSize?: number | undefined
  /** Frames that may wait for the client before it drops the socket and resumes. Default 1024. */
  readonly mailboxCapacity?: number | undefined
  /** Sent with the join (protocol.md §8 compatibility). */
  readonly clientBuildId?: string | undefined
  /** Source of the reconnect jitter, a number in [0, 1). Default `Math.random`. */
  readonly random?: (() => number) | undefined
}

/**
 * @since 0.1.0
 */
export interface SessionSettings {
  readonly url: string
  readonly httpUrl: string
  readonly webSocket: WebSocketConstructor
  readonly fetch: typeof globalThis.fetch
  readonly store: WatermarkStore
  readonly token: Micro.Micro<string, TokenUnavailable>
  readonly joinPayload: Record<string, unknown>
  readonly initialLoad: "hydrate" | "replay"
  readonly tokenRefresh: "reconnect" | "in-band"
  readonly refreshBeforeExpiryMs: number
  readonly heartbeatIntervalMs: number
  readonly heartbeatTimeoutMs: number
  readonly requestTimeoutMs: number
  readonly mailboxCapacity: number
  readonly replayBatchSize: number | undefined
  readonly hydrationPageSize: number | undefined
}

/**
 * The followed topics, shared by the client and its current session: the session is told of changes through
 * `onChange`.
 *
 * @since 0.1.0
 */
export interface TopicRegistry {
  readonly topics: Map<string, TopicCache>
  onChange: (() => void) | undefined
}

/**
 * @since 0.1.0
 */
export const resolve = (options: ClientOptions): SessionSettings => {
  const webSocket = options.webSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
  if (webSocket === undefined) {
    throw new TypeError("no WebSocket in this runtime: pass `webSocket` (the `ws` package on Node 20)")
  }
  const fetch = options.fetch ?? globalThis.fetch.bind(globalThis)
  return {
    url: options.url,
    httpUrl: httpUrl(options.url),
    webSocket,
    fetch,
    store: options.store ?? memoryStore(),
    token: Micro.tryPromise({
      try: async () => {
        const token = await options.token()
        if (typeof token !== "string" || token === "") throw new Error("empty token")
        return token
      },
      catch: (cause) => new TokenUnavailable({ cause })
    }),
    joinPayload: options.clientBuildId === undefined ? {} : { client_build_id: options.clientBuildId },
    initialLoad: options.initialLoad ?? "hydrate",
    tokenRefresh: options.tokenRefresh ?? "reconnect",
    refreshBeforeExpiryMs: options.refreshBeforeExpiryMs ?? 30_000,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 15_000,
    heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? 10_000,
    requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
    mailboxCapacity: options.mailboxCapacity ?? 1024,
    replayBatchSize: options.replayBatchSize,
    hydrationPageSize: options.hydrationPageSize
  }
}
