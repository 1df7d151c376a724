import type { Effect, Option } from "effect"
import { Context } from "effect"
import type { StorageError } from "./StorageError.js"
import type { UnknownTopic } from "./Topic.js"

/** Where a sink stands in one topic: every row up to `watermark` has been delivered to it. */
export interface OutboxCursor {
  readonly sink: string
  readonly topic: string
  readonly watermark: number
}

/**
 * The outbox's persisted cursors (`khala.sync_outbox_cursors`). While a topic has a cursor, retention keeps its rows
 * above the lowest one (outbox.md): a sink that is down never misses rows because they aged out.
 */
export class OutboxStore extends Context.Tag("khala/OutboxStore")<OutboxStore, {
  /**
   * The cursor of `sink` in `topic`, created at the topic's retention floor (the oldest row still retained) when the
   * sink has none yet.
   */
  readonly cursor: (sink: string, topic: string) => Effect.Effect<number, UnknownTopic | StorageError>
  /** Moves the cursor forward to `watermark` (never back): the rows up to it were delivered. */
  readonly advance: (sink: string, topic: string, watermark: number) => Effect.Effect<void, StorageError>
  /** Every cursor, of every sink. */
  readonly cursors: Effect.Effect<ReadonlyArray<OutboxCursor>, StorageError>
  /** Forgets a sink's cursors, so that retention no longer waits for it; answers how many there were. */
  readonly drop: (sink: string) => Effect.Effect<number, StorageError>
  /**
   * Runs `effect` while this process is the only one forwarding for `sink`, and answers none at once when another
   * process is. `effect` is interrupted if this process loses the lock (its connection to the database ended).
   */
  readonly exclusive: <A, E, R>(
    sink: string,
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<Option.Option<A>, E | StorageError, R>
}>() {}
