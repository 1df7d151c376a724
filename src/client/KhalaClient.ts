/**
 * The client as an Effect service: `KhalaClient.layer(options)` runs the connection in the layer's scope, and each
 * followed topic lives in the scope of whoever subscribed, with its changes as a `Stream` that holds the client back
 * when the consumer is slow (bounded, never dropping).
 *
 * ```ts
 * const program = Effect.gen(function*() {
 *   const client = yield* KhalaClient
 *   const runs = yield* client.subscribe("runtime.run_summaries")
 *   yield* runs.changes.pipe(Stream.runForEach((changes) => Console.log(changes.upserted.length, "changed")))
 * }).pipe(Effect.scoped, Effect.provide(KhalaClient.layer({ url, token })))
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Document, DocumentFilter, TopicChanges } from "./Document.js"
import type { ConnectionState, Subscription } from "./Engine.js"
import { start } from "./Engine.js"
import { ClientClosed, FilterConflict, type ForbiddenTopic } from "./Errors.js"
import type { ExternalStore } from "./ExternalStore.js"
import type { ClientOptions } from "./Settings.js"
import type { TopicStatus } from "./TopicCache.js"

/**
 * A followed topic, for Effect programs.
 *
 * @since 0.1.0
 */
export interface TopicStream<T = unknown> {
  readonly topic: string
  /** The cached documents now. */
  readonly documents: Effect.Effect<ReadonlyMap<string, Document<T>>>
  /** One cached document. */
  readonly get: (docKey: string) => Effect.Effect<Option.Option<Document<T>>>
  /** Each persisted step's changes from now on; a slow consumer holds the client back. */
  readonly changes: Stream.Stream<TopicChanges<T>>
  /** The documents now, then after each change; a slow consumer sees the latest, skipping states in between. */
  readonly snapshots: Stream.Stream<ReadonlyMap<string, Document<T>>>
  readonly status: Stream.Stream<TopicStatus>
  /** Succeeds once the topic is synced on the current connection. */
  readonly synced: Effect.Effect<void, ForbiddenTopic | ClientClosed>
}

/**
 * @since 0.1.0
 */
export interface KhalaClientService {
  /** The connection's state now, then each change (latest first for a slow consumer). */
  readonly state: Stream.Stream<ConnectionState>
  /** Follows a topic for the scope. */
  readonly subscribe: <T = unknown>(
    topic: string,
    options?: { readonly filter?: DocumentFilter }
  ) => Effect.Effect<TopicStream<T>, FilterConflict | ClientClosed, Scope.Scope>
  /** Reconnects now instead of waiting out the backoff. */
  readonly reconnect: Effect.Effect<void>
}

// The current value, then the value after each change; a consumer that falls behind sees only the newest.
const latest = <A>(store: ExternalStore<A>): Stream.Stream<A> =>
  Stream.asyncScoped<A>((emit) =>
    Effect.acquireRelease(
      Effect.sync(() => {
        const off = store.subscribe(() => void emit.single(store.getSnapshot()))
        void emit.single(store.getSnapshot())
        return off
      }),
      (off) => Effect.sync(off)
    ), { bufferSize: 1, strategy: "sliding" })

const topicStream = <T>(subscription: Subscription<T>): TopicStream<T> => ({
  topic: subscription.topic,
  documents: Effect.sync(subscription.getSnapshot),
  get: (docKey) => Effect.sync(() => Option.fromNullable(subscription.get(docKey))),
  changes: Stream.asyncScoped<TopicChanges<T>>((emit) =>
    Effect.acquireRelease(
      // The promise `emit` returns settles once the change is buffered: the client waits for it (backpressure).
      Effect.sync(() => subscription.onChanges((changes) => emit.single(changes))),
      (off) => Effect.sync(off)
    ), { bufferSize: 16, strategy: "suspend" }),
  snapshots: latest(subscription),
  status: latest(subscription.status),
  synced: subscription.synced
})

/**
 * @since 0.1.0
 */
export class KhalaClient extends Context.Tag("khala/client/KhalaClient")<KhalaClient, KhalaClientService>() {
  /** Starts a client for the scope; closing the scope closes its connection and store. */
  static readonly make = (options: ClientOptions): Effect.Effect<KhalaClientService, never, Scope.Scope> =>
    Effect.map(
      Effect.acquireRelease(Effect.sync(() => start(options)), (engine) => engine.close),
      (engine): KhalaClientService => ({
        state: latest(engine.state),
        subscribe: <T>(topic: string, subscribeOptions?: { readonly filter?: DocumentFilter }) =>
          Effect.map(
            Effect.acquireRelease(
              Effect.try({
                try: () => engine.subscribe<T>(topic, subscribeOptions),
                catch: (error) => error instanceof FilterConflict ? error : new ClientClosed()
              }),
              (subscription) => Effect.sync(subscription.close)
            ),
            topicStream
          ),
        reconnect: Effect.sync(engine.reconnect)
      })
    )

  /** The client as a layer: connected while the layer is in use. */
  static readonly layer = (options: ClientOptions): Layer.Layer<KhalaClient> =>
    Layer.scoped(KhalaClient, KhalaClient.make(options))
}
