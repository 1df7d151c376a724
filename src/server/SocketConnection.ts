/**
 * One Phoenix socket from its upgrade to its close (SPEC §5, I9): its inbound frames in arrival order, its send
 * path with backpressure, its timer (heartbeat push, idle deadline, token expiry), and its `sync:v1` session. It runs
 * in a scope of its own: closing the socket ends every fiber it started, and ending the scope closes the socket.
 */
import { Clock, Deferred, Duration, Effect, Either, Exit, Queue } from "effect"
import { randomUUID } from "node:crypto"
import { WebSocket } from "ws"
import * as PhoenixFrame from "../protocol/PhoenixFrame.js"
import * as Replies from "../protocol/Replies.js"
import * as SyncChannel from "../protocol/SyncChannel.js"
import type { Catalog } from "../protocol/TopicCatalog.js"
import type { Principal } from "../services/TokenVerifier.js"
import type { ServerSettings } from "./ServerConfig.js"
import { makeSession } from "./SyncSession.js"

/** Close codes; every one but 1000 makes Phoenix clients reconnect and resume (SPEC §5). */
export const CloseCode = {
  goingAway: 1001,
  policy: 1008,
  tryAgainLater: 1013
} as const

/** How long a closing socket may take to answer the close handshake before it is cut off. */
const closeGrace = Duration.seconds(1)
/** The same for a slow consumer, whose close frame is queued behind its unread data. */
const slowConsumerCloseGrace = Duration.seconds(30)

/** Runs the socket until it closes. */
export const run = (options: {
  readonly ws: WebSocket
  readonly principal: Principal
  readonly catalog: Catalog
  readonly settings: ServerSettings
}) =>
  Effect.scoped(Effect.gen(function*() {
    const { catalog, principal, settings: config, ws } = options
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
