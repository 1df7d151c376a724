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
  /** The document; `undefined` when the row carries none (`pointer`) or is a delete. */
  readonly payload: unknown
  /**
   * The row carries no payload: the topic or the publish used pointer mode, or the payload is over the read's
   * per-update limit. The client hydrates the document from the read model (I5).
   */
  readonly pointer: boolean
  /** A delete: the document is gone from the read model, which keeps a tombstone at this version (I6). */
  readonly deleted: boolean
  /** `sha256:<hex>` of the canonical JSON of the document; null for a delete. */
  readonly payloadHash: string | null
  readonly insertedAt: Date
  /** The `traceparent` of the publish that appended the row, when it was traced (docs/metrics.md, "Traces"). */
  readonly traceContext?: string | undefined
}

/** Rows after a watermark, read in the same snapshot as the topic's head, retention floor and epoch. */
export interface JournalPage {
  readonly rows: ReadonlyArray<JournalRow>
  /**
   * The watermark through which the read saw the journal: every row up to it is in `rows` or does not exist (a hole
   * left by a deleted row is stepped over). Continue from it; the reader has caught up when it reaches `head`.
   */
  readonly through: number
  readonly head: number
  readonly retentionFloor: number
  readonly epoch: string
}

/** Bounds of one journal read besides its row count. */
export interface ReadOptions {
  /** Payloads over this many bytes are left out (`pointer: true`): clients hydrate them. Default 256 KiB. */
  readonly maxPayloadBytes?: number | undefined
  /** Most payload bytes of the page; a page always holds a row when one follows. Default 4 MiB. */
  readonly maxBytes?: number | undefined
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

/** What the caller of a prune may watch of it. */
export interface PruneOptions {
  /**
   * Runs after each batch of journal rows the prune deletes (it deletes in bounded batches, one statement each), with
   * the rows that batch deleted: a prune of millions of rows can be shown as it goes.
   */
  readonly onBatch?: ((deleted: number) => Effect.Effect<void>) | undefined
}

/**
 * The per-topic ordered journal, read side. Appends go through the `Publisher` only, so that a journal row and its
 * read-model row are always written together.
 */
export class Journal extends Context.Tag("khala/Journal")<Journal, {
  /**
   * Up to `limit` rows of `topic` with `watermark > after`, in watermark order, bounded in bytes, with the head, floor
   * and epoch of the same snapshot. Fails with `StaleCursor` when `after` is below the retention floor, so a replay is
   * never partial (I8).
   */
  readonly read: (
    topic: string,
    after: number,
    limit: number,
    options?: ReadOptions
  ) => Effect.Effect<JournalPage, UnknownTopic | StaleCursor | StorageError>
  /**
   * Deletes the rows of `topic` with `watermark <= through` (capped at the head) and the tombstones they passed, and
   * raises the retention floor to it.
   */
  readonly prune: (
    topic: string,
    through: number,
    options?: PruneOptions
  ) => Effect.Effect<PruneResult, UnknownTopic | StorageError>
}>() {}

/** Default of `ReadOptions.maxBytes`: a page's payload bytes. */
export const defaultReadMaxBytes = 4 * 1024 * 1024

/** One journal row as JSON in the wire's field names (protocol.md §5): what `khala tail` prints and a webhook receives. */
export const rowJson = (row: JournalRow) => ({
  topic: row.topic,
  watermark: row.watermark,
  doc_key: row.docKey,
  doc_version: row.docVersion,
  org_id: row.orgId,
  payload: row.pointer || row.deleted ? null : row.payload,
  payload_hash: row.payloadHash,
  hydration_required: row.pointer,
  deleted: row.deleted,
  inserted_at: row.insertedAt.toISOString()
})
