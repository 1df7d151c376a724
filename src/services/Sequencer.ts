import type { Effect } from "effect"
import { Context } from "effect"
import type { StorageError } from "./StorageError.js"
import type { TopicPosition, TopicRegistration, UnknownTopic } from "./Topic.js"

/**
 * The topics' sequences: one dense, monotonic watermark counter per topic (I2), advanced only by appends, whose
 * appends commit in watermark order (I3) because a topic's counter stays locked by the appending transaction until it
 * ends.
 */
export class Sequencer extends Context.Tag("khala/Sequencer")<Sequencer, {
  /** Makes sure every topic has a sequence; keeps heads and floors of topics that exist. */
  readonly register: (topics: ReadonlyArray<TopicRegistration>) => Effect.Effect<void, StorageError>
  /** Committed heads, retention floors and epochs of the given topics (unknown topics are left out). */
  readonly positions: (topics: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<TopicPosition>, StorageError>
  /** Every registered topic. */
  readonly topics: Effect.Effect<ReadonlyArray<TopicRegistration>, StorageError>
  /**
   * Resets a topic's journal, as after restoring a backup: its rows go, its retention floor rises to its head (every
   * resume point is stale, I8) and it gets a new epoch, which it returns. Its documents stay.
   */
  readonly resetTopic: (topic: string) => Effect.Effect<string, UnknownTopic | StorageError>
}>() {}
