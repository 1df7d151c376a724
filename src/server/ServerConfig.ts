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
  /** How long before its token's `exp` a socket is pushed `sync:token_expiring` (protocol.md §5.7). */
  readonly tokenExpiryWarning: Duration.Duration
  /** Joins stating an older `protocol_version` are refused with `upgrade_required` (protocol.md §5.1, §9). */
  readonly minProtocolVersion: number
  /** Joins stating an older `schema_version` are refused with `upgrade_required`. */
  readonly minSchemaVersion: number
  /** `client_build_id`s refused with `upgrade_required`: exact ids, or prefixes ending in `*`. */
  readonly refusedClientBuilds: ReadonlyArray<string>
  /** Sockets one org may hold on this server; further upgrades get 429 with `Retry-After` (protocol.md §10). */
  readonly maxSocketsPerOrg: number
  /** Sockets one principal (`sub` within its org) may hold on this server; further upgrades get 429. */
  readonly maxSocketsPerPrincipal: number
  /**
   * Topic subscriptions per second one principal may start on this server, all its sockets together (a burst of one
   * second's worth); a subscribe over it is answered `rate_limited`. Each starts a replay: this bounds the journal
   * reads one principal causes.
   */
  readonly principalSubscribesPerSecond: number
  /**
   * Origins a browser may open a socket from (`"*"` for any); an upgrade with another `Origin` gets 403. Upgrades
   * without `Origin` (not from a browser) are not checked. Tokens, not cookies, authorize a socket, so a foreign page
   * gains nothing it lacks a token for; the list narrows which pages may use one.
   */
  readonly socketOrigins: ReadonlyArray<string> | "*"
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
  drainWindow: Duration.seconds(10),
  tokenExpiryWarning: Duration.seconds(60),
  minProtocolVersion: 0,
  minSchemaVersion: 0,
  refusedClientBuilds: [],
  maxSocketsPerOrg: 10_000,
  maxSocketsPerPrincipal: 500,
  principalSubscribesPerSecond: 500,
  socketOrigins: "*"
}

/** A setting given in code is out of its range. */
export class ServerConfigError extends Schema.TaggedError<ServerConfigError>()("ServerConfigError", {
  setting: Schema.String,
  message: Schema.String
}) {}

const positiveDurations = [
  "heartbeatInterval",
  "idleTimeout",
  "slowConsumerTimeout",
  "drainWindow",
  "tokenExpiryWarning"
] as const
const integerRanges = {
  maxFrameBytes: [256, 64 * 1024 * 1024],
  framesPerSecond: [1, 1_000_000],
  inboundBufferBytes: [1024, 1024 * 1024 * 1024],
  sendBufferBytes: [16 * 1024, 1024 * 1024 * 1024],
  maxSockets: [1, 10_000_000],
  maxPendingUpgrades: [1, 1_000_000],
  hydrationPageBytes: [1024, 1024 * 1024 * 1024],
  minProtocolVersion: [0, 2 ** 31 - 1],
  minSchemaVersion: [0, 2 ** 31 - 1],
  maxSocketsPerOrg: [1, 10_000_000],
  maxSocketsPerPrincipal: [1, 10_000_000],
  principalSubscribesPerSecond: [1, 1_000_000]
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
    // an origin is compared with the browser's `Origin` header as it is: a path or a trailing slash would never match
    if (merged.socketOrigins !== "*") {
      for (const origin of merged.socketOrigins) {
        if (!isOrigin(origin)) {
          return yield* new ServerConfigError({
            setting: "socketOrigins",
            message: `socketOrigins must be origins like https://app.example (scheme, host, port), not ${origin}`
          })
        }
      }
    }
    return merged
  })

const isOrigin = (value: string): boolean => {
  try {
    return new URL(value).origin === value
  } catch {
    return false
  }
}

/** The server's settings. */
export class ServerConfig extends Context.Tag("khala/ServerConfig")<ServerConfig, ServerSettings>() {}

/** The given settings over the defaults. */
export const layer = (settings: Partial<ServerSettings> = {}): Layer.Layer<ServerConfig, ServerConfigError> =>
  Layer.effect(ServerConfig, make(settings))

const positiveDuration = (name: string) =>
  Config.duration(name).pipe(
    Config.validate({ message: "must be a positive duration", validation: (d) => Duration.toMillis(d) > 0 })
  )

/** A comma-separated list, or `*` for any. */
const listOrAny = (name: string, description: string) =>
  Config.string(name).pipe(
    Config.withDefault("*"),
    Config.map((value): ReadonlyArray<string> | "*" =>
      value.trim() === "*" ? "*" : value.split(",").map((item) => item.trim()).filter((item) => item !== "")
    ),
    Config.withDescription(description)
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
  ),
  tokenExpiryWarning: positiveDuration("KHALA_TOKEN_EXPIRY_WARNING").pipe(
    Config.withDefault(defaults.tokenExpiryWarning),
    Config.withDescription("How long before its token's exp a socket is pushed sync:token_expiring")
  ),
  minProtocolVersion: integerWithin("KHALA_MIN_PROTOCOL_VERSION", ...integerRanges.minProtocolVersion).pipe(
    Config.withDefault(defaults.minProtocolVersion),
    Config.withDescription("Joins stating an older protocol_version are refused with upgrade_required")
  ),
  minSchemaVersion: integerWithin("KHALA_MIN_SCHEMA_VERSION", ...integerRanges.minSchemaVersion).pipe(
    Config.withDefault(defaults.minSchemaVersion),
    Config.withDescription("Joins stating an older schema_version are refused with upgrade_required")
  ),
  refusedClientBuilds: Config.string("KHALA_REFUSED_CLIENT_BUILDS").pipe(
    Config.withDefault(""),
    Config.map((value) => value.split(",").map((build) => build.trim()).filter((build) => build !== "")),
    Config.withDescription("client_build_ids refused with upgrade_required, comma-separated; a trailing * is a prefix")
  ),
  maxSocketsPerOrg: integerWithin("KHALA_MAX_SOCKETS_PER_ORG", ...integerRanges.maxSocketsPerOrg).pipe(
    Config.withDefault(defaults.maxSocketsPerOrg),
    Config.withDescription("Sockets one org holds on one server; further upgrades get 429 with Retry-After")
  ),
  maxSocketsPerPrincipal: integerWithin("KHALA_MAX_SOCKETS_PER_PRINCIPAL", ...integerRanges.maxSocketsPerPrincipal)
    .pipe(
      Config.withDefault(defaults.maxSocketsPerPrincipal),
      Config.withDescription("Sockets one sub (within its org) holds on one server; further upgrades get 429")
    ),
  principalSubscribesPerSecond: integerWithin(
    "KHALA_PRINCIPAL_SUBSCRIBES_PER_SECOND",
    ...integerRanges.principalSubscribesPerSecond
  ).pipe(
    Config.withDefault(defaults.principalSubscribesPerSecond),
    Config.withDescription("Topic subscriptions per second one sub starts on one server, all its sockets together")
  ),
  socketOrigins: listOrAny(
    "KHALA_SOCKET_ORIGINS",
    "Origins a browser may open a socket from, comma-separated, or *; upgrades without Origin are not checked"
  )
})

/** The settings from the environment (`SettingsConfig`). */
export const layerConfig: Layer.Layer<ServerConfig, ConfigError.ConfigError | ServerConfigError> = Layer.effect(
  ServerConfig,
  Effect.flatMap(SettingsConfig, make)
)
