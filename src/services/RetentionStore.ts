import type { Effect, Option } from "effect"
import { Context } from "effect"
import type { StorageError } from "./StorageError.js"

/** What scheduled retention needs from storage besides the journal's `prune`. */
export class RetentionStore extends Context.Tag("khala/RetentionStore")<RetentionStore, {
  /**
   * Runs `effect` if no other process runs one at the same time (a lock the database releases when this process's
   * connection ends), and answers none without running it otherwise: one node prunes at a time.
   */
  readonly exclusive: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<Option.Option<A>, E | StorageError, R>
  /**
   * The watermark of the newest row of `topic` appended before `before`, if any, and no higher than any outbox
   * cursor of the topic: what retention may prune through.
   */
  readonly watermarkBefore: (topic: string, before: Date) => Effect.Effect<Option.Option<number>, StorageError>
}>() {}
