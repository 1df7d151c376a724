/**
 * The Phoenix socket endpoint (protocol.md §5, §8) as a service: its route handler takes a WebSocket upgrade over from the
 * HTTP server, authorizes it, and runs the socket until it closes. A runtime mounts the handler on its own router
 * (see `KhalaServer.router`); `khala serve` mounts the same one.
 */
import type { HttpServerRequest } from "@effect/platform"
import { HttpServerRequest as ServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { Context, Effect, Either, Layer, LogLevel, Option } from "effect"
import { randomUUID } from "node:crypto"
import type { IncomingMessage } from "node:http"
import type { WebSocket } from "ws"
import { WebSocketServer } from "ws"
import { TopicCatalog } from "../protocol/TopicCatalog.js"
import type { Hub } from "../services/Hub.js"
import * as Metrics from "../services/Metrics.js"
import { Revocations } from "../services/Revocations.js"
import type { Sequencer } from "../services/Sequencer.js"
import type { TokenVerifier } from "../services/TokenVerifier.js"
import * as Admission from "./Admission.js"
import * as Authorize from "./Authorize.js"
import * as Compatibility from "./Compatibility.js"
import { Drain } from "./Drain.js"
import { ServerConfig } from "./ServerConfig.js"
import * as SocketConnection from "./SocketConnection.js"
import * as SocketGauges from "./SocketGauges.js"
import type { Subscribers } from "./Subscribers.js"

/** The path of the Phoenix socket; `/socket` is the client's endpoint, `/websocket` its transport. */
export const socketPath = "/socket/websocket"

const bearerPrefix = "base64url.bearer.phx."

/** The token of an upgrade request: the `token` query parameter or the `authToken` subprotocol. */
export const upgradeToken = (request: IncomingMessage): Option.Option<string> => {
  const url = new URL(request.url ?? "/", "http://khala")
  const param = url.searchParams.get("token")
  if (param !== null && param !== "") return Option.some(param)
  const protocols = (request.headers["sec-websocket-protocol"] ?? "").split(",").map((p) => p.trim())
  const bearer = protocols.find((p) => p.startsWith(bearerPrefix))
  if (bearer === undefined) return Option.none()
  return Option.some(Buffer.from(bearer.slice(bearerPrefix.length), "base64url").toString("utf8"))
}

/** The socket endpoint. */
export class SyncSocket extends Context.Tag("khala/SyncSocket")<SyncSocket, {
  /**
   * The route handler of the socket path. It takes the upgrade over from the HTTP server and runs the socket until
   * it closes (the HTTP server then interrupts it); a refused upgrade is an ordinary HTTP response.
   */
  readonly handler: Effect.Effect<HttpServerResponse.HttpServerResponse, never, HttpServerRequest.HttpServerRequest>
}>() {}

/**
 * Makes the endpoint. A bad token is refused at the upgrade (401), before any channel exists. Each socket runs in its
 * own scope; the layer's end (the server's shutdown) closes every socket with a resumable code.
 */
export const make = Effect.gen(function*() {
  const settings = yield* ServerConfig
  const authorized = yield* Effect.context<TokenVerifier | Revocations>()
  const revocations = yield* Revocations
  const catalog = yield* TopicCatalog
  const engine = yield* Effect.context<Hub | Sequencer | Subscribers>()
  const drain = yield* Drain
  const wss = new WebSocketServer({
    noServer: true,
    // frames over the inbound limit are answered with payload_too_large; far larger ones end the socket
    maxPayload: Math.max(settings.maxFrameBytes * 16, 1024 * 1024),
    perMessageDeflate: false,
    // the authToken subprotocol option of the phoenix client offers "phoenix" beside the token
    handleProtocols: (protocols) => (protocols.has("phoenix") ? "phoenix" : false)
  })
  yield* Effect.addFinalizer(() => Effect.sync(() => wss.close()))
  yield* SocketGauges.sample(wss)
  const admission = Admission.make(settings)
  const compatibility = Compatibility.make(settings)

  // Sockets held (the drain tracks them) and upgrades being authorized: what this server admits is bounded (I9).
  let pending = 0
  const unavailable = (reason: string, retryAfterSeconds: number) =>
    HttpServerResponse.text(`${reason}; retry later\n`, {
      status: 503,
      headers: { "retry-after": String(retryAfterSeconds) }
    })

  /**
   * A refused upgrade, counted by its reason and logged: an auth refusal at info, a full server at debug (a reconnect
   * storm would otherwise write a line per retry; the metric counts them).
   */
  const refused = (reason: string, response: HttpServerResponse.HttpServerResponse) =>
    Effect.as(
      Effect.zipRight(
        Effect.sync(() => Metrics.add(Metrics.upgradeRefusals, 1, Metrics.reasonLabel(reason))),
        Effect.logWithLevel(response.status === 401 ? LogLevel.Info : LogLevel.Debug, "upgrade refused").pipe(
          Effect.annotateLogs("reason", reason)
        )
      ),
      response
    )
  // The message is the verifier's, which never echoes the token or a claim's value (AuthJose).
  const unauthorized = (reason: string, message: string) =>
    Effect.map(
      refused(reason, HttpServerResponse.text(`unauthorized: ${message}\n`, { status: 401 })),
      Either.left
    )

  /** Authorizes an upgrade and takes it over from the HTTP server; a refusal is the HTTP response to send. */
  const upgrade = (request: IncomingMessage) =>
    Effect.gen(function*() {
      const token = upgradeToken(request)
      if (Option.isNone(token)) return yield* unauthorized("missing_token", "no token")
      const principal = yield* Effect.either(Effect.provide(Authorize.principal(token.value), authorized))
      if (Either.isLeft(principal)) return yield* unauthorized(principal.left.reason, principal.left.message)
      // a verifier of the runtime's own might hand over a deadline that is no time at all: no timer could keep it
      if (!Number.isFinite(principal.right.validUntil.getTime())) {
        return yield* unauthorized("no_expiry", "token has no valid expiry")
      }
      // the principal's and its org's share of this server (protocol.md §10); the place is held from here on
      const admitted = admission.admit(principal.right, Date.now())
      if (admitted._tag === "Refused") {
        const { message, retryAfterSeconds, status } = admitted.refusal
        return Either.left(
          yield* refused(
            status === 429 ? "tenant_sockets" : "admission",
            HttpServerResponse.text(`${message}; retry later\n`, {
              status,
              headers: retryAfterSeconds === undefined ? {} : { "retry-after": String(retryAfterSeconds) }
            })
          )
        )
      }
      const ticket = admitted.ticket
      // A WebSocket client sends nothing before the 101 answer, so nothing was read past the request head. ws answers
      // a malformed handshake itself and closes the connection without calling back: that ends the wait too.
      const ws = yield* Effect.async<Option.Option<WebSocket>>((resume) => {
        const abandoned = () => resume(Effect.succeed(Option.none()))
        request.socket.once("close", abandoned)
        wss.handleUpgrade(request, request.socket, Buffer.alloc(0), (ws) => {
          request.socket.off("close", abandoned)
          resume(Effect.succeed(Option.some(ws)))
        })
        return Effect.sync(() => request.socket.off("close", abandoned))
      }).pipe(Effect.onExit((exit) =>
        Effect.sync(() => {
          if (exit._tag === "Failure" || Option.isNone(exit.value)) ticket.release()
        })
      ))
      return Either.right({ ws, principal: principal.right, ticket })
    })

  const handler = Effect.gen(function*() {
    const request = NodeHttpServerRequest.toIncomingMessage(yield* ServerRequest.HttpServerRequest)
    if ((request.headers.upgrade ?? "").toLowerCase() !== "websocket") {
      return HttpServerResponse.text("expected a WebSocket upgrade\n", { status: 426 })
    }
    // draining: the load balancer sends the client to another node (see Drain)
    if (yield* drain.draining) return yield* refused("draining", unavailable("this server is draining", 1))
    if ((yield* drain.sockets) + pending >= settings.maxSockets) {
      return yield* refused("max_sockets", unavailable("this server holds its most sockets", 5))
    }
    if (pending >= settings.maxPendingUpgrades) {
      return yield* refused("max_pending_upgrades", unavailable("too many upgrades in progress", 1))
    }
    // A browser names the page that opens the socket; other clients send no Origin and are not checked.
    if (!admission.originAllowed(request.headers.origin)) {
      return yield* refused("origin", HttpServerResponse.text("origin not allowed\n", { status: 403 }))
    }
    pending++
    const upgraded = yield* upgrade(request).pipe(Effect.ensuring(Effect.sync(() => pending--)))
    if (Either.isLeft(upgraded)) return upgraded.left
    const { principal, ticket, ws } = upgraded.right
    if (Option.isNone(ws)) return HttpServerResponse.empty()
    Metrics.add(Metrics.sockets, 1)
    yield* drain.track(ws.value).pipe(
      Effect.zipRight(SocketConnection.run({
        ws: ws.value,
        connection: request.socket,
        principal,
        catalog,
        settings,
        verify: (token) => Effect.provide(Authorize.principal(token), authorized),
        compatibility,
        subscribeRate: ticket.subscribeRate,
        awaitRevoked: revocations.awaitRevoked
      })),
      Effect.scoped,
      Effect.provide(engine),
      Effect.catchAllCause((cause) => Effect.logWarning("socket ended with a fault", cause)),
      Effect.annotateLogs({ socket: randomUUID(), org: principal.orgId }),
      Effect.ensuring(Effect.sync(() => {
        ticket.release()
        Metrics.add(Metrics.sockets, -1)
      }))
    )
    return HttpServerResponse.empty()
  })

  return SyncSocket.of({ handler })
})

/**
 * The endpoint over the engine's hub and sequencer, the catalog, a token verifier, the revocations, the drain, the
 * count of subscribers and the server's settings.
 */
export const layer: Layer.Layer<
  SyncSocket,
  never,
  ServerConfig | Drain | Subscribers | TokenVerifier | Revocations | TopicCatalog | Hub | Sequencer
> = Layer.scoped(SyncSocket, make)
