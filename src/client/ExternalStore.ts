/**
 * A value the app can read and be told about, in the shape React's `useSyncExternalStore` takes: `getSnapshot` returns
 * the same object until the value changes, and `subscribe` returns its own unsubscribe.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export interface ExternalStore<A> {
  readonly getSnapshot: () => A
  readonly subscribe: (listener: () => void) => () => void
}

/**
 * A settable external store: `set` replaces the value and tells every listener.
 *
 * @since 0.1.0
 */
export interface Cell<A> extends ExternalStore<A> {
  readonly set: (value: A) => void
}

/**
 * Tells every listener; one that throws is reported and does not keep the others from being told.
 *
 * @since 0.1.0
 */
export const notifyAll = (listeners: Iterable<() => void>): void => {
  for (const listener of [...listeners]) {
    try {
      listener()
    } catch (error) {
      // A listener belongs to the app: its failure must not stop the client, and must not go unseen.
      reportError(error)
    }
  }
}

// The platform's report of an uncaught error (the window's `error` event; Node's uncaught exception), without
// unwinding the client's own stack.
const reportError = (error: unknown): void => {
  const report = (globalThis as { reportError?: (error: unknown) => void }).reportError
  if (typeof report === "function") report(error)
  else {
    queueMicrotask(() => {
      throw error
    })
  }
}

/**
 * @since 0.1.0
 */
export const makeCell = <A>(initial: A): Cell<A> => {
  let value = initial
  const listeners = new Set<() => void>()
  return {
    getSnapshot: () => value,
    subscribe: (listener) => {
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
      }
    },
    set: (next) => {
      if (Object.is(next, value)) return
      value = next
      notifyAll(listeners)
    }
  }
}
