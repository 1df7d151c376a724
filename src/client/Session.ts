/**
 * One connection's life (protocol.md §5): join `sync:v1`, subscribe every followed topic from its cursor (hydrating first the
 * ones that need it, protocol.md §6), then apply what arrives in order, persist it, and tell the app, until the connection
 * ends. The session fails with the reason it ended; the client's reconnect loop decides what comes next.
 *
 * All cache state is touched by one fiber, the processing loop: socket frames and the results of the session's
 * other fibers (hydrations) reach it through one mailbox, in order.
 *
 * @since 0.1.0
 */
import * as Micro from "effect/Micro"
import * as Connections from "./Connection.js"
import type { Document } from "./Document.js"
import { filterJson } from "./Document.js"
import type { TokenUnavailable } from "./Errors.js"
import { ConnectionLost, ForbiddenTopic, StoreFailed, Unauthorized, UpgradeRequired } from "./Errors.js"
import type { HttpOptions, Snapshot } from "./Hydration.js"
import { batchGet, hydrateTopic, HydrationFailed } from "./Hydration.js"
import type { Mailbox } from "./Mailbox.js"
import * as Mailboxes from "./Mailbox.js"
import type { SessionSettings, TopicRegistry } from "./Settings.js"
import type { TopicCache } from "./TopicCache.js"
import type { ErrorInfo, InboundFrame, Reply } from "./Wire.js"
import * as Wire from "./Wire.js"

/**
 * Why a session ended.
 *
 * @since 0.1.0
 */
export type SessionError = ConnectionLost | Unauthorized | UpgradeRequired | TokenUnavailable

/** Messages of the processing loop. */
type Message =
  | { readonly _tag: "Frame"; readonly frame: InboundFrame }
  | { readonly _tag: "TopicsChanged" }
  | { readonly _tag: "Hydrated"; readonly cache: TopicCache; readonly snapshot: Snapshot }
  | { readonly _tag: "Forbidden"; readonly cache: TopicCache }
  | { readonly _tag: "Failed"; readonly error: SessionError }

/** Where a followed topic stands on this connection. */
type TopicPhase = "hydrating" | "subscribing" | "subscribed" | "forbidden"

/** Most topics of one `sync:subscribe` (the server's limit). */
const maxTopicsPerSubscribe = 64

/**
 * Runs one session until it fails; it succeeds only when it ends to take a fresh token (the reconnect loop then
 * reconnects at once).
 *
 * @since 0.1.0
 */
