/**
 * Khala's delivery server as values a runtime composes: `router` (the Phoenix socket and health routes, to mount
 * beside the runtime's own routes on its own port), `layerSocket` (the socket endpoint behind the router), and
 * `layer` / `layerConfig` to run it on an HTTP server of its own, as `khala serve` does.
 *
 * Its inputs are services: the engine's `Hub` and `Sequencer` and the `TopicCatalog` (from `KhalaPg` or
 * `KhalaMemory`, which also give the `Revocations`), a `TokenVerifier` (`AuthJose`), the server's settings (`ServerConfig`), and for `/readyz` the
 * `SqlClient`. Only `layerConfig` reads the environment.
 */
import type { HttpServerError } from "@effect/platform"
import { HttpMiddleware, HttpRouter, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import type { SqlClient } from "@effect/sql"
import type { ConfigError } from "effect"
import { Config, Effect, Layer } from "effect"
import { createServer } from "node:http"
import type { TopicCatalog } from "../protocol/TopicCatalog.js"
import type { Documents } from "../services/Documents.js"
import type { Hub } from "../services/Hub.js"
import type { Revocations } from "../services/Revocations.js"
import type { Sequencer } from "../services/Sequencer.js"
import type { TokenVerifier } from "../services/TokenVerifier.js"
import * as Tracing from "../services/Tracing.js"
import * as Drain from "./Drain.js"
import * as Health from "./Health.js"
import * as Hydration from "./Hydration.js"
import * as ListingReadahead from "./ListingReadahead.js"
import * as Metrics from "./Metrics.js"
import * as NodeStatus from "./NodeStatus.js"
import * as ServerConfig from "./ServerConfig.js"
import * as Subscribers from "./Subscribers.js"
import * as SyncSocket from "./SyncSocket.js"

/** The Phoenix socket at `/socket/websocket` (clients connect to `ws://HOST/socket`). */
export const socketRouter: HttpRouter.HttpRouter<never, SyncSocket.SyncSocket> = HttpRouter.empty.pipe(
  HttpRouter.get(SyncSocket.socketPath, Effect.flatMap(SyncSocket.SyncSocket, (socket) => socket.handler))
)

/** The socket and hydration over HTTP (`/sync/v1/topics/{topic}/documents…`): everything clients use. */
export const syncRouter: HttpRouter.HttpRouter<
  never,
  SyncSocket.SyncSocket | ServerConfig.ServerConfig | ListingReadahead.ListingReadahead | Services
> = socketRouter.pipe(HttpRouter.concat(Hydration.router))

/**
 * `syncRouter`, with `GET /healthz`, `GET /readyz` (ready when the node takes sockets and its database answers),
 * `GET /statusz` (the node's sockets and subscribers, JSON) and `GET /metrics` (Prometheus text, docs/metrics.md).
 */
export const router: HttpRouter.HttpRouter<
  never,
  | SyncSocket.SyncSocket
  | ServerConfig.ServerConfig
  | ListingReadahead.ListingReadahead
  | Services
  | SqlClient.SqlClient
  | Drain.Drain
  | Health.Readiness
  | Metrics.MetricsExporter
  | Subscribers.Subscribers
> = Health.routes.pipe(
  HttpRouter.concat(NodeStatus.routes),
  HttpRouter.concat(Metrics.routes),
  HttpRouter.concat(syncRouter)
)

/** What the socket endpoint and hydration run on. */
export type Services = TokenVerifier | Revocations | TopicCatalog | Hub | Sequencer | Documents

/**
 * The socket endpoint with the given settings (over the defaults), the settings for the other routes, hydration's
 * reading ahead, the node's `Drain` (a runtime that mounts `router` on its own server runs `Drain.run` before that
 * server stops), its readiness, the count of its subscribers and the exporter of `/metrics`.
 */
export const layerSocket = (
  settings: Partial<ServerConfig.ServerSettings> = {}
): Layer.Layer<
  | SyncSocket.SyncSocket
  | ServerConfig.ServerConfig
  | ListingReadahead.ListingReadahead
  | Drain.Drain
  | Health.Readiness
  | Metrics.MetricsExporter
  | Subscribers.Subscribers,
  ServerConfig.ServerConfigError,
  Services
> =>
  Layer.mergeAll(SyncSocket.layer, ListingReadahead.layer, Health.layerReadiness, Metrics.layer).pipe(
    Layer.provideMerge(Layer.merge(Drain.layer, Subscribers.layer)),
    Layer.provideMerge(ServerConfig.layer(settings))
  )

/** Where a standalone server listens, and how long it waits for a request. */
export interface Listen {
  readonly host?: string | undefined
  readonly port: number
  /**
   * Milliseconds a connection has to send a complete request head (an upgrade's included) before it is cut off;
   * default 10 s. Node's own default (60 s, checked every 30 s) lets half-sent upgrades pile up.
   */
  readonly headersTimeout?: number | undefined
  /** Milliseconds a connection has to send a complete request; default 30 s. */
  readonly requestTimeout?: number | undefined
}

/** The Node HTTP server options Khala's server runs with (`Listen`'s timeouts); a runtime can give its own server them. */
export const nodeServerOptions = (listen: Omit<Listen, "port" | "host"> = {}) => {
  const headersTimeout = listen.headersTimeout ?? 10_000
  return {
    headersTimeout,
    requestTimeout: Math.max(headersTimeout, listen.requestTimeout ?? 30_000),
    // how often Node looks for connections past those timeouts
    connectionsCheckingInterval: Math.min(1000, headersTimeout)
  }
}

/**
 * A Node HTTP server listening on `host:port` with `nodeServerOptions`, for `HttpServer.serve`.
 *
 * It listens as soon as it is built, and `HttpServer.serve` installs the app's handler only once the layers between
 * them are built (the socket endpoint, a runtime's own migrations); a request in between would get no answer at all,
 * and a load balancer's probe would hang instead of failing. Until the app serves, and again once it has stopped,
 * every request is answered 503.
 */
export const nodeServer = (listen: Listen) =>
  NodeHttpServer.layer(() => {
    const server = createServer(nodeServerOptions(listen), (_request, response) => {
      // the app's handler, once installed, answers instead
      if (server.listenerCount("request") > 1) return
      response.writeHead(503, { "content-type": "text/plain; charset=utf-8", "retry-after": "1" })
      response.end("not serving yet (or any more); retry later\n")
    })
    return server
  }, {
    host: listen.host ?? "127.0.0.1",
    port: listen.port
  })

/**
 * `router` on an HTTP server of its own, with the given settings. When it stops (SIGTERM for `khala serve`), it
 * drains first (see `Drain`): the drain's finalizer is added after the server's, so it runs before them, while the
 * server still serves.
 */
export const layer = (
  options: Listen & Partial<ServerConfig.ServerSettings>
): Layer.Layer<
  never,
  HttpServerError.ServeError | ServerConfig.ServerConfigError,
  Services | SqlClient.SqlClient
> =>
  Layer.scopedDiscard(Effect.gen(function*() {
    yield* Layer.buildWithScope(
      HttpServer.serve(router).pipe(
        HttpServer.withLogAddress,
        // the platform makes a span of every request, with an attribute per header; untraced, they go nowhere
        HttpMiddleware.withTracerDisabledWhen(() => !Tracing.isTracing())
      ),
      yield* Effect.scope
    )
    const drain = yield* Drain.Drain
    yield* Effect.addFinalizer(() => drain.run)
  })).pipe(
    Layer.provide(layerSocket(options)),
    Layer.provide(nodeServer(options))
  )

/** Where `khala serve` listens. */
export const ListenConfig = Config.all({
  host: Config.string("KHALA_HOST").pipe(
    Config.withDefault("127.0.0.1"),
    Config.withDescription("Interface to listen on")
  ),
  port: Config.port("KHALA_PORT").pipe(
    Config.withDefault(4000),
    Config.withDescription("TCP port for HTTP and the WebSocket endpoint")
  )
})

/** `layer` with its address and settings from the environment (`ListenConfig`, `ServerConfig.SettingsConfig`). */
export const layerConfig: Layer.Layer<
  never,
  HttpServerError.ServeError | ServerConfig.ServerConfigError | ConfigError.ConfigError,
  Services | SqlClient.SqlClient
> = Layer.unwrapEffect(
  Effect.map(
    Config.all([ListenConfig, ServerConfig.SettingsConfig]),
    ([listen, settings]) => layer({ ...listen, ...settings })
  )
)
