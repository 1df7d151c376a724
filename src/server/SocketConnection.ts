/**
 * One Phoenix socket from its upgrade to its close (protocol.md §5, I9): its inbound frames, judged as they arrive and then
 * handled in arrival order; its send path with backpressure; its timer (heartbeat push, idle deadline, token
 * expiry); and its `sync:v1` session. It runs in a scope of its own: closing the socket ends every fiber it started,
 * and ending the scope closes the socket.
 */
import { Cause, Clock, Deferred, Duration, Effect, Either, Exit, Option, Queue } from "effect"
import { randomUUID } from "node:crypto"
import type { Duplex } from "node:stream"
import type { RawData } from "ws"
import { WebSocket } from "ws"
import * as PhoenixFrame from "../protocol/PhoenixFrame.js"
import * as Replies from "../protocol/Replies.js"
import type { ErrorPayload } from "../protocol/Replies.js"
import * as SyncChannel from "../protocol/SyncChannel.js"
import type { Catalog } from "../protocol/TopicCatalog.js"
import * as Metrics from "../services/Metrics.js"
import type { Principal, Unauthorized } from "../services/TokenVerifier.js"
import type { Compatibility } from "./Compatibility.js"
import * as InboundFrame from "./InboundFrame.js"
import * as Outbound from "./Outbound.js"
import * as RateLimit from "./RateLimit.js"
import type { ServerSettings } from "./ServerConfig.js"
import { makeSession } from "./SyncSession.js"
import * as TokenRefresh from "./TokenRefresh.js"

/** Close codes; every one but 1000 makes Phoenix clients reconnect and resume (protocol.md §5). */
export const CloseCode = {
  goingAway: 1001,
  /** Binary frames: the JSON transport is the only one spoken (protocol.md §5). */
  unsupportedData: 1003,
  policy: 1008,
  /** A fault in the server's handling of this socket; the client reconnects with backoff. */
  internalError: 1011,
  tryAgainLater: 1013
} as const

/** How long a closing socket may take to answer the close handshake before it is cut off. */
const closeGrace = Duration.seconds(1)
/**
 * The same for a slow consumer, whose close frame is queued behind its unread data: long enough for a client that
 * reads again to get it and its code, short enough that a stalled socket's buffers are soon released.
 */
const slowConsumerCloseGrace = Duration.seconds(5)

/**
 * Frames a socket may have waiting to be handled. Reading stops at half of it (or at `inboundBufferBytes`); what
 * the socket had already read then still arrives, and a client that sends more than this in one burst is cut off.
 */
const maxQueuedFrames = 1024

const asBuffer = (data: RawData): Buffer =>
  Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)

