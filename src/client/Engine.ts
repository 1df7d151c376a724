/**
 * The client: the topics it follows, the state of its connection, and the loop that keeps a session running,
 * reconnecting with full-jitter backoff after every failure (protocol.md §11). Built on `effect/Micro`, Effect's lightweight
 * runtime, so that the browser bundle stays small; a `Micro` is an `Effect`, so Effect programs use it directly (see
 * `KhalaClient`).
 *
 * @since 0.1.0
 */
import * as Micro from "effect/Micro"
import { reconnectDelay } from "./Backoff.js"
import type { Document, DocumentFilter } from "./Document.js"
import { filterKey } from "./Document.js"
import { ClientClosed, ConnectionLost, FilterConflict, ForbiddenTopic, StoreFailed } from "./Errors.js"
import type { ExternalStore } from "./ExternalStore.js"
import { makeCell, notifyAll } from "./ExternalStore.js"
import * as Mailboxes from "./Mailbox.js"
import * as Session from "./Session.js"
import type { ClientOptions, TopicRegistry } from "./Settings.js"
import { resolve } from "./Settings.js"
import type { ChangeListener, TopicStatus } from "./TopicCache.js"
import { TopicCache } from "./TopicCache.js"

/**
 * `connecting`: opening the socket and joining; `live`: joined, topics subscribed; `offline`: waiting to reconnect
 * after a network or server failure; `needs-auth`: waiting to reconnect because no token was given or the server
 * refused it; `closed`: closed by the app, or refused for good (`upgrade_required`).
 *
 * @since 0.1.0
 */
export type ConnectionStatus = "connecting" | "live" | "offline" | "needs-auth" | "closed"

/**
 * @since 0.1.0
 */
export interface ConnectionState {
  readonly status: ConnectionStatus
  /** Why the last connection ended, while it matters (not in `live`). */
  readonly error: Error | undefined
  /** When the next attempt starts (`offline`, `needs-auth`), in milliseconds since the epoch. */
  readonly retryAt: number | undefined
  /** Failed attempts since the last healthy connection. */
  readonly attempt: number
}

/**
 * A followed topic: its documents as an external store (`getSnapshot` / `subscribe`, the shape React's
 * `useSyncExternalStore` takes), per-document lookups, its status, and its changes.
 *
 * @since 0.1.0
 */
export interface Subscription<T = unknown> extends ExternalStore<ReadonlyMap<string, Document<T>>> {
  readonly topic: string
  readonly filter: DocumentFilter | undefined
  /** The cached document, if any. */
  readonly get: (docKey: string) => Document<T> | undefined
  readonly status: ExternalStore<TopicStatus>
  /** Tells the listener each persisted step's changes; returns its removal. */
  readonly onChanges: (listener: ChangeListener<T>) => () => void
  /** Succeeds once the topic is synced on the current connection; fails if it cannot be followed or the client closes. */
  readonly synced: Micro.Micro<void, ForbiddenTopic | ClientClosed>
  /** Stops following the topic through this handle; the topic is left once no handle follows it. */
  readonly close: () => void
}

/**
 * @since 0.1.0
 */
export interface Engine {
  readonly state: ExternalStore<ConnectionState>
  /** Follows a topic (throws `FilterConflict` if it is followed with another filter, `ClientClosed` after close). */
  readonly subscribe: <T = unknown>(topic: string, options?: { readonly filter?: DocumentFilter }) => Subscription<T>
  /** Ends the wait before the next attempt, e.g. after the app signed the user in again. */
  readonly reconnect: () => void
  /** Closes the connection and the store. */
  readonly close: Micro.Micro<void>
}

/**
 * Starts a client; it connects at once and keeps connected until closed.
 *
 * @since 0.1.0
 */
