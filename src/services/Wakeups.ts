import type { Effect, Scope } from "effect"
import { Context } from "effect"

/** "Topic T advanced to at least W": a hint, never data (design.md §4, signalling). */
export interface TopicHead {
  readonly topic: string
  readonly head: number
}

/** One watcher's hints for a topic. */
export interface WatchedTopic {
  /**
   * Waits until a head above `watermark` has been hinted since the last wait ended, and takes the hints: each hint
   * wakes the watcher at most once, so a hint above the real head (any database role can NOTIFY; a restored
   * database) costs one read, not a read every few milliseconds for ever.
   */
  readonly beyond: (watermark: number) => Effect.Effect<void>
}

/**
 * Wake-ups for the hub's tails. A lost, late or repeated hint costs latency, never data: a tail always reads the
 * journal by watermark. Three sources feed it: this process's own commits (at once), the coalesced `NOTIFY` other
 * processes send after their commits, and a poll of the watched topics' heads, which alone guarantees delivery and
 * is what sees publishes inside a caller's transaction or from plain SQL.
 */
export class Wakeups extends Context.Tag("khala/Wakeups")<Wakeups, {
  /** This process committed appends: wake its tails now and other processes soon (never inside a transaction). */
  readonly committed: (heads: ReadonlyArray<TopicHead>) => Effect.Effect<void>
  /** Watches a topic for the scope: its head is polled while anyone watches it. */
  readonly watch: (topic: string) => Effect.Effect<WatchedTopic, never, Scope.Scope>
}>() {}