/** Runs the socket until it closes. */
export const run = (options: {
  readonly ws: WebSocket
  /** The connection under the WebSocket. */
  readonly connection: Duplex
  readonly principal: Principal
  readonly catalog: Catalog
  readonly settings: ServerSettings
  /** Verifies `sync:auth` tokens (protocol.md §5.7). */
  readonly verify: (token: string) => Effect.Effect<Principal, Unauthorized>
  readonly compatibility: Compatibility
  /** The principal's subscribe rate on this server (`Admission`). */
  readonly subscribeRate: (cost: number, now: number) => number
  /**
   * Completes when a revocation names the principal's token or subject (protocol.md §5.7); the socket is then closed.
   * A token replaced in band is watched in its place.
   */
  readonly awaitRevoked?: ((principal: Principal) => Effect.Effect<void>) | undefined
}) =>
  Effect.scoped(Effect.gen(function*() {
    const { catalog, principal, settings: config, ws } = options
    const inbound = yield* Queue.bounded<Buffer>(maxQueuedFrames)
    const closed = yield* Deferred.make<void>()
    let queuedBytes = 0
    let queuedFrames = 0
    let lastFrameAt = yield* Clock.currentTimeMillis
    const bucket = RateLimit.make(config.framesPerSecond, lastFrameAt)

    // Close with a code of our choosing; a peer that does not answer the close handshake (it stopped reading) is
    // cut off after a short grace, so neither a shutdown nor the HTTP server's close waits on it.
    const closeNow = (code: number, reason: string, grace: Duration.Duration = closeGrace) => {
      if (ws.readyState === WebSocket.CLOSED) return
      // a socket already closing (a slow consumer) still gets this, possibly shorter, cut-off
      if (ws.readyState !== WebSocket.CLOSING) ws.close(code, reason)
      const cutOff = setTimeout(() => ws.terminate(), Duration.toMillis(grace))
      cutOff.unref()
      ws.once("close", () => clearTimeout(cutOff))
    }
    const closeWith = (code: number, reason: string, grace?: Duration.Duration) =>
      Effect.sync(() => closeNow(code, reason, grace))

    const { awaitRoom, offer, overLimit, send } = yield* Outbound.make({
      ws,
      connection: options.connection,
      settings: config,
      closeSlowConsumer: Effect.zipRight(
        Metrics.increment(Metrics.slowConsumerCloses).pipe(
          Effect.zipRight(Effect.logWarning("closing a slow consumer: its send buffer stayed full"))
        ),
        closeWith(CloseCode.tryAgainLater, "slow consumer", slowConsumerCloseGrace)
      )
    })

    /**
     * Answers a frame that is refused before it is queued, from its head alone. The answer may overtake replies to
     * frames still queued (clients match replies by ref); a frame without a readable head cannot be addressed and is
     * dropped, and a client that does not read its answers gets no more of them.
     */
    const refuse = (frame: Buffer, error: ErrorPayload) => {
      Metrics.add(Metrics.refusals, 1, Metrics.reasonLabel(error.code))
      const head = InboundFrame.frameHead(frame)
      if (Option.isNone(head) || ws.readyState !== WebSocket.OPEN || overLimit()) return
      const { joinRef, ref, topic } = head.value
      ws.send(PhoenixFrame.encodeFrame(PhoenixFrame.reply(joinRef, ref, topic, "error", error)))
    }

    // Size and rate are judged here, as each frame arrives and before anything is parsed or queued: a socket holds
    // at most `inboundBufferBytes` of accepted frames, and a flood costs the server a look at each frame's head.
    const onMessage = (data: RawData, isBinary: boolean) => {
      if (isBinary) {
        // not activity: a client sending only binary frames must not stay open past its idle timeout
        Metrics.add(Metrics.refusals, 1, Metrics.reasonLabel("binary_frame"))
        return closeNow(CloseCode.unsupportedData, "binary frames are not supported")
      }
      const frame = asBuffer(data)
      const now = Date.now()
      lastFrameAt = now
      if (frame.length > config.maxFrameBytes) {
        return refuse(
          frame,
          Replies.errorPayload({
            code: "payload_too_large",
            message: `frames are limited to ${config.maxFrameBytes} bytes`
          })
        )
      }
      const retryAfterMs = bucket.take(1, now)
      if (retryAfterMs > 0) {
        return refuse(
          frame,
          Replies.errorPayload({
            code: "rate_limited",
            message: `at most ${config.framesPerSecond} frames per second`,
            retryAfterMs
          })
        )
      }
      if (!Queue.unsafeOffer(inbound, frame)) {
        Metrics.add(Metrics.refusals, 1, Metrics.reasonLabel("too_many_frames"))
        return closeNow(CloseCode.policy, "too many frames")
      }
      queuedBytes += frame.length
      queuedFrames++
      // backpressure on the client: stop reading until the frames already accepted are handled
      if (queuedBytes > config.inboundBufferBytes || queuedFrames * 2 > maxQueuedFrames) ws.pause()
    }
    ws.on("message", onMessage)
    ws.on("close", () => Deferred.unsafeDone(closed, Exit.void))
    ws.on("error", () => ws.terminate())
    yield* Effect.addFinalizer(() =>
      Effect.zipRight(Effect.sync(() => ws.off("message", onMessage)), closeWith(CloseCode.goingAway, "server closing"))
    )

    /**
     * A defect in this socket's handling (a bug, or an input no check foresaw) ends this socket alone, visibly: the
     * client is told `internal` and reconnects with backoff, instead of facing a socket that no longer answers.
     */
    const fault = (cause: Cause.Cause<unknown>) =>
      Effect.gen(function*() {
        yield* Effect.logError("closing a socket after a fault in its handling", cause)
        yield* Effect.sync(() => {
          if (ws.readyState !== WebSocket.OPEN) return
          ws.send(PhoenixFrame.encodeFrame(PhoenixFrame.push(
            null,
            SyncChannel.channelTopic,
            SyncChannel.SyncEvent.error,
            Replies.errorPayload({ code: "internal", message: "server fault; reconnect", retryAfterMs: 1000 })
          )))
        })
        yield* closeWith(CloseCode.internalError, "internal error")
      })

    const credentials = yield* TokenRefresh.make(principal)
    const session = yield* makeSession({
      policy: {
        credentials,
        verify: options.verify,
        compatibility: options.compatibility,
        subscribeRate: (cost) => options.subscribeRate(cost, Date.now())
      },
      catalog,
      socket: { send, offer, awaitRoom, fault, close: closeWith },
      // the frame of a request was charged one token as it arrived; a request may cost more (a subscribe)
      rateLimit: (cost) => bucket.take(cost, Date.now()),
      newId: randomUUID
    })

    const receive = (frame: Buffer) =>
      Effect.gen(function*() {
        queuedBytes -= frame.length
        queuedFrames--
        if (ws.isPaused && queuedBytes * 2 <= config.inboundBufferBytes && queuedFrames * 4 <= maxQueuedFrames) {
          ws.resume()
        }
        const text = frame.toString("utf8")
        // No decoder recurses through a hostile frame: its depth is measured first, by a scan of its brackets.
        if (InboundFrame.exceedsDepth(text)) {
          return yield* Effect.sync(() =>
            refuse(
              frame,
              Replies.errorPayload({
                code: "bad_subscription",
                message: `frame nests deeper than ${InboundFrame.maxDepth} levels`
              })
            )
          )
        }
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
        yield* session.handle(decoded.right)
      })

    const untilFault = <A, E>(effect: Effect.Effect<A, E>) =>
      Effect.catchAllCause(effect, (cause) => Cause.isInterruptedOnly(cause) ? Effect.void : fault(cause))

    yield* Queue.take(inbound).pipe(Effect.flatMap(receive), Effect.forever, untilFault, Effect.forkScoped)
    // One timer per socket, waking only when something is due: the periodic heartbeat push, the idle deadline, and
    // the token's expiry, which ends the socket so that the client gets a fresh token and resumes (protocol.md §8),
    // and the warning ahead of it (protocol.md §5.7). A `sync:auth` wakes it: the deadline is that of the new token.
    yield* Effect.gen(function*() {
      const heartbeatEvery = Duration.toMillis(config.heartbeatInterval)
      const idleTimeout = Duration.toMillis(config.idleTimeout)
      const warning = Duration.toMillis(config.tokenExpiryWarning)
      let nextHeartbeat = (yield* Clock.currentTimeMillis) + heartbeatEvery
      let warned: Principal | undefined
      while (true) {
        const now = yield* Clock.currentTimeMillis
        const current = credentials.current()
        // the verifier accepts the token until then, clock tolerance included: a token accepted is served (protocol.md §8)
        const expiresAt = current.validUntil.getTime()
        const warnAt = warned === current ? expiresAt : TokenRefresh.warnAt(current, warning)
        if (warned !== current && now >= warnAt) {
          warned = current
          yield* session.channelPush(
            SyncChannel.SyncEvent.tokenExpiring,
            Replies.tokenExpiringPush({ expiresAt: current.expiresAt, closesInMs: expiresAt - now })
          )
        }
        if (now >= expiresAt) {
          yield* session.channelPush(SyncChannel.SyncEvent.error, {
            code: "unauthorized",
            reason: "token_expired",
            message: "token expired"
          })
          return yield* closeWith(CloseCode.policy, "token expired")
        }
        if (now - lastFrameAt >= idleTimeout) return yield* closeWith(CloseCode.goingAway, "idle")
        if (now >= nextHeartbeat) {
          yield* session.heartbeatPush
          nextHeartbeat = now + heartbeatEvery
        }
        const wake = warned === current ? expiresAt : Math.min(warnAt, expiresAt)
        yield* Effect.raceFirst(
          Effect.sleep(Math.max(0, Math.min(nextHeartbeat, wake, lastFrameAt + idleTimeout) - now)),
          credentials.changedFrom(current)
        )
      }
    }).pipe(untilFault, Effect.forkScoped)
    // a revoked token ends its socket as an expired one does, with its own reason (protocol.md §5.7)
    const awaitRevoked = options.awaitRevoked
    if (awaitRevoked !== undefined) {
      yield* Effect.gen(function*() {
        while (true) {
          const watched = credentials.current()
          const revoked = yield* Effect.raceFirst(
            Effect.as(awaitRevoked(watched), true),
            Effect.as(credentials.changedFrom(watched), false)
          )
          if (revoked) return
        }
      }).pipe(
        Effect.zipRight(session.channelPush(SyncChannel.SyncEvent.error, {
          code: "unauthorized",
          reason: "revoked",
          message: "token has been revoked"
        })),
        Effect.zipRight(closeWith(CloseCode.policy, "token revoked")),
        untilFault,
        Effect.forkScoped
      )
    }
    yield* Deferred.await(closed)
  }))
