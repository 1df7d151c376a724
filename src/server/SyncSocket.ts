import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { Clock, Config, Deferred, Duration, Effect, Either, Exit, Option, Queue } from "effect"
import { randomUUID } from "node:crypto"
import type { IncomingMessage } from "node:http"
import { WebSocket, WebSocketServer } from "ws"
import * as PhoenixFrame from "../protocol/PhoenixFrame.js"
import * as Replies from "../protocol/Replies.js"
import * as SyncChannel from "../protocol/SyncChannel.js"
import { TopicCatalog } from "../protocol/TopicCatalog.js"
import type { Principal } from "../services/TokenVerifier.js"
import { TokenVerifier } from "../services/TokenVerifier.js"
import { makeSession } from "./SyncSession.js"

export const SocketConfig = Config.all({
  heartbeatInterval: Config.duration("KHALA_HEARTBEAT_INTERVAL").pipe(Config.withDefault(Duration.seconds(15))),
  idleTimeout: Config.duration("KHALA_IDLE_TIMEOUT").pipe(
    Config.withDefault(Duration.seconds(60)),
    Config.withDescription("A socket with no client frame for this long is closed (clients reconnect and resume)")
  ),
  maxFrameBytes: Config.integer("KHALA_MAX_FRAME_BYTES").pipe(Config.withDefault(64 * 1024)),
  sendBufferBytes: Config.integer("KHALA_SEND_BUFFER_BYTES").pipe(
    Config.withDefault(4 * 1024 * 1024),
    Config.withDescription("Bytes a socket may have unsent before its subscriptions wait for it")
  ),
  slowConsumerTimeout: Config.duration("KHALA_SLOW_CONSUMER_TIMEOUT").pipe(
    Config.withDefault(Duration.seconds(30)),
    Config.withDescription("A socket over its send buffer for this long is closed with a resumable code")
  ),
  framesPerSecond: Config.integer("KHALA_CLIENT_FRAMES_PER_SECOND").pipe(Config.withDefault(100))
})

/** The path of the Phoenix socket; `/socket` is the client's endpoint, `/websocket` its transport. */
export const socketPath = "/socket/websocket"

/** Close codes; every one but 1000 makes Phoenix clients reconnect and resume (SPEC §5). */
export const CloseCode = {
  goingAway: 1001,
  policy: 1008,
  tryAgainLater: 1013
} as const

const bearerPrefix = "base64url.bearer.phx."

/** How long a closing socket may take to answer the close handshake before it is cut off. */
const closeGrace = Duration.seconds(1)
/** The same for a slow consumer, whose close frame is queued behind its unread data. */
const slowConsumerCloseGrace = Duration.seconds(30)

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

/**
 * Makes the handler of the Phoenix socket route. A bad token is refused at the upgrade (401), before any channel
 * exists. Each socket runs in its own scope: closing it interrupts every fiber it started, and the server's shutdown
 * closes every socket with a resumable code.
 */
