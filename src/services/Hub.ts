import type { Effect, Stream } from "effect"
import { Context } from "effect"
import type { JournalRow, StaleCursor } from "./Journal.js"
import type { StorageError } from "./StorageError.js"
import type { UnknownTopic } from "./Topic.js"

/** Rows of one topic for one subscriber, in watermark order, continuing exactly where the previous batch ended. */
export interface Batch {
  readonly topic: string
  /** The rows this subscriber may see (its org's), in watermark order. */
  readonly updates: ReadonlyArray<JournalRow>
  /**
   * The watermark through which the subscriber is now caught up: the last update's, or beyond it when rows of
   * other orgs were skipped (I7). A client that persists it resumes without a gap.
   */
  readonly through: number
  /** The topic's head as far as this process knows: at least `through`. */
  readonly head: number
  /** False while replaying from the journal; true on the last replay batch (even empty) and every live batch. */
  readonly replayComplete: boolean
}

export interface SubscribeOptions {
  readonly topic: string
  /** Resume point: the subscriber receives exactly the rows with a higher watermark (I4). */
  readonly after: number
  /** Only rows of this org (I7); every org's when absent (trusted, in-process callers such as `khala tail`). */
  readonly orgId?: string | undefined
  /** Most rows per replay read. */
  readonly batchSize: number
  /**
   * The live fast path: the topic's tail calls this synchronously with each live batch as soon as it has read it,
   * instead of the stream emitting it, so one read reaches every subscriber without a fiber switch each. It answers
   * false when the subscriber cannot take the batch now (its socket is over its send limit); the subscription then
   * catches up from the journal on the stream, which waits for it, and goes live again once caught up. It must not
   * block: it runs in the tail, between the other subscribers.
   */
  readonly onLive?: ((batch: Batch) => boolean) | undefined
}

/**
 * The subscription hub. One tail per topic per process reads each appended row once and fans it out, whatever the
 * number of subscribers; a subscription replays from the journal, then goes live, never with a gap or a duplicate,
 * and falls back to the journal when it lags behind its buffer, so a slow subscriber delays nobody.
 */
export class Hub extends Context.Tag("khala/Hub")<Hub, {
  readonly subscribe: (options: SubscribeOptions) => Stream.Stream<Batch, StaleCursor | UnknownTopic | StorageError>
  /**
   * The same subscription as a loop that runs `onBatch` on each batch in turn (waiting for it) and ends only by
   * failing or being interrupted; lighter than a stream for subscriptions held as long as a socket.
   */
  readonly follow: (
    options: SubscribeOptions,
    onBatch: (batch: Batch) => Effect.Effect<void>
  ) => Effect.Effect<never, StaleCursor | UnknownTopic | StorageError>
}>() {}