export const run = (
  settings: SessionSettings,
  registry: TopicRegistry,
  onJoined: () => void
): Micro.Micro<void, SessionError> =>
  Micro.scoped(Micro.gen(function*() {
    let token = yield* settings.token
    const expiring = expiryWarning()
    const mailbox: Mailbox<Message> = Mailboxes.make(settings.mailboxCapacity)
    const connection = yield* Connections.connect({
      url: settings.url,
      token,
      webSocket: settings.webSocket,
      onFrame: (frame) => mailbox.offer({ _tag: "Frame", frame })
    })

    let lastRef = 0
    const nextRef = () => String(++lastRef)
    const joinRef = nextRef()
    const send = (ref: string, topic: string, event: string, payload: unknown) =>
      connection.send(Wire.encodeFrame(topic === Wire.Phoenix.topic ? null : joinRef, ref, topic, event, payload))
    const failed = (error: SessionError) => Micro.fail(error)

    // The join, before anything else: its reply is the first channel frame.
    send(joinRef, Wire.channelTopic, Wire.Phoenix.join, settings.joinPayload)
    const joinReply = yield* Micro.raceFirst(
      awaitJoinReply(mailbox, joinRef),
      Micro.raceFirst(connection.closed, timeout(settings.requestTimeoutMs, "no reply to the join"))
    )
    if (joinReply.status === "error") return yield* failed(refusal(Wire.decodeError(joinReply.response)))
    onJoined()

    const http: HttpOptions = {
      baseUrl: settings.httpUrl,
      token: Micro.sync(() => token),
      fetch: settings.fetch,
      pageSize: settings.hydrationPageSize
    }
    const phases = new Map<TopicCache, TopicPhase>()
    const pending = new Map<string, (reply: Reply) => void>()
    registry.onChange = () => mailbox.force({ _tag: "TopicsChanged" })
    yield* Micro.addFinalizer(() =>
      Micro.sync(() => {
        registry.onChange = undefined
        for (const cache of phases.keys()) cache.setStatus({ synced: false })
      })
    )

    // A topic stale again right after its hydration (a server that keeps refusing the snapshot watermark) would loop
    // between the two without pause: past a few rounds, the session ends and the reconnect loop backs off.
    const hydrations = new Map<TopicCache, number>()
    const maxHydrationsPerTopic = 3
    const hydrate = (cache: TopicCache, retentionFloor: number) =>
      Micro.gen(function*() {
        const round = (hydrations.get(cache) ?? 0) + 1
        hydrations.set(cache, round)
        if (round > maxHydrationsPerTopic) {
          return mailbox.force({
            _tag: "Failed",
            error: new ConnectionLost({ reason: `${cache.topic} is still stale after ${round - 1} hydrations` })
          })
        }
        phases.set(cache, "hydrating")
        cache.setStatus({ synced: false })
        yield* hydrateTopic(http, cache.topic, cache.filter, retentionFloor).pipe(
          Micro.map((snapshot): Message => ({ _tag: "Hydrated", cache, snapshot })),
          Micro.catchAll((error): Micro.Micro<Message> =>
            Micro.succeed(
              error.code === "forbidden_topic"
                ? { _tag: "Forbidden", cache }
                : { _tag: "Failed", error: hydrationFailure(error) }
            )
          ),
          Micro.flatMap((message) => Micro.sync(() => mailbox.force(message))),
          Micro.forkScoped
        )
      })

    const forbid = (cache: TopicCache) => {
      phases.set(cache, "forbidden")
      cache.setStatus({ synced: false, error: new ForbiddenTopic({ topic: cache.topic }) })
    }

    /** Subscribes every followed topic that is not yet, and unsubscribes those no longer followed. */
    const reconcile = Micro.gen(function*() {
      const gone = [...phases.keys()].filter((cache) => registry.topics.get(cache.topic) !== cache)
      for (const cache of gone) phases.delete(cache)
      const stillFollowed = new Set([...registry.topics.keys()])
      const leaving = gone.map((cache) => cache.topic).filter((topic) => !stillFollowed.has(topic))
      if (leaving.length > 0) send(nextRef(), Wire.channelTopic, Wire.SyncEvent.unsubscribe, { topics: leaving })

      const ready: Array<TopicCache> = []
      for (const cache of registry.topics.values()) {
        if (!cache.loaded || phases.has(cache)) continue
        if (cache.isFresh && settings.initialLoad === "hydrate") yield* hydrate(cache, 0)
        else ready.push(cache)
      }
      for (let i = 0; i < ready.length; i += maxTopicsPerSubscribe) {
        subscribe(ready.slice(i, i + maxTopicsPerSubscribe))
      }
    })

    const subscribe = (caches: ReadonlyArray<TopicCache>) => {
      const ref = nextRef()
      for (const cache of caches) phases.set(cache, "subscribing")
      const filters = Object.fromEntries(
        caches.flatMap((cache) => (cache.filter === undefined ? [] : [[cache.topic, filterJson(cache.filter)]]))
      )
      send(ref, Wire.channelTopic, Wire.SyncEvent.subscribe, {
        topics: caches.map((cache) => cache.topic),
        resume_after: caches.map((cache) => ({
          topic: cache.topic,
          watermark: cache.cursor.watermark,
          ...(cache.cursor.epoch === null ? {} : { epoch: cache.cursor.epoch })
        })),
        ...(Object.keys(filters).length > 0 ? { filters } : {}),
        ...(settings.replayBatchSize === undefined ? {} : { replay_batch_size: settings.replayBatchSize })
      })
      pending.set(ref, (reply) => {
        const stillOurs = caches.filter((cache) => phases.get(cache) === "subscribing")
        if (reply.status === "ok") {
          for (const position of Wire.decodePositions(reply.response["current_watermarks"], reply.response["epochs"])) {
            const cache = stillOurs.find((c) => c.topic === position.topic)
            if (cache !== undefined) cache.advance(position.watermark, position.epoch)
          }
          for (const cache of stillOurs) phases.set(cache, "subscribed")
          return
        }
        // A refused request subscribed none of its topics (I8): the ones not named in the error are sent again.
        for (const cache of stillOurs) phases.delete(cache)
        topicError(Wire.decodeError(reply.response), stillOurs)
      })
    }

    // Topic-level errors; anything else ends the session.
    let sessionError: SessionError | undefined
    const topicError = (error: ErrorInfo, among: Iterable<TopicCache>) => {
      const caches = [...among]
      if (error.code === "stale_cursor") {
        // Below the retention floor, past the head, or another epoch: hydrate, reset the cursor, resubscribe. An
        // error that names no topic concerns all it was about.
        const stale = error.staleTopics.length > 0
          ? error.staleTopics
          : caches.filter((cache) => phases.get(cache) !== "forbidden")
            .map((cache) => ({ topic: cache.topic, retentionFloor: 0 }))
        for (const { retentionFloor, topic } of stale) {
          const cache = caches.find((c) => c.topic === topic)
          if (cache !== undefined && phases.get(cache) !== "hydrating") pendingHydrations.push([cache, retentionFloor])
        }
        return
      }
      if (error.code === "forbidden_topic") {
        for (const topic of error.forbiddenTopics) {
          const cache = caches.find((c) => c.topic === topic)
          if (cache !== undefined) forbid(cache)
        }
        return
      }
      sessionError ??= refusal(error)
    }
    const pendingHydrations: Array<[TopicCache, number]> = []

    const live = (topic: string): TopicCache | undefined => {
      const cache = registry.topics.get(topic)
      if (cache === undefined) return undefined
      const phase = phases.get(cache)
      return phase === "subscribing" || phase === "subscribed" ? cache : undefined
    }

    // One group of messages: applied to the caches, then fetched where rows carry no payload, then persisted, then
    // told to the app. Cursors move only once the documents they account for are in the cache.
    const step = (messages: ReadonlyArray<Message>) =>
      Micro.gen(function*() {
        const advances = new Map<TopicCache, { watermark: number; epoch: string | undefined }>()
        const fetches = new Map<TopicCache, Map<string, number>>()
        const touched = new Set<TopicCache>()
        const advance = (cache: TopicCache, watermark: number, epoch?: string) => {
          const previous = advances.get(cache)
          advances.set(cache, {
            watermark: Math.max(watermark, previous?.watermark ?? 0),
            epoch: epoch ?? previous?.epoch
          })
        }
        let topicsChanged = false

        for (const message of messages) {
          if (message._tag === "Failed") return yield* failed(message.error)
          if (message._tag === "Forbidden") {
            if (phases.get(message.cache) === "hydrating") forbid(message.cache)
            continue
          }
          if (message._tag === "TopicsChanged") {
            topicsChanged = true
            continue
          }
          if (message._tag === "Hydrated") {
            const { cache, snapshot } = message
            if (phases.get(cache) !== "hydrating" || registry.topics.get(cache.topic) !== cache) continue
            cache.reset(snapshot.documents, snapshot.watermark, snapshot.epoch)
            phases.delete(cache)
            touched.add(cache)
            topicsChanged = true
            continue
          }
          const frame = message.frame
          if (frame.topic !== Wire.channelTopic || frame.joinRef !== joinRef) continue
          switch (frame.event) {
            case Wire.Phoenix.reply: {
              const reply = frame.ref === null ? undefined : Wire.decodeReply(frame.payload)
              const handler = frame.ref === null ? undefined : pending.get(frame.ref)
              if (reply === undefined || handler === undefined) break
              pending.delete(frame.ref!)
              handler(reply)
              break
            }
            case Wire.SyncEvent.updateBatch: {
              const batch = Wire.decodeBatch(frame.payload)
              if (batch === undefined) {
                return yield* failed(new ConnectionLost({ reason: "the server sent a malformed update batch" }))
              }
              const mentioned = new Set<TopicCache>()
              for (const update of batch.updates) {
                const cache = live(update.topic)
                if (cache === undefined) continue
                mentioned.add(cache)
                if (update.deleted) cache.applyDelete(update.docKey, update.docVersion)
                else if (update.hydrationRequired) {
                  if (!cache.matches(update.docKey)) continue
                  const wanted = fetches.get(cache) ?? new Map<string, number>()
                  wanted.set(update.docKey, Math.max(update.docVersion, wanted.get(update.docKey) ?? 0))
                  fetches.set(cache, wanted)
                } else {
                  cache.applyDocument(documentOf(update))
                }
                advance(cache, update.watermark)
              }
              for (const position of batch.through) {
                const cache = live(position.topic)
                if (cache === undefined) continue
                mentioned.add(cache)
                advance(cache, position.watermark, position.epoch)
              }
              for (const cache of mentioned) {
                touched.add(cache)
                if (batch.replayComplete) cache.setStatus({ synced: true })
              }
              break
            }
            case Wire.SyncEvent.heartbeat: {
              const watermarks = (frame.payload as { watermarks?: unknown } | null)?.watermarks
              for (const position of Wire.decodePositions(watermarks)) {
                const cache = live(position.topic)
                if (cache !== undefined) advance(cache, position.watermark, position.epoch)
              }
              break
            }
            case Wire.SyncEvent.error: {
              topicError(Wire.decodeError(frame.payload), [...phases.keys()])
              break
            }
            case Wire.SyncEvent.tokenExpiring: {
              const closesIn = (frame.payload as { closes_in_ms?: unknown } | null)?.closes_in_ms
              if (typeof closesIn === "number" && Number.isFinite(closesIn)) expiring.warn(Date.now() + closesIn)
              break
            }
            case Wire.Phoenix.close:
            case Wire.Phoenix.error:
              return yield* failed(new ConnectionLost({ reason: "the server closed the channel" }))
          }
          if (sessionError !== undefined) return yield* failed(sessionError)
        }

        for (const [cache, wanted] of fetches) {
          if (live(cache.topic) !== cache) continue
          const found = yield* Micro.mapError(batchGet(http, cache.topic, [...wanted.keys()]), hydrationFailure)
          for (const [docKey, document] of found) {
            if (document === undefined) cache.drop(docKey)
            else cache.applyDocument(document)
          }
        }
        for (const [cache, position] of advances) {
          cache.advance(position.watermark, position.epoch)
          touched.add(cache)
        }
        yield* persist(settings, [...touched])
        for (const [cache, floor] of pendingHydrations.splice(0)) yield* hydrate(cache, floor)
        if (drained) return true
        if (topicsChanged || messages.some((m) => m._tag === "Frame")) yield* reconcile
        return false
      })

    // Set once the server confirmed that it sends nothing more (see `drain`): the step that saw it ends the session.
    let drained = false
    const processing = Micro.gen(function*() {
      while (!(yield* Micro.flatMap(mailbox.takeAll, step))) {
        // every group is applied, persisted and told before the next is taken
      }
    })

    // Ends the session without losing what is on its way: unsubscribing every topic makes the server stop sending
    // batches before it replies, so everything before the reply is applied and persisted, and nothing is received
    // twice after the reconnect. Past the request timeout the session ends anyway.
    const drain = Micro.gen(function*() {
      const topics = [...phases].filter(([, phase]) => phase === "subscribed").map(([cache]) => cache.topic)
      if (topics.length === 0) return
      const ref = nextRef()
      const confirmed = yield* Micro.async<void>((resume) => {
        pending.set(ref, () => {
          drained = true
          resume(Micro.void)
        })
        send(ref, Wire.channelTopic, Wire.SyncEvent.unsubscribe, { topics })
        return Micro.sync(() => {
          pending.delete(ref)
        })
      }).pipe(Micro.timeoutOption(settings.requestTimeoutMs))
      if (confirmed._tag === "None") return
      // the processing loop ends the session once it has persisted the group holding the reply
      return yield* Micro.never
    })

    const heartbeats = Micro.forever(Micro.gen(function*() {
      yield* Micro.sleep(settings.heartbeatIntervalMs)
      const ref = nextRef()
      send(ref, Wire.Phoenix.topic, Wire.Phoenix.heartbeat, {})
      yield* Micro.raceFirst(
        connection.heartbeatReply(ref),
        timeout(settings.heartbeatTimeoutMs, "no heartbeat reply from the server")
      )
    }))

    // Before the token expires: refreshed on this socket (protocol.md §8 `sync:auth`) when enabled and accepted, else the
    // session ends so that the reconnect loop comes back at once with a fresh token. The token says when it expires;
    // the server's `sync:token_expiring` says when it will close the socket, measured by the server: the sooner of
    // the two counts, so a client whose clock misjudges its token is not cut off.
    const refresh: Micro.Micro<void, SessionError> = Micro.gen(function*() {
      while (true) {
        const claimed = Wire.tokenExpiry(token)
        const expiresAt = expiring.closesAt === undefined
          ? claimed
          : Math.min(claimed ?? Infinity, expiring.closesAt)
        const now = Date.now()
        const lead = expiresAt === undefined
          ? 0
          : Math.min(settings.refreshBeforeExpiryMs, Math.max(0, (expiresAt - now) / 2))
        // A token that looks (nearly) expired already, by this clock, is left to the server: refreshing it now would
        // reconnect without pause if the clock is skewed. The server's expiry close then backs off as usual.
        const due = expiresAt === undefined || expiresAt - lead - now < minRefreshDelayMs
          ? Micro.never
          : Micro.as(sleep(expiresAt - lead - now), true)
        // a warning while waiting reschedules by what it says
        if (!(yield* Micro.raceFirst(due, Micro.as(expiring.next, false)))) continue
        if (settings.tokenRefresh !== "in-band") return yield* drain
        const fresh = yield* settings.token
        const ref = nextRef()
        const reply = yield* Micro.async<Reply>((resume) => {
          pending.set(ref, (reply) => resume(Micro.succeed(reply)))
          send(ref, Wire.channelTopic, Wire.authEvent, { token: fresh })
          return Micro.sync(() => {
            pending.delete(ref)
          })
        }).pipe(Micro.timeoutOption(settings.requestTimeoutMs))
        if (reply._tag === "None" || reply.value.status === "error") return yield* drain
        token = fresh
        // the warning was of the token replaced
        expiring.clear()
      }
    })

    yield* reconcile
    yield* Micro.raceAllFirst([processing, heartbeats, refresh, connection.closed])
  }))

