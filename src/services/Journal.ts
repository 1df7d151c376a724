import type { Effect } from "effect"
import { Context, Schema } from "effect"
import type { StorageError } from "./StorageError.js"
import type { UnknownTopic } from "./Topic.js"

/** One row of a topic's journal. */
export interface JournalRow {
  readonly topic: string
  readonly watermark: number
  readonly docKey: string
  readonly docVersion: number
  readonly orgId: string
  /** `undefined` for a pointer-mode row: the client hydrates the document from the read model (I5). */
  readonly payload: unknown
  readonly pointer: boolean
  /** `sha256:<hex>` of the canonical JSON of the document. */
  readonly payloadHash: string
  readonly insertedAt: Date
}

/** Rows after a watermark, read in the same snapshot as the topic's head and retention floor. */
export interface JournalPage {
  readonly rows: ReadonlyArray<JournalRow>
  readonly head: number
  readonly retentionFloor: number
}

/** A resume point below what retention has already pruned: replaying from it would skip rows (I8). */
export class StaleCursor extends Schema.TaggedError<StaleCursor>()("StaleCursor", {
  topic: Schema.String,
  after: Schema.Number,
  retentionFloor: Schema.Number
}) {
  override get message() {
    return `resume watermark ${this.after} of ${this.topic} is below its retention floor ${this.retentionFloor}`
  }
}

/** What a prune removed and where the topic's floor now stands. */
export interface PruneResult {
  readonly topic: string
  readonly deleted: number
  readonly retentionFloor: number
}

/**
 * The per-topic ordered journal, read side. Appends go through the `Publisher` only, so that a journal row and its
 * read-model row are always written together.
 */
export class Journal extends Context.Tag("khala/Journal")<Journal, {
  /**
   * Up to `limit` rows of `topic` with `watermark > after`, in watermark order, with the head and floor of the same
   * snapshot. Fails with `StaleCursor` when `after` is below the retention floor, so a replay is never partial (I8).
   */
  readonly read: (
    topic: string,
    after: number,
    limit: number
  ) => Effect.Effect<JournalPage, UnknownTopic | StaleCursor | StorageError>
  /**
   * Deletes the rows of `topic` with `watermark <= through` (capped at the head) and raises the retention floor to
   * it, in one transaction.
   */
  readonly prune: (topic: string, through: number) => Effect.Effect<PruneResult, UnknownTopic | StorageError>
}>() {}