export const start = (options: ClientOptions): Engine => {
  const settings = resolve(options)
  const random = options.random ?? Math.random
  const backoff = options.backoff ?? {}
  const stableAfterMs = options.backoff?.stableAfterMs ?? 5000
  const registry: TopicRegistry = { topics: new Map(), onChange: undefined }
  const references = new Map<TopicCache, number>()
  // Bounded by the followed topics: each is queued once, with `force`.
  const loads = Mailboxes.make<TopicCache>(0)
  const state = makeCell<ConnectionState>({ status: "connecting", error: undefined, retryAt: undefined, attempt: 0 })
  const wakers = new Set<() => void>()
  const wake = () => notifyAll(wakers)
  let closed = false

  // Topics are filled from the store in the order they were followed, then handed to the session.
  const loader = Micro.forever(Micro.gen(function*() {
    for (const cache of yield* loads.takeAll) {
      if (registry.topics.get(cache.topic) !== cache) continue
      const stored = yield* Micro.tryPromise({
        try: () => settings.store.load(cache.topic),
        catch: (cause) => new StoreFailed({ operation: "load", cause })
      }).pipe(Micro.catchAll((error) => Micro.sync(() => cache.setStatus({ error }))))
      cache.restore(stored ?? undefined)
      registry.onChange?.()
    }
  }))

  const waitForWake = Micro.async<void>((resume) => {
    const waker = () => resume(Micro.void)
    wakers.add(waker)
    return Micro.sync(() => {
      wakers.delete(waker)
    })
  })

  const reconnecting = Micro.gen(function*() {
    let attempt = 0
    while (true) {
      state.set({ ...state.getSnapshot(), status: "connecting", retryAt: undefined, attempt })
      let joinedAt: number | undefined
      const exit = yield* Micro.exit(Session.run(settings, registry, () => {
        joinedAt = Date.now()
        state.set({ status: "live", error: undefined, retryAt: undefined, attempt })
      }))
      // A connection that stayed up a while was healthy: the next failure starts the backoff over. One that fails
      // right after its join (a topic that cannot recover) keeps backing off.
      if (joinedAt !== undefined && Date.now() - joinedAt >= stableAfterMs) attempt = 0
      if (exit._tag === "Success") continue
      const cause = exit.cause
      if (cause._tag === "Interrupt") return
      if (cause._tag === "Die") {
        notifyAll([() => {
          throw cause.defect
        }])
      }
      const error = cause._tag === "Fail"
        ? cause.error
        : new ConnectionLost({ reason: `defect: ${String(cause.defect)}` })
      if (error._tag === "UpgradeRequired") {
        state.set({ status: "closed", error, retryAt: undefined, attempt })
        return
      }
      const delay = reconnectDelay(attempt, backoff, error._tag === "ConnectionLost" ? error : {}, random)
      attempt++
      const status = error._tag === "ConnectionLost" ? "offline" : "needs-auth"
      state.set({ status, error, retryAt: Date.now() + delay, attempt })
      yield* Micro.raceFirst(Micro.sleep(delay), waitForWake)
    }
  })

  // The browser says the network is back: no reason to wait out the backoff.
  const onlineEvents = Micro.acquireRelease(
    Micro.sync(() => {
      const target = globalThis as { addEventListener?: (type: string, listener: () => void) => void }
      target.addEventListener?.("online", wake)
    }),
    () =>
      Micro.sync(() => {
        const target = globalThis as { removeEventListener?: (type: string, listener: () => void) => void }
        target.removeEventListener?.("online", wake)
      })
  )

  const root = Micro.runFork(Micro.scoped(Micro.gen(function*() {
    yield* onlineEvents
    yield* Micro.forkScoped(loader)
    yield* reconnecting
  })))

  const handle = <T>(cache: TopicCache): Subscription<T> => {
    let released = false
    return {
      topic: cache.topic,
      filter: cache.filter,
      getSnapshot: cache.getSnapshot as () => ReadonlyMap<string, Document<T>>,
      subscribe: cache.subscribe,
      get: (docKey) => cache.get(docKey) as Document<T> | undefined,
      status: cache.status,
      onChanges: (listener) => {
        cache.changeListeners.add(listener as ChangeListener)
        return () => {
          cache.changeListeners.delete(listener as ChangeListener)
        }
      },
      synced: Micro.async<void, ForbiddenTopic | ClientClosed>((resume) => {
        const check = () => {
          const status = cache.status.getSnapshot()
          if (status.error instanceof ForbiddenTopic || status.error instanceof ClientClosed) {
            resume(Micro.fail(status.error))
          } else if (status.synced) resume(Micro.void)
          else return false
          return true
        }
        if (check()) return
        const unsubscribe = cache.status.subscribe(() => {
          if (check()) unsubscribe()
        })
        return Micro.sync(unsubscribe)
      }),
      close: () => {
        if (released) return
        released = true
        const left = (references.get(cache) ?? 1) - 1
        if (left > 0) return void references.set(cache, left)
        references.delete(cache)
        if (registry.topics.get(cache.topic) === cache) registry.topics.delete(cache.topic)
        registry.onChange?.()
      }
    }
  }

  return {
    state,
    subscribe: <T>(topic: string, options?: { readonly filter?: DocumentFilter }) => {
      if (closed) throw new ClientClosed()
      const filter = options?.filter
      const existing = registry.topics.get(topic)
      if (existing !== undefined) {
        if (existing.filterKey !== filterKey(filter)) throw new FilterConflict({ topic })
        references.set(existing, (references.get(existing) ?? 0) + 1)
        return handle<T>(existing)
      }
      const cache = new TopicCache(topic, filter)
      registry.topics.set(topic, cache)
      references.set(cache, 1)
      loads.force(cache)
      return handle<T>(cache)
    },
    reconnect: wake,
    close: Micro.suspend(() => {
      closed = true
      return Micro.fiberInterrupt(root).pipe(
        Micro.andThen(Micro.promise(async () => {
          await settings.store.close?.()
        })),
        Micro.ensuring(Micro.sync(() => {
          for (const cache of registry.topics.values()) cache.setStatus({ synced: false, error: new ClientClosed() })
          state.set({ ...state.getSnapshot(), status: "closed", retryAt: undefined })
        }))
      )
    })
  }
}