/**
 * The server's warnings that the socket's token expires soon: `closesAt` is when the last one said the socket closes
 * (by this clock, from the server's count of milliseconds), and `next` completes at the next warning.
 */
const expiryWarning = () => {
  let wake: (() => void) | undefined
  const state = {
    closesAt: undefined as number | undefined,
    warn: (closesAt: number) => {
      state.closesAt = closesAt
      wake?.()
    },
    clear: () => {
      state.closesAt = undefined
    },
    next: Micro.async<void>((resume) => {
      wake = () => resume(Micro.void)
      return Micro.sync(() => {
        wake = undefined
      })
    })
  }
  return state
}

/** A refresh is not scheduled sooner than this after a connect. */
const minRefreshDelayMs = 1000

/** Timers take at most 2^31 - 1 ms (about 24.8 days) and fire at once beyond it: longer waits go in steps. */
const maxTimerMs = 2 ** 31 - 1
const sleep = (millis: number): Micro.Micro<void> =>
  millis <= maxTimerMs ? Micro.sleep(millis) : Micro.flatMap(Micro.sleep(maxTimerMs), () => sleep(millis - maxTimerMs))

const timeout = (millis: number, reason: string) =>
  Micro.flatMap(Micro.sleep(millis), () => Micro.fail(new ConnectionLost({ reason })))

