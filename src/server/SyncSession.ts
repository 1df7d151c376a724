import { Cause, Effect, Either, FiberMap, Option } from "effect"
import * as PhoenixFrame from "../protocol/PhoenixFrame.js"
import * as Replies from "../protocol/Replies.js"
import type { StaleTopic } from "../protocol/Replies.js"
import * as Requests from "../protocol/Requests.js"
import * as SyncChannel from "../protocol/SyncChannel.js"
import type { Catalog } from "../protocol/TopicCatalog.js"
import { wireNameOf } from "../protocol/TopicCatalog.js"
import type { TopicWatermark } from "../protocol/Watermark.js"
import type { Batch, DocFilter } from "../services/Hub.js"
import { Audience, Hub } from "../services/Hub.js"
import * as Metrics from "../services/Metrics.js"
import { Sequencer } from "../services/Sequencer.js"
import type { Principal, Unauthorized } from "../services/TokenVerifier.js"
import * as BatchFrames from "./BatchFrames.js"
import type { Compatibility } from "./Compatibility.js"
import * as SessionMetrics from "./SessionMetrics.js"
import { Subscribers } from "./Subscribers.js"
import type { Credentials } from "./TokenRefresh.js"
import * as TokenRefresh from "./TokenRefresh.js"
import * as TopicAccess from "./TopicAccess.js"

type Frame = PhoenixFrame.Frame
const topic = SyncChannel.channelTopic

/** What a session needs from its socket. */
export interface SessionSocket {
  /** Queues a text frame; waits while the socket's send buffer is over its limit (backpressure). */
  readonly send: (text: string) => Effect.Effect<void>
  /**
   * Queues text frames at once if the socket's send buffer has room, else queues nothing and answers false. The
   * frames are shared with other sockets and must not be changed.
   */
  readonly offer: (frames: ReadonlyArray<Uint8Array>) => boolean
  /**
   * Waits until the socket's send buffer has room: the hub waits for it before each journal read of a subscription,
   * so a consumer that stopped reading holds no page and causes no reads (I9).
   */
  readonly awaitRoom: Effect.Effect<void>
  /** Ends the socket after a defect in its handling, telling the client `internal` (I9: never a deaf socket). */
  readonly fault: (cause: Cause.Cause<unknown>) => Effect.Effect<void>
  /** Closes the socket with a code of protocol.md §2, after the frames already queued. */
  readonly close: (code: number, reason: string) => Effect.Effect<void>
}

/** What a refusal is counted as: its wire code, or Phoenix's `unmatched topic`. */
const refusalReason = (response: unknown): string =>
  typeof response === "object" && response !== null && "code" in response && typeof response.code === "string"
    ? response.code
    : "unmatched_topic"

/** What the server decides for a session beyond its own frames: tokens, the support window, shared limits. */
export interface SessionPolicy {
  /** The socket's token, replaced by `sync:auth` (protocol.md §5.7); the socket's timer keeps its deadline. */
  readonly credentials: Credentials
  /** Verifies a `sync:auth` token. */
  readonly verify: (token: string) => Effect.Effect<Principal, Unauthorized>
  /** The server's support window (protocol.md §5.1). */
  readonly compatibility: Compatibility
  /**
   * Charges topic subscriptions to the principal, all its sockets on this server together (protocol.md §10): 0 when
   * taken, else how many ms until they could be.
   */
  readonly subscribeRate: (cost: number) => number
}

/** The close code of a socket whose token is refused (protocol.md §2). */
const policyClose = 1008

/** One live topic subscription of a socket. */
interface Subscription {
  /** The name the client used, for replies and pushes (protocol.md §4). */
  readonly requestedAs: string
  /** The watermark through which this socket has been sent the topic (what clients persist). */
  through: number
  /** Whether this subscription's end-of-replay batch went out: each subscription sends its own (protocol.md §5). */
  replayEndSent: boolean
}

interface Joined {
  readonly joinRef: string
  readonly subscriptionId: string
  readonly subscriptions: Map<string, Subscription>
}

