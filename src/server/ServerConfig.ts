/**
 * The delivery server's settings, as a service: a runtime that mounts the server gives them in code
 * (`ServerConfig.layer({...})`); `khala serve` reads them from the environment (`ServerConfig.layerConfig`).
 */
import type { ConfigError } from "effect"
import { Config, Context, Duration, Effect, Layer, Schema } from "effect"
import { integerWithin } from "../services/Settings.js"

/** How each socket is held to its limits (protocol.md §5, §8, I9). */
export interface ServerSettings {
  /** Period of the `sync:heartbeat` push. */
  readonly heartbeatInterval: Duration.Duration
  /** A socket with no client text frame for this long is closed with 1001; clients reconnect and resume. */
  readonly idleTimeout: Duration.Duration
  /**
   * Inbound frame limit: larger frames are answered `payload_too_large` from their first bytes alone, never parsed.
   */
  readonly maxFrameBytes: number
  /**
   * Inbound rate: a token bucket of this many frames per second, holding one second of them. Socket heartbeats
   * count; a subscribe costs its number of topics. Frames over it are answered `rate_limited` with `retry_after_ms`.
   */
  readonly framesPerSecond: number
  /**
   * Bytes of accepted frames a socket may have waiting to be handled; past it the server stops reading from the
   * socket (TCP then holds the client back) until they are handled.
   */
  readonly inboundBufferBytes: number
  /** Bytes a socket may have unsent before its subscriptions wait for it. */
  readonly sendBufferBytes: number
  /**
   * A socket over its send buffer for this long is closed with 1013 (try again later), and cut off 5 s later if its
   * client does not read the close.
   */
  readonly slowConsumerTimeout: Duration.Duration
  /** Sockets this server holds at once, upgrades in progress included; further upgrades get 503 with `Retry-After`. */
  readonly maxSockets: number
  /** Upgrades being authorized at once; further ones get 503 with `Retry-After`. */
  readonly maxPendingUpgrades: number
  /** Origins allowed to hydrate from a browser (CORS); `"*"` for any. */
  readonly corsOrigins: ReadonlyArray<string> | "*"
  /** Most payload bytes of one hydration page or batch. */
  readonly hydrationPageBytes: number
  /**
   * When the server stops (SIGTERM), it closes its sockets with 1001 at random times over this window, so that
   * their clients do not all reconnect to the other nodes at once (see `Drain`).
   */
  readonly drainWindow: Duration.Duration
}

/**
 * The defaults.
 *
 * `sendBufferBytes` is 256 KiB: a socket that stops reading holds at most that (plus the frame that crossed it) in
 * this process, so 3000 stalled sockets cost well under a GB instead of several. A reading client does not notice:
 * the kernel's own send buffer (up to a few MiB per connection on Linux) sits behind it, and 256 KiB in flight covers
 * some 2.5 MB/s per socket at a 100 ms round trip, far above a sync client's steady rate.
 */
export const defaults: ServerSettings = {
  heartbeatInterval: Duration.seconds(15),
  idleTimeout: Duration.seconds(60),
  maxFrameBytes: 64 * 1024,
  framesPerSecond: 100,
  inboundBufferBytes: 256 * 1024,
  sendBufferBytes: 256 * 1024,
  slowConsumerTimeout: Duration.seconds(30),
  maxSockets: 10_000,
  maxPendingUpgrades: 256,
  corsOrigins: [],
  hydrationPageBytes: 4 * 1024 * 1024,
  drainWindow: Duration.seconds(10)
}

/** A setting given in code is out of its range. */
export class ServerConfigError extends Schema.TaggedError<ServerConfigError>()("ServerConfigError", {
  setting: Schema.String,
  message: Schema.String
}) {}

const positiveDurations = ["heartbeatInterval", "idleTimeout", "slowConsumerTimeout", "drainWindow"] as const
const integerRanges = {
  maxFrameBytes: [256, 64 * 1024 * 1024],
  framesPerSecond: [1, 1_000_000],
  inboundBufferBytes: [1024, 1024 * 1024 * 1024],
  sendBufferBytes: [16 * 1024, 1024 * 1024 * 1024],
  maxSockets: [1, 10_000_000],
  maxPendingUpgrades: [1, 1_000_000],
  hydrationPageBytes: [1024, 1024 * 1024 * 1024]
} as const