// Takes channel frames until the join's reply; nothing else can come first on a fresh socket.
const awaitJoinReply = (mailbox: Mailbox<Message>, joinRef: string): Micro.Micro<Reply, ConnectionLost> =>
  Micro.gen(function*() {
    while (true) {
      for (const message of yield* mailbox.takeAll) {
        if (message._tag !== "Frame") continue
        const { frame } = message
        if (frame.event !== Wire.Phoenix.reply || frame.ref !== joinRef) continue
        const reply = Wire.decodeReply(frame.payload)
        if (reply === undefined) return yield* Micro.fail(new ConnectionLost({ reason: "malformed join reply" }))
        return reply
      }
    }
  })

// What an error the server gave means for the session.
const refusal = (error: ErrorInfo): SessionError => {
  switch (error.code) {
    case "unauthorized":
      return new Unauthorized({ reason: error.reason ?? error.message })
    case "upgrade_required":
      return new UpgradeRequired({ detail: error })
    default:
      return new ConnectionLost({
        reason: `${error.code}: ${error.message}`,
        retryAfterMs: error.retryAfterMs
      })
  }
}

const hydrationFailure = (error: HydrationFailed): SessionError =>
  error.code === "unauthorized"
    ? new Unauthorized({ reason: error.message })
    : new ConnectionLost({ reason: error.message, retryAfterMs: error.retryAfterMs })

