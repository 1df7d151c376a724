/**
 * The Phoenix socket endpoint (protocol.md §5, §8) as a service: its route handler takes a WebSocket upgrade over from the
 * HTTP server, authorizes it, and runs the socket until it closes. A runtime mounts the handler on its own router
 * (see `KhalaServer.router`); `khala serve` mounts the same one.
 */
import type { HttpServerRequest } from "@effect/platform"
import { HttpServerRequest as ServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { Context, Effect, Either, Layer, Option } from "effect"
import type { IncomingMessage } from "node:http"
import type { WebSocket } from "ws"
import { WebSocketServer } from "ws"
import { TopicCatalog } from "../protocol/TopicCatalog.js"
import type { Hub } from "../services/Hub.js"
import { Revocations } from "../services/Revocations.js"
import type { Sequencer } from "../services/Sequencer.js"
import type { TokenVerifier } from "../services/TokenVerifier.js"
import * as Authorize from "./Authorize.js"
import { ServerConfig } from "./ServerConfig.js"
import * as SocketConnection from "./SocketConnection.js"

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
  const engine = yield* Effect.context<Hub | Sequencer>()
  const wss = new WebSocketServer({
    noServer: true,
    // frames over the inbound limit are answered with payload_too_large; far larger ones end the socket
    maxPayload: Math.max(settings.maxFrameBytes * 16, 1024 * 1024),
    perMessageDeflate: false,
    // the authToken subprotocol option of the phoenix client offers "phoenix" beside the token
    handleProtocols: (protocols) => (protocols.has("phoenix") ? "phoenix" : false)
  })
  yield* Effect.addFinalizer(() => Effect.sync(() => wss.close()))

  // Sockets held and upgrades being authorized: what this server admits is bounded (I9).
  let sockets = 0
  let pending = 0
  const unavailable = (reason: string, retryAfterSeconds: number) =>
    HttpServerResponse.text(`${reason}; retry later\n`, {
      status: 503,
      headers: { "retry-after": String(retryAfterSeconds) }
    })

  /** Authorizes an upgrade and takes it over from the HTTP server; a refusal is the HTTP response to send. */
  const upgrade = (request: IncomingMessage) =>
    Effect.gen(function*() {
      const token = upgradeToken(request)
      if (Option.isNone(token)) {
        return Either.left(HttpServerResponse.text("unauthorized: no token\n", { status: 401 }))
      }
      const principal = yield* Effect.either(Effect.provide(Authorize.principal(token.value), authorized))
      if (Either.isLeft(principal)) {
        return Either.left(HttpServerResponse.text(`unauthorized: ${principal.left.message}\n`, { status: 401 }))
      }
      // a verifier of the runtime's own might hand over a deadline that is no time at all: no timer could keep it
      if (!Number.isFinite(principal.right.validUntil.getTime())) {
        return Either.left(HttpServerResponse.text("unauthorized: token has no valid expiry\n", { status: 401 }))
      }
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
      })
      return Either.right({ ws, principal: principal.right })
    })

  const handler = Effect.gen(function*() {
    const request = NodeHttpServerRequest.toIncomingMessage(yield* ServerRequest.HttpServerRequest)
    if ((request.headers.upgrade ?? "").toLowerCase() !== "websocket") {
      return HttpServerResponse.text("expected a WebSocket upgrade\n", { status: 426 })
    }
    if (sockets + pending >= settings.maxSockets) return unavailable("this server holds its most sockets", 5)
    if (pending >= settings.maxPendingUpgrades) return unavailable("too many upgrades in progress", 1)
    pending++
    const upgraded = yield* upgrade(request).pipe(Effect.ensuring(Effect.sync(() => pending--)))
    if (Either.isLeft(upgraded)) return upgraded.left
    const { principal, ws } = upgraded.right
    if (Option.isNone(ws)) return HttpServerResponse.empty()
    sockets++
    yield* SocketConnection.run({
      ws: ws.value,
      connection: request.socket,
      principal,
      catalog,
      settings,
      revoked: revocations.awaitRevoked(principal)
    }).pipe(
      Effect.provide(engine),
      Effect.catchAllCause((cause) => Effect.logWarning("socket ended with a fault", cause)),
      Effect.ensuring(Effect.sync(() => sockets--))
    )
    return HttpServerResponse.empty()
  })

  return SyncSocket.of({ handler })
})

/**
 * The endpoint over the engine's hub and sequencer, the catalog, a token verifier, the revocations and the server's
 * settings.
 */
export const layer: Layer.Layer<
  SyncSocket,
  never,
  ServerConfig | TokenVerifier | Revocations | TopicCatalog | Hub | Sequencer
> = Layer.scoped(SyncSocket, make)
