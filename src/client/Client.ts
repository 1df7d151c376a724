/**
 * The client for apps that do not use Effect: the same client, with Promises where the core has `Micro` effects.
 *
 * ```ts
 * const client = createClient({ url: "https://sync.example.com", token: () => fetchToken(), store: indexedDbStore() })
 * const runs = client.subscribe("runtime.run_summaries")
 * const unsubscribe = runs.subscribe(() => render([...runs.getSnapshot().values()]))
 * ```
 *
 * @since 0.1.0
 */
import * as Micro from "effect/Micro"
import type { DocumentFilter } from "./Document.js"
import type { ConnectionState, Subscription } from "./Engine.js"
import { start } from "./Engine.js"
import { ClientClosed } from "./Errors.js"
import type { ExternalStore } from "./ExternalStore.js"
import type { ClientOptions } from "./Settings.js"

/**
 * A followed topic (see `Subscription`), with `synced` as a Promise.
 *
 * @since 0.1.0
 */
export interface TopicSubscription<T = unknown> extends Omit<Subscription<T>, "synced"> {
  /** Resolves once the topic is synced on the current connection; rejects with `ForbiddenTopic` or `ClientClosed`. */
  readonly synced: () => Promise<void>
}

/**
 * @since 0.1.0
 */
export interface Client {
  /** The connection's state: `connecting | live | offline | needs-auth | closed`. */
  readonly state: ExternalStore<ConnectionState>
  /** Follows a topic, optionally narrowed by a filter. */
  readonly subscribe: <T = unknown>(
    topic: string,
    options?: { readonly filter?: DocumentFilter }
  ) => TopicSubscription<T>
  /** Reconnects now instead of waiting out the backoff. */
  readonly reconnect: () => void
  /** Closes the connection and the store. */
  readonly close: () => Promise<void>
}

// Rejects with the error itself (a `ForbiddenTopic`, say), not the `MicroCause` around it.
const runPromise = <A, E>(effect: Micro.Micro<A, E>): Promise<A> =>
  Micro.runPromiseExit(effect).then((exit) => {
    if (exit._tag === "Success") return exit.value
    const cause = exit.cause
    throw cause._tag === "Fail" ? cause.error : cause._tag === "Die" ? cause.defect : new ClientClosed()
  })

/**
 * Creates a client; it connects at once.
 *
 * @since 0.1.0
 */
export const createClient = (options: ClientOptions): Client => {
  const engine = start(options)
  return {
    state: engine.state,
    subscribe: <T>(topic: string, subscribeOptions?: { readonly filter?: DocumentFilter }) => {
      const subscription = engine.subscribe<T>(topic, subscribeOptions)
      return { ...subscription, synced: () => runPromise(subscription.synced) }
    },
    reconnect: engine.reconnect,
    close: () => runPromise(engine.close)
  }
}