const documentOf = (update: Wire.Update): Document => ({
  docKey: update.docKey,
  docVersion: update.docVersion,
  payload: update.payload,
  payloadHash: update.payloadHash,
  watermark: update.watermark
})

/**
 * Persists what changed, then tells the app. A failed commit is reported on the topics' status and its changes stay
 * pending for the next one; the app is told either way, since its view should not wait on storage.
 */
const persist = (settings: SessionSettings, caches: ReadonlyArray<TopicCache>) =>
  Micro.gen(function*() {
    const commits = caches.flatMap((cache) => {
      const commit = cache.pendingCommit()
      return commit === undefined ? [] : [[cache, commit] as const]
    })
    if (commits.length > 0) {
      const result = yield* Micro.exit(Micro.tryPromise({
        try: () => settings.store.commit(commits.map(([, commit]) => commit)),
        catch: (cause) => new StoreFailed({ operation: "commit", cause })
      }))
      for (const [cache] of commits) {
        if (result._tag === "Success") {
          cache.committed()
          if (cache.status.getSnapshot().error instanceof StoreFailed) cache.setStatus({ error: undefined })
        } else if (result.cause._tag === "Fail") cache.setStatus({ error: result.cause.error })
      }
    }
    const waits = caches.flatMap((cache) => cache.notify())
    if (waits.length > 0) yield* Micro.promise(() => Promise.allSettled(waits))
  })

export { HydrationFailed }
