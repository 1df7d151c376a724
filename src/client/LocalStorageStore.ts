/**
 * A store in the browser's `localStorage`: one item per topic, so that each topic's commit is a single `setItem` and
 * therefore atomic. Every commit rewrites the topic's item, which suits the few hundred small documents that fit in
 * `localStorage` anyway; larger caches belong in IndexedDB.
 *
 * @since 0.1.0
 */
import type { Document } from "./Document.js"
import type { Cursor, WatermarkStore } from "./WatermarkStore.js"
import { applyCommit } from "./WatermarkStore.js"

/**
 * The part of the `Storage` interface the store uses.
 *
 * @since 0.1.0
 */
export interface StorageLike {
  readonly getItem: (key: string) => string | null
  readonly setItem: (key: string, value: string) => void
}

interface Item {
  readonly cursor: Cursor
  readonly documents: ReadonlyArray<Document>
}

/**
 * @since 0.1.0
 */
export const localStorageStore = (options: {
  /** Prefix of the items' keys; give each signed-in user their own. Default `khala`. */
  readonly prefix?: string | undefined
  /** Default `globalThis.localStorage`. */
  readonly storage?: StorageLike | undefined
} = {}): WatermarkStore => {
  const prefix = options.prefix ?? "khala"
  const storage = () => options.storage ?? (globalThis as unknown as { localStorage: StorageLike }).localStorage
  const key = (topic: string) => `${prefix}:topic:${topic}`
  const read = (topic: string): Item | undefined => {
    const text = storage().getItem(key(topic))
    return text === null ? undefined : JSON.parse(text) as Item
  }
  return {
    load: (topic) => Promise.resolve().then(() => read(topic)),
    commit: (commits) =>
      Promise.resolve().then(() => {
        // Items are written only after every one of them is built, so a failure while building writes nothing.
        const items = commits.map((commit) => {
          const documents = new Map((read(commit.topic)?.documents ?? []).map((d) => [d.docKey, d]))
          applyCommit(documents, commit)
          return [key(commit.topic), JSON.stringify({ cursor: commit.cursor, documents: [...documents.values()] })]
        })
        for (const [itemKey, text] of items) storage().setItem(itemKey!, text!)
      })
  }
}
