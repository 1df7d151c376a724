import type { Effect, Stream } from "effect"
import { Context } from "effect"
import type { JournalRow, StaleCursor } from "./Journal.js"
import type { StorageError } from "./StorageError.js"
import type { UnknownTopic } from "./Topic.js"

/** Rows of one topic for one subscriber, in watermark order, continuing exactly where the previous batch ended. */
export interface Batch {
  readonly topic: string
  /** The rows this subscriber may see (its audience's, within its filter), in watermark order. */
  readonly updates: ReadonlyArray<JournalRow>
  /**
   * The watermark through which the subscriber is now caught up: the last update's, or beyond it when rows it may
   * not see were skipped (I7), or the journal has no row there. A client that persists it resumes without a gap.
   */
  readonly through: number
  /** The topic's head as far as this process knows: at least `through`. */
  readonly head: number
  /** False while replaying from the journal; true on the last replay batch (even empty) and every live batch. */
  readonly replayComplete: boolean
}

/**
 * Whose rows a subscription receives (I7): one org's, or every org's. Every org's is only for trusted, in-process
 * callers such as `khala tail`, and must be asked for by name: there is no default.
 */
export type Audience =
  | { readonly _tag: "Org"; readonly orgId: string }
  | { readonly _tag: "AllOrgs" }

export const Audience = {
  org: (orgId: string): Audience => ({ _tag: "Org", orgId }),
  allOrgs: { _tag: "AllOrgs" } as Audience
} as const

/**
 * Which documents of the topic a subscription follows (protocol.md §7): the given keys, or the keys with a prefix. Rows
 * outside it are skipped exactly like another org's: the subscriber's watermark still moves past them.
 */
export type DocFilter =
  | { readonly _tag: "DocKeys"; readonly docKeys: ReadonlySet<string> }
  | { readonly _tag: "DocKeyPrefix"; readonly prefix: string }

export interface SubscribeOptions {
  readonly topic: string
  /** Resume point: the subscriber receives exactly the rows with a higher watermark (I4). */
  readonly after: number
  /** Whose rows: one org's (I7), or every org's for trusted in-process callers. */
  readonly audience: Audience
  /** Only these documents; every document of the audience when absent. */
  readonly filter?: DocFilter | undefined
  /** Most rows per replay read. */
  readonly batchSize: number
  /**
   * The live fast path: the topic's tail calls this synchronously with each live batch as soon as it has read it,
   * instead of the stream emitting it, so one read reaches every subscriber without a fiber switch each. It answers
   * false when the subscriber cannot take the batch now (its socket is over its send limit); the subscription then
   * catches up from the journal on the stream, which waits for it, and goes live again once caught up. It must not
   * block: it runs in the tail, between the other subscribers.
   */
  /**
   * Waits until the consumer can take more (its socket's send buffer is under its limit). A subscription that reads
   * the journal (replaying, or catching up after falling behind) waits for it before each read, so a consumer that
   * stopped reading holds no page in memory and causes no reads (I9).
   */
  readonly awaitCapacity?: Effect.Effect<void> | undefined
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