export const makeHandler = Effect.gen(function*() {
  const config = yield* SocketConfig
  const verifier = yield* TokenVerifier
  const catalog = yield* TopicCatalog
  const wss = new WebSocketServer({
    noServer: true,
    // frames over the inbound limit are answered with payload_too_large; far larger ones end the socket
    maxPayload: Math.max(config.maxFrameBytes * 16, 1024 * 1024),
    perMessageDeflate: false,
    // the authToken subprotocol option of the phoenix client offers "phoenix" beside the token
    handleProtocols: (protocols) => (protocols.has("phoenix") ? "phoenix" : false)
  })
  yield* Effect.addFinalizer(() => Effect.sync(() => wss.close()))

  const connection = (ws: WebSocket, principal: Principal) =>
    Effect.scoped(Effect.gen(function*() {
      const inbound = yield* Queue.bounded<string>(256)
      const closed = yield* Deferred.make<void>()
      let lastFrameAt = yield* Clock.currentTimeMillis
      let windowStart = lastFrameAt
      let framesInWindow = 0

      // Close with a code of our choosing; a peer that does not answer the close handshake (it stopped reading) is
      // cut off after a short grace, so neither a shutdown nor the HTTP server's close waits on it.
      const closeWith = (code: number, reason: string, grace: Duration.Duration = closeGrace) =>
        Effect.sync(() => {
          if (ws.readyState === WebSocket.CLOSED) return
          // a socket already closing (a slow consumer) still gets this, possibly shorter, cut-off
          if (ws.readyState !== WebSocket.CLOSING) ws.close(code, reason)
          const cutOff = setTimeout(() => ws.terminate(), Duration.toMillis(grace))
          cutOff.unref()
          ws.once("close", () => clearTimeout(cutOff))
        })
      ws.on("message", (data, isBinary) => {
        lastFrameAt = Date.now()
        if (isBinary) return
        // Frames are handled in arrival order by one fiber; a client that floods past the queue is cut off.
        if (!Queue.unsafeOffer(inbound, data.toString())) ws.close(CloseCode.policy, "too many frames")
      })
      ws.on("close", () => Deferred.unsafeDone(closed, Exit.void))
      ws.on("error", () => ws.terminate())
      yield* Effect.addFinalizer(() => closeWith(CloseCode.goingAway, "server closing"))

      const overLimit = () => ws.bufferedAmount > config.sendBufferBytes

      // Backpressure: while this socket's send buffer is over its limit, its senders wait (its hub subscriptions
      // then lag and fall back to the journal); past the timeout it is closed with a resumable code (I9).
      const waitForRoom = Effect.gen(function*() {
        const start = yield* Clock.currentTimeMillis
        while (ws.readyState === WebSocket.OPEN && overLimit()) {
          if ((yield* Clock.currentTimeMillis) - start > Duration.toMillis(config.slowConsumerTimeout)) {
            // the close frame waits behind the unsent data: a client that reads again gets it and its code
            yield* closeWith(CloseCode.tryAgainLater, "slow consumer", slowConsumerCloseGrace)
            return yield* Effect.interrupt
          }
          yield* Effect.sleep("20 millis")
        }
      })
      const send = (text: string) =>
        Effect.zipRight(
          waitForRoom,
          Effect.sync(() => {
            if (ws.readyState === WebSocket.OPEN) ws.send(text)
          })
        )

      // The tail's fast path never waits: a socket over its limit refuses, and its subscriptions catch up through
      // `send`, which waits for it.
      const offer = (frames: ReadonlyArray<Uint8Array>) => {
        if (ws.readyState !== WebSocket.OPEN || overLimit()) return false
        for (const frame of frames) ws.send(frame, { binary: false })
        return true
      }

      const session = yield* makeSession({ principal, catalog, socket: { send, offer }, newId: randomUUID })

      const rateLimited = (now: number) => {
        if (now - windowStart >= 1000) {
          windowStart = now
          framesInWindow = 0
        }
        return ++framesInWindow > config.framesPerSecond
      }

      const receive = (text: string) =>
        Effect.gen(function*() {
          const decoded = PhoenixFrame.decodeFrame(text)
          if (Either.isLeft(decoded)) {
            const error = decoded.left
            // A frame we cannot trust is answered when it can be addressed, else dropped: never a crash.
            if (error.topic === undefined || error.ref === undefined) return
            return yield* send(PhoenixFrame.encodeFrame(PhoenixFrame.reply(
              error.joinRef ?? null,
              error.ref,
              error.topic,
              "error",
              Replies.errorPayload({ code: "bad_subscription", message: error.message })
            )))
          }
          const frame = decoded.right
          if (text.length > config.maxFrameBytes) {
            return yield* session.replyError(
              frame,
              Replies.errorPayload({
                code: "payload_too_large",
                message: `frames are limited to ${config.maxFrameBytes} bytes`
              })
            )
          }
          if (rateLimited(yield* Clock.currentTimeMillis) && frame.topic !== PhoenixFrame.phoenixTopic) {
            return yield* session.replyError(
              frame,
              Replies.errorPayload({
                code: "rate_limited",
                message: `at most ${config.framesPerSecond} frames per second`,
                retryAfterMs: 1000
              })
            )
          }
          yield* session.handle(frame)
        })

      yield* Queue.take(inbound).pipe(Effect.flatMap(receive), Effect.forever, Effect.forkScoped)
      // One timer per socket, waking only when something is due: the periodic heartbeat push, the idle deadline, and
      // the token's expiry, which ends the socket so that the client gets a fresh token and resumes (SPEC §7).
      yield* Effect.gen(function*() {
        const heartbeatEvery = Duration.toMillis(config.heartbeatInterval)
        const idleTimeout = Duration.toMillis(config.idleTimeout)
        const expiresAt = principal.expiresAt.getTime()
        let nextHeartbeat = (yield* Clock.currentTimeMillis) + heartbeatEvery
        while (true) {
          const now = yield* Clock.currentTimeMillis
          if (now >= expiresAt) {
            yield* session.sendFrame(PhoenixFrame.push(null, SyncChannel.channelTopic, SyncChannel.SyncEvent.error, {
              code: "unauthorized",
              message: "token expired"
            }))
            return yield* closeWith(CloseCode.policy, "token expired")
          }
          if (now - lastFrameAt >= idleTimeout) return yield* closeWith(CloseCode.goingAway, "idle")
          if (now >= nextHeartbeat) {
            yield* session.heartbeatPush
            nextHeartbeat = now + heartbeatEvery
          }
          yield* Effect.sleep(Math.max(0, Math.min(nextHeartbeat, expiresAt, lastFrameAt + idleTimeout) - now))
        }
      }).pipe(Effect.forkScoped)
      yield* Deferred.await(closed)
    }))

  /**
   * The route handler of the socket path. It takes the upgrade over from the HTTP server and runs the socket until
   * it closes (the HTTP server then interrupts it); a refused upgrade is an ordinary HTTP response.
   */
  return Effect.gen(function*() {
    const request = NodeHttpServerRequest.toIncomingMessage(yield* HttpServerRequest.HttpServerRequest)
    if ((request.headers.upgrade ?? "").toLowerCase() !== "websocket") {
      return HttpServerResponse.text("expected a WebSocket upgrade\n", { status: 426 })
    }
    const token = upgradeToken(request)
    if (Option.isNone(token)) return HttpServerResponse.text("unauthorized: no token\n", { status: 401 })
    const principal = yield* Effect.either(verifier.verify(token.value))
    if (Either.isLeft(principal)) {
      return HttpServerResponse.text(`unauthorized: ${principal.left.message}\n`, { status: 401 })
    }
    // A WebSocket client sends nothing before the 101 answer, so nothing was read past the request head.
    const ws = yield* Effect.async<WebSocket>((resume) => {
      wss.handleUpgrade(request, request.socket, Buffer.alloc(0), (ws) => resume(Effect.succeed(ws)))
    })
    yield* connection(ws, principal.right).pipe(
      Effect.catchAllCause((cause) => Effect.logWarning("socket ended with a fault", cause))
    )
    return HttpServerResponse.empty()
  })
})