/** The settings, checked: every duration positive, every number an integer within its range. */
export const make = (settings: Partial<ServerSettings> = {}): Effect.Effect<ServerSettings, ServerConfigError> =>
  Effect.gen(function*() {
    const merged: ServerSettings = { ...defaults, ...settings }
    for (const name of positiveDurations) {
      if (!Duration.greaterThan(merged[name], Duration.zero) || !Duration.isFinite(merged[name])) {
        return yield* new ServerConfigError({ setting: name, message: `${name} must be a positive, finite duration` })
      }
    }
    for (const [name, [min, max]] of Object.entries(integerRanges)) {
      const value = merged[name as keyof typeof integerRanges]
      if (!Number.isInteger(value) || value < min || value > max) {
        return yield* new ServerConfigError({
          setting: name,
          message: `${name} must be an integer between ${min} and ${max}, not ${value}`
        })
      }
    }
    return merged
  })

/** The server's settings. */
export class ServerConfig extends Context.Tag("khala/ServerConfig")<ServerConfig, ServerSettings>() {}

/** The given settings over the defaults. */
export const layer = (settings: Partial<ServerSettings> = {}): Layer.Layer<ServerConfig, ServerConfigError> =>
  Layer.effect(ServerConfig, make(settings))

const positiveDuration = (name: string) =>
  Config.duration(name).pipe(
    Config.validate({ message: "must be a positive duration", validation: (d) => Duration.toMillis(d) > 0 })
  )

/** The settings as `khala serve` reads them from the environment. */
export const SettingsConfig: Config.Config<ServerSettings> = Config.all({
  heartbeatInterval: positiveDuration("KHALA_HEARTBEAT_INTERVAL").pipe(Config.withDefault(defaults.heartbeatInterval)),
  idleTimeout: positiveDuration("KHALA_IDLE_TIMEOUT").pipe(
    Config.withDefault(defaults.idleTimeout),
    Config.withDescription("A socket with no client frame for this long is closed (clients reconnect and resume)")
  ),
  maxFrameBytes: integerWithin("KHALA_MAX_FRAME_BYTES", ...integerRanges.maxFrameBytes).pipe(
    Config.withDefault(defaults.maxFrameBytes)
  ),
  framesPerSecond: integerWithin("KHALA_CLIENT_FRAMES_PER_SECOND", ...integerRanges.framesPerSecond).pipe(
    Config.withDefault(defaults.framesPerSecond)
  ),
  inboundBufferBytes: integerWithin("KHALA_INBOUND_BUFFER_BYTES", ...integerRanges.inboundBufferBytes).pipe(
    Config.withDefault(defaults.inboundBufferBytes),
    Config.withDescription("Bytes of a socket's frames waiting to be handled before the server stops reading it")
  ),
  sendBufferBytes: integerWithin("KHALA_SEND_BUFFER_BYTES", ...integerRanges.sendBufferBytes).pipe(
    Config.withDefault(defaults.sendBufferBytes),
    Config.withDescription("Bytes a socket may have unsent before its subscriptions wait for it")
  ),
  slowConsumerTimeout: positiveDuration("KHALA_SLOW_CONSUMER_TIMEOUT").pipe(
    Config.withDefault(defaults.slowConsumerTimeout),
    Config.withDescription("A socket over its send buffer for this long is closed with a resumable code")
  ),
  maxSockets: integerWithin("KHALA_MAX_SOCKETS", ...integerRanges.maxSockets).pipe(
    Config.withDefault(defaults.maxSockets),
    Config.withDescription("Sockets one server holds; further upgrades get 503 with Retry-After")
  ),
  maxPendingUpgrades: integerWithin("KHALA_MAX_PENDING_UPGRADES", ...integerRanges.maxPendingUpgrades).pipe(
    Config.withDefault(defaults.maxPendingUpgrades),
    Config.withDescription("Upgrades being authorized at once; further ones get 503 with Retry-After")
  ),
  corsOrigins: Config.string("KHALA_CORS_ORIGINS").pipe(
    Config.withDefault(""),
    Config.map((value): ServerSettings["corsOrigins"] =>
      value.trim() === "*" ? "*" : value.split(",").map((origin) => origin.trim()).filter((origin) => origin !== "")
    ),
    Config.withDescription("Origins allowed to hydrate from a browser, comma-separated, or *")
  ),
  hydrationPageBytes: integerWithin("KHALA_HYDRATION_PAGE_BYTES", ...integerRanges.hydrationPageBytes).pipe(
    Config.withDefault(defaults.hydrationPageBytes),
    Config.withDescription("Most payload bytes of one hydration page or batch")
  ),
  drainWindow: positiveDuration("KHALA_DRAIN_WINDOW").pipe(
    Config.withDefault(defaults.drainWindow),
    Config.withDescription("On SIGTERM, the sockets held are closed with 1001 at random times over this window")
  )
})

/** The settings from the environment (`SettingsConfig`). */
export const layerConfig: Layer.Layer<ServerConfig, ConfigError.ConfigError | ServerConfigError> = Layer.effect(
  ServerConfig,
  Effect.flatMap(SettingsConfig, make)
)
