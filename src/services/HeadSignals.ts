import { Context, Effect, Layer } from "effect"
import type { TopicHead } from "./Wakeups.js"

/**
 * Hints between Khala processes on one database that topics advanced (design.md §4, signalling): sent after this
 * process's own commits, never inside a transaction, and received from the others. A lost, late or repeated hint
 * costs latency, never data, so an implementation may drop hints, and a database without a channel between
 * processes (the embedded one, the memory store) has none: the heads poll alone then delivers everything.
 */
export class HeadSignals extends Context.Tag("khala/HeadSignals")<HeadSignals, {
  /** Tells other processes these heads; outside any caller's transaction. */
  readonly send: (heads: ReadonlyArray<TopicHead>) => Effect.Effect<void>
  /**
   * Receives other processes' hints for as long as it runs: `onHeads` synchronously for each one, `onConnected`
   * after every (re)connection, since hints sent while disconnected are lost.
   */
  readonly receive: (handlers: {
    readonly onHeads: (heads: ReadonlyArray<TopicHead>) => void
    readonly onConnected: Effect.Effect<void>
  }) => Effect.Effect<void>
}>() {
  /** No channel between processes: one process, or polling only. */
  static readonly none: Layer.Layer<HeadSignals> = Layer.succeed(this, {
    send: () => Effect.void,
    receive: () => Effect.void
  })
}
