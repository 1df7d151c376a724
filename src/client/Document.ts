/**
 * What the client holds and hands to the app: documents of a topic, the filters that narrow a subscription, and the
 * changes a batch of updates made to a topic's cache.
 *
 * @since 0.1.0
 */

/**
 * One document of a topic as the client holds it: the newest version it has seen (protocol.md §11, I6).
 *
 * @since 0.1.0
 */
export interface Document<T = unknown> {
  readonly docKey: string
  readonly docVersion: number
  readonly payload: T
  /** `sha256:<hex>` of the canonical JSON of the payload, or null. */
  readonly payloadHash: string | null
  /** The journal watermark of the row that carried this version. */
  readonly watermark: number
}

/**
 * Narrows a subscription to some documents of its topic (protocol.md §7): rows outside it are skipped by the server and the
 * client alike, and the watermark still moves past them.
 *
 * @since 0.1.0
 */
export type DocumentFilter =
  | { readonly docKeys: ReadonlyArray<string> }
  | { readonly docKeyPrefix: string }

/**
 * Most doc keys a `docKeys` filter may name (protocol.md §7).
 *
 * @since 0.1.0
 */
export const maxFilterDocKeys = 1000

/**
 * Whether the filter lets the document in; no filter lets everything in.
 *
 * @since 0.1.0
 */
export const matchesFilter = (filter: DocumentFilter | undefined, docKey: string): boolean =>
  filter === undefined
    ? true
    : "docKeys" in filter
    ? filter.docKeys.includes(docKey)
    : docKey.startsWith(filter.docKeyPrefix)

/**
 * A stable text naming the filter. A topic's persisted watermark is only valid for the filter it was reached with
 * (rows outside the filter were skipped), so the store keeps this beside it and a change of filter starts over.
 *
 * @since 0.1.0
 */
export const filterKey = (filter: DocumentFilter | undefined): string =>
  filter === undefined
    ? ""
    : "docKeys" in filter
    ? "keys:" + JSON.stringify([...new Set(filter.docKeys)].sort())
    : "prefix:" + JSON.stringify(filter.docKeyPrefix)

/**
 * The filter as `sync:subscribe` takes it under `filters[topic]`.
 *
 * @since 0.1.0
 */
export const filterJson = (filter: DocumentFilter): Record<string, unknown> =>
  "docKeys" in filter ? { doc_keys: [...filter.docKeys] } : { doc_key_prefix: filter.docKeyPrefix }

/**
 * What one step of the client did to a topic's cache: documents added or replaced by a newer version, documents
 * dropped (deleted, or gone from a re-hydrated topic), and whether the cache was replaced as a whole (after a
 * hydration), in which case `upserted` holds every document.
 *
 * @since 0.1.0
 */
export interface TopicChanges<T = unknown> {
  readonly topic: string
  readonly upserted: ReadonlyArray<Document<T>>
  readonly removed: ReadonlyArray<string>
  readonly reset: boolean
  /** The topic's watermark once these changes are applied and persisted. */
  readonly watermark: number
}