/**
 * The `sync:v1` channel of one socket (protocol.md §5): join, subscribe, unsubscribe, heartbeats, and a fiber per
 * subscribed topic that forwards the hub's batches. Frames are handled one at a time, in arrival order.
 */
export const makeSession = (options: {
  readonly policy: SessionPolicy
  readonly catalog: Catalog
  readonly socket: SessionSocket
  /**
   * Charges `cost` more tokens of the socket's rate limit for a request that does more than one frame's worth of work
   * (a subscribe starts a replay per topic): 0 when taken, else how many ms until they could be.
   */
  readonly rateLimit: (cost: number) => number
  readonly newId: () => string
}) =>
  Effect.gen(function*() {
    const { catalog, policy, socket } = options
    const { credentials } = policy
    const hub = yield* Hub
    const sequencer = yield* Sequencer
    const subscribers = yield* Subscribers
    let joined: Option.Option<Joined> = Option.none()
    // one fiber per subscribed topic, interrupted with the socket's scope
    const fibers = yield* FiberMap.make<string>()
    const clientMetrics = yield* SessionMetrics.client
    const tracer = yield* Effect.tracer

    const sendFrame = (frame: Frame) => socket.send(PhoenixFrame.encodeFrame(frame))
    const replyOk = (frame: Frame, response: unknown) =>
      sendFrame(PhoenixFrame.reply(frame.joinRef, frame.ref, frame.topic, "ok", response))
    const replyError = (frame: Frame, response: unknown) =>
      Effect.zipRight(
        Effect.sync(() => Metrics.add(Metrics.refusals, 1, Metrics.reasonLabel(refusalReason(response)))),
        sendFrame(PhoenixFrame.reply(frame.joinRef, frame.ref, frame.topic, "error", response))
      )
    const push = (joinRef: string, event: string, payload: unknown) =>
      sendFrame(PhoenixFrame.push(joinRef, topic, event, payload))

    // read at each use: a refreshed token may narrow them (protocol.md §5.7)
    const allowedTopics = () => TopicAccess.allowedTopics(catalog, credentials.current().scopes)

    const watermarks = (state: Joined) =>
      Effect.sync(() =>
        Array.from(
          state.subscriptions.values(),
          (s): TopicWatermark => ({ topic: s.requestedAs, watermark: s.through })
        )
      )

    const stopAll = (state: Joined) =>
      Effect.zipRight(FiberMap.clear(fibers), Effect.sync(() => state.subscriptions.clear()))

    /** The tail's fast path: sends a live batch at once if the socket has room, from frames shared when it can. */
    const offerLive = (state: Joined, subscription: Subscription, batchSize: number) => (batch: Batch): boolean => {
      if (batch.updates.length === 0) {
        subscription.through = batch.through
        return true
      }
      let byKey = BatchFrames.liveFrames.get(batch)
      if (byKey === undefined) {
        byKey = new Map()
        BatchFrames.liveFrames.set(batch, byKey)
      }
      const key = `${state.joinRef}\u0000${subscription.requestedAs}\u0000${batchSize}`
      let frames = byKey.get(key)
      if (frames === undefined) {
        frames = BatchFrames.framesOf(state.joinRef, subscription.requestedAs, batch, batchSize, false).map((frame) =>
          BatchFrames.encoder.encode(frame.text())
        )
        byKey.set(key, frames)
      }
      if (!socket.offer(frames)) return false
      SessionMetrics.liveWritten(batch, tracer)
      // Only once the frames are queued: a heartbeat must never report a watermark ahead of the updates sent before
      // it, or a client persisting it would skip them (protocol.md §5).
      subscription.through = batch.through
      return true
    }

    /** Forwards one topic's batches: replay and catch-up from the subscription's stream, live ones from the tail. */
    const forward = (
      state: Joined,
      wireName: string,
      subscription: Subscription,
      after: number,
      batchSize: number,
      filter: DocFilter | undefined
    ) =>
      hub.follow(
        {
          topic: wireName,
          after,
          // a refreshed token names the same org (TokenRefresh.check): the audience of a running subscription holds
          audience: Audience.org(credentials.current().orgId),
          filter,
          batchSize,
          awaitCapacity: socket.awaitRoom,
          onLive: offerLive(state, subscription, batchSize)
        },
        (batch) =>
          Effect.gen(function*() {
            const replayEnd = batch.replayComplete && !subscription.replayEndSent
            const frames = BatchFrames.framesOf(state.joinRef, subscription.requestedAs, batch, batchSize, replayEnd)
            if (batch.replayComplete) subscription.replayEndSent = true
            if (frames.length === 0) {
              subscription.through = batch.through
              return
            }
            for (const frame of frames) {
              yield* socket.send(frame.text())
              subscription.through = frame.through
            }
          })
      ).pipe(
        Effect.catchTags({
          StaleCursor: (stale) =>
            Effect.zipRight(
              Metrics.increment(Metrics.staleCursors, 1, Metrics.topicAnd(wireName, "reason", "pruned_live")),
              push(
                state.joinRef,
                SyncChannel.SyncEvent.error,
                Replies.errorPayload({
                  code: "stale_cursor",
                  message: stale.message,
                  staleTopics: [{
                    topic: subscription.requestedAs,
                    resumeAfter: stale.after,
                    retentionFloor: stale.retentionFloor
                  }]
                })
              )
            ),
          UnknownTopic: (error) =>
            push(
              state.joinRef,
              SyncChannel.SyncEvent.error,
              Replies.errorPayload({
                code: "forbidden_topic",
                message: error.message,
                forbiddenTopics: [subscription.requestedAs]
              })
            ),
          StorageError: (error) =>
            Effect.zipRight(
              Effect.logWarning(`subscription to ${wireName} failed`, error),
              push(
                state.joinRef,
                SyncChannel.SyncEvent.error,
                Replies.errorPayload({
                  code: "internal",
                  message: `delivery of ${subscription.requestedAs} failed; resubscribe from your watermark`,
                  retryAfterMs: 1000
                })
              )
            )
        }),
        // a defect ends the socket, not just this subscription, which would otherwise stop without a word
        Effect.catchAllDefect((defect) => socket.fault(Cause.die(defect))),
        // A failed subscription ends alone; the client resubscribes from its watermark.
        Effect.ensuring(Effect.sync(() => {
          if (state.subscriptions.get(wireName) === subscription) state.subscriptions.delete(wireName)
        })),
        SessionMetrics.subscription(wireName),
        subscribers.hold(wireName)
      )
    const join = (frame: Frame) =>
      Effect.gen(function*() {
        // Some clients send a join with a null join_ref: its own ref is then the join ref (protocol.md §5).
        const joinRef = frame.joinRef ?? frame.ref ?? options.newId()
        const request = Requests.decodeJoin(frame.payload ?? {})
        if (Either.isLeft(request)) {
          return yield* sendFrame(PhoenixFrame.reply(
            joinRef,
            frame.ref,
            topic,
            "error",
            Replies.errorPayload({ code: "bad_subscription", message: request.left.message })
          ))
        }
        // A client outside the support window is refused before anything changes: an earlier join stays as it was.
        const refused = yield* policy.compatibility.judge(request.right)
        if (Option.isSome(refused)) {
          return yield* sendFrame(PhoenixFrame.reply(joinRef, frame.ref, topic, "error", refused.value))
        }
        if (Option.isSome(joined)) {
          // A second join replaces the first: its subscriptions end and its join_ref is told so.
          yield* stopAll(joined.value)
          yield* sendFrame(PhoenixFrame.close(joined.value.joinRef, topic))
        }
        const state: Joined = {
          joinRef,
          subscriptionId: options.newId(),
          subscriptions: new Map()
        }
        joined = Option.some(state)
        yield* clientMetrics.joined(frame.payload)
        yield* sendFrame(PhoenixFrame.reply(
          joinRef,
          frame.ref,
          topic,
          "ok",
          Replies.joinReply({
            subscriptionId: state.subscriptionId,
            allowedTopics: allowedTopics(),
            currentWatermarks: []
          })
        ))
      })

    const subscribe = (state: Joined, frame: Frame) =>
      Effect.gen(function*() {
        const decoded = Requests.decodeSubscribe(frame.payload)
        if (Either.isLeft(decoded)) {
          return yield* replyError(
            frame,
            Replies.errorPayload({
              code: "bad_subscription",
              message: decoded.left.message,
              requestId: decoded.left.requestId
            })
          )
        }
        const request = decoded.right
        // Each topic starts a replay: a subscribe costs its topics (its frame paid for one as it arrived), so that
        // re-subscribing to many topics in a loop cannot restart that many replays at the frame rate (I9).
        const retryAfterMs = options.rateLimit(request.topics.length - 1)
        if (retryAfterMs > 0) {
          return yield* replyError(
            frame,
            Replies.errorPayload({
              code: "rate_limited",
              message: `a subscribe costs its number of topics in the limit of frames per second`,
              retryAfterMs,
              requestId: request.requestId
            })
          )
        }
        // The principal's own rate, shared by its sockets on this server: many sockets of one client cannot multiply
        // the replays it starts (protocol.md §10).
        const principalRetryMs = policy.subscribeRate(request.topics.length)
        if (principalRetryMs > 0) {
          return yield* replyError(
            frame,
            Replies.errorPayload({
              code: "rate_limited",
              message: "too many topic subscriptions per second for this principal",
              retryAfterMs: principalRetryMs,
              requestId: request.requestId
            })
          )
        }
        const resolved = TopicAccess.resolveSubscribe(request, catalog, credentials.current().scopes)
        if (resolved.forbidden.length > 0) {
          return yield* replyError(
            frame,
            Replies.errorPayload({
              code: "forbidden_topic",
              message: `not allowed: ${resolved.forbidden.join(", ")}`,
              forbiddenTopics: resolved.forbidden,
              requestId: request.requestId
            })
          )
        }
        // A resume point below the retention floor would replay partially: refuse the whole request (I8).
        const positions = yield* sequencer.positions(resolved.topics.map((t) => t.topic.wireName))
        // A resume point past the head (the database was restored, or is another one) would skip the rows that
        // will be numbered up to it: it is as stale as one below the floor.
        // A resume point of another epoch belongs to a journal that was reset since (protocol.md §7).
        let epochChanged = false
        const stale: Array<StaleTopic> = resolved.topics.flatMap((t) => {
          const position = positions.find((p) => p.topic === t.topic.wireName)
          const floor = position?.retentionFloor ?? 0
          const after = Option.getOrElse(t.resumeAfter, () => 0)
          const otherEpoch = Option.isSome(t.resumeEpoch) && t.resumeEpoch.value !== position?.epoch
          if (otherEpoch) epochChanged = true
          const reason = otherEpoch
            ? "epoch_changed"
            : after < floor
            ? "below_floor"
            : after > (position?.head ?? 0)
            ? "past_head"
            : undefined
          if (reason !== undefined) {
            Metrics.add(Metrics.staleCursors, 1, Metrics.topicAnd(t.topic.wireName, "reason", reason))
          }
          return reason !== undefined
            ? [{ topic: t.requestedAs, resumeAfter: after, retentionFloor: floor, epoch: position?.epoch }]
            : []
        })
        if (stale.length > 0) {
          const error = Replies.errorPayload({
            code: "stale_cursor",
            message: epochChanged
              ? "the topic's journal was reset since this resume point: hydrate, reset the watermark and epoch, then " +
                "resubscribe"
              : "resume watermark outside the journal (below its retention floor or past its head): hydrate, " +
                "reset the watermark, then resubscribe",
            staleTopics: stale,
            requestId: request.requestId,
            ...(epochChanged ? { reason: "epoch_changed" } : {})
          })
          yield* replyError(frame, error)
          return yield* push(state.joinRef, SyncChannel.SyncEvent.error, error)
        }
        const started = resolved.topics.map((t) => ({
          wireName: t.topic.wireName,
          after: Option.getOrElse(t.resumeAfter, () => 0),
          epoch: positions.find((p) => p.topic === t.topic.wireName)?.epoch,
          filter: Option.map(t.filter, (filter): DocFilter =>
            "docKeys" in filter
              ? { _tag: "DocKeys", docKeys: new Set(filter.docKeys) }
              : { _tag: "DocKeyPrefix", prefix: filter.docKeyPrefix }),
          subscription: {
            requestedAs: t.requestedAs,
            through: Option.getOrElse(t.resumeAfter, () => 0),
            replayEndSent: false
          }
        }))
        // A topic subscribed again replaces its subscription: the old one has ended, and its last frame is out,
        // before anything of the new one (its reply included) is sent, so what follows the reply is exactly the
        // suffix after the new resume point (I4).
        for (const s of started) yield* FiberMap.remove(fibers, s.wireName)
        // The reply goes out before any replay batch, so it reports the resume points (protocol.md §5).
        yield* replyOk(
          frame,
          Replies.subscribeReply({
            subscriptionId: state.subscriptionId,
            topics: started.map((s) => s.subscription.requestedAs),
            currentWatermarks: started.map((s) => ({
              topic: s.subscription.requestedAs,
              watermark: s.after,
              ...(s.epoch === undefined ? {} : { epoch: s.epoch })
            }))
          })
        )
        yield* Effect.logDebug("subscribed").pipe(
          Effect.annotateLogs("topics", started.map((s) => `${s.wireName}@${s.after}`).join(","))
        )
        for (const s of started) {
          state.subscriptions.set(s.wireName, s.subscription)
          yield* FiberMap.run(
            fibers,
            s.wireName,
            forward(
              state,
              s.wireName,
              s.subscription,
              s.after,
              request.replayBatchSize,
              Option.getOrUndefined(s.filter)
            )
          )
        }
      })

    const unsubscribe = (state: Joined, frame: Frame) =>
      Effect.gen(function*() {
        const decoded = Requests.decodeUnsubscribe(frame.payload)
        if (Either.isLeft(decoded)) {
          return yield* replyError(
            frame,
            Replies.errorPayload({
              code: "bad_subscription",
              message: decoded.left.message
            })
          )
        }
        for (const name of decoded.right.topics) {
          const wireName = wireNameOf(catalog, name)
          state.subscriptions.delete(wireName)
          yield* FiberMap.remove(fibers, wireName)
        }
        yield* replyOk(
          frame,
          Replies.unsubscribeReply({
            subscriptionId: state.subscriptionId,
            topics: Array.from(state.subscriptions.values(), (s) => s.requestedAs)
          })
        )
      })

    /**
     * `sync:auth` (protocol.md §5.7): a token that verifies and names the same principal replaces the socket's; the
     * subscriptions its scopes no longer allow end, each told with a `forbidden_topic` push before the reply. Any
     * other token ends the socket: it is answered `unauthorized` and closed (1008), as an expired one would be.
     */
    const auth = (state: Joined, frame: Frame) =>
      Effect.gen(function*() {
        const decoded = Requests.decodeAuth(frame.payload)
        if (Either.isLeft(decoded)) {
          return yield* replyError(
            frame,
            Replies.errorPayload({ code: "bad_subscription", message: decoded.left.message })
          )
        }
        const next = yield* Effect.either(
          TokenRefresh.verifyRefresh(policy.verify, credentials.current(), decoded.right.token)
        )
        if (Either.isLeft(next)) {
          yield* stopAll(state)
          yield* replyError(
            frame,
            Replies.errorPayload({
              code: "unauthorized",
              message: `token refused: ${next.left.message}`,
              reason: next.left.reason
            })
          )
          return yield* socket.close(policyClose, "token refused")
        }
        yield* credentials.replace(next.right)
        const allowed = new Set(allowedTopics())
        const ended = Array.from(state.subscriptions.entries()).filter(([wireName]) => !allowed.has(wireName))
        for (const [wireName, subscription] of ended) {
          // the subscription's last frame is out once its fiber is gone; nothing of the topic follows the push
          yield* FiberMap.remove(fibers, wireName)
          state.subscriptions.delete(wireName)
          yield* push(
            state.joinRef,
            SyncChannel.SyncEvent.error,
            Replies.errorPayload({
              code: "forbidden_topic",
              message: `the refreshed token does not allow ${subscription.requestedAs}`,
              forbiddenTopics: [subscription.requestedAs],
              reason: "scope_narrowed"
            })
          )
        }
        yield* replyOk(
          frame,
          Replies.authReply({ allowedTopics: Array.from(allowed), expiresAt: next.right.expiresAt })
        )
      })

    const heartbeat = (state: Joined, frame: Frame) =>
      Effect.gen(function*() {
        const current = yield* watermarks(state)
        yield* replyOk(frame, Replies.heartbeatReply({ subscriptionId: state.subscriptionId, watermarks: current }))
        yield* push(state.joinRef, SyncChannel.SyncEvent.heartbeat, Replies.heartbeatPush({ watermarks: current }))
      })

    /** Handles one decoded frame. */
    const handle = (frame: Frame): Effect.Effect<void> =>
      Effect.gen(function*() {
        if (frame.topic === PhoenixFrame.phoenixTopic) {
          if (frame.event === PhoenixFrame.PhoenixEvent.heartbeat) {
            yield* sendFrame(PhoenixFrame.phoenixHeartbeatReply(frame.ref))
          }
          return
        }
        if (frame.topic !== topic) {
          if (frame.event === PhoenixFrame.PhoenixEvent.join) yield* replyError(frame, { reason: "unmatched topic" })
          return
        }
        if (frame.event === PhoenixFrame.PhoenixEvent.join) return yield* join(frame)
        if (Option.isNone(joined)) {
          // Phoenix answers frames for a channel that is not joined this way, and the client rejoins.
          return yield* replyError(frame, { reason: "unmatched topic" })
        }
        const state = joined.value
        // A frame of an earlier join of this socket (stale join_ref) is ignored (protocol.md §5).
        if (frame.joinRef !== state.joinRef) return
        switch (frame.event) {
          case PhoenixFrame.PhoenixEvent.leave: {
            yield* stopAll(state)
            joined = Option.none()
            yield* clientMetrics.left
            yield* replyOk(frame, {})
            return yield* sendFrame(PhoenixFrame.close(state.joinRef, topic))
          }
          case SyncChannel.SyncEvent.subscribe:
            return yield* subscribe(state, frame)
          case SyncChannel.SyncEvent.unsubscribe:
            return yield* unsubscribe(state, frame)
          case SyncChannel.SyncEvent.heartbeat:
            return yield* heartbeat(state, frame)
          case SyncChannel.SyncEvent.auth:
            return yield* auth(state, frame)
          default:
            return yield* replyError(
              frame,
              Replies.errorPayload({
                code: "bad_subscription",
                message: `unknown event ${JSON.stringify(frame.event).slice(0, 80)}`
              })
            )
        }
      }).pipe(
        Effect.catchAll((error) =>
          Effect.zipRight(
            Effect.logWarning("handling a frame failed", error),
            replyError(frame, Replies.errorPayload({ code: "internal", message: "try again", retryAfterMs: 1000 }))
          )
        )
      )

    /** The periodic `sync:heartbeat` push, with the watermarks this socket is caught up through. */
    const heartbeatPush = Effect.suspend(() =>
      Option.match(joined, {
        onNone: () => Effect.void,
        onSome: (state) =>
          Effect.flatMap(
            watermarks(state),
            (current) =>
              push(state.joinRef, SyncChannel.SyncEvent.heartbeat, Replies.heartbeatPush({ watermarks: current }))
          )
      })
    )

    /**
     * A push on the channel outside any request: with the current join's ref when joined (clients that match pushes
     * to their join see it), else with none.
     */
    const channelPush = (event: string, payload: unknown) =>
      Effect.suspend(() =>
        sendFrame(
          PhoenixFrame.push(Option.getOrNull(Option.map(joined, (state) => state.joinRef)), topic, event, payload)
        )
      )

    return { channelPush, handle, heartbeatPush, replyError, sendFrame }
  })
