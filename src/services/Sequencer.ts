import type { Effect } from "effect"
import { Context } from "effect"
import type { StorageError } from "./StorageError.js"
import type { TopicPosition, TopicRegistration, UnknownTopic } from "./Topic.js"

/**
 * The sequence allocator: one dense, monotonic watermark counter per topic (I2), whose allocations commit in
 * watermark order (I3) because a topic's counter stays locked by the allocating transaction until it ends.
 */
export class Sequencer extends Context.Tag("khala/Sequencer")<Sequencer, {
  /** Makes sure every topic has a sequence; keeps heads and floors of topics that exist. */
  readonly register: (topics: ReadonlyArray<TopicRegistration>) => Effect.Effect<void, StorageError>
  /**
   * Reserves the next `count` watermarks of `topic` in the current transaction and returns the last one. The range
   * is given back if the transaction aborts, and later allocations wait for this one to commit.
   */
  readonly allocate: (topic: string, count: number) => Effect.Effect<number, UnknownTopic | StorageError>
  /** Committed heads and retention floors of the given topics (unknown topics are left out). */
  readonly positions: (topics: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<TopicPosition>, StorageError>
  /** Every registered topic. */
  readonly topics: Effect.Effect<ReadonlyArray<TopicRegistration>, StorageError>
}>() {}
