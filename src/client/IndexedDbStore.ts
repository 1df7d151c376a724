/**
 * A store in the browser's IndexedDB. A commit is one `readwrite` transaction over the documents and the cursors, so
 * a tab closed or crashed mid-commit leaves either all of it or none: never a watermark ahead of its documents.
 *
 * Layout: object store `cursors` keyed by topic; object store `documents` keyed by `[topic, doc_key]`.
 *
 * @since 0.1.0
 */
import type { Document } from "./Document.js"
import type { Cursor, WatermarkStore } from "./WatermarkStore.js"

// The part of the IndexedDB API the store uses, declared here: the project compiles without the DOM library.
interface Request<A> {
  readonly result: A
  readonly error: unknown
  onsuccess: (() => void) | null
  onerror: (() => void) | null
}
interface OpenRequest extends Request<Database> {
  onupgradeneeded: (() => void) | null
  onblocked: (() => void) | null
}
interface ObjectStore {
  get(key: unknown): Request<unknown>
  getAll(range: unknown): Request<Array<unknown>>
  put(value: unknown, key: unknown): Request<unknown>
  delete(keyOrRange: unknown): Request<unknown>
}
interface Transaction {
  readonly error: unknown
  objectStore(name: string): ObjectStore
  oncomplete: (() => void) | null
  onerror: (() => void) | null
  onabort: (() => void) | null
}
interface Database {
  createObjectStore(name: string): unknown
  transaction(names: Array<string>, mode: "readonly" | "readwrite"): Transaction
  close(): void
}

/**
 * The IndexedDB globals the store uses (`indexedDB`, `IDBKeyRange`): the browser's, or a stand-in's.
 *
 * @since 0.1.0
 */
export interface IndexedDbGlobals {
  readonly indexedDB: { open(name: string, version: number): OpenRequest }
  readonly IDBKeyRange: { bound(lower: unknown, upper: unknown): unknown }
}

const cursors = "cursors"
const documents = "documents"

const request = <A>(req: Request<A>): Promise<A> =>
  new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })

const done = (tx: Transaction): Promise<void> =>
  new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve()
    tx.onerror = () => reject(tx.error)
    tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"))
  })

/**
 * @since 0.1.0
 */
export const indexedDbStore = (options: {
  /** Database name; give each signed-in user their own. Default `khala`. */
  readonly name?: string | undefined
  /** Default: the browser's. */
  readonly globals?: IndexedDbGlobals | undefined
} = {}): WatermarkStore => {
  const globals = () => options.globals ?? (globalThis as unknown as IndexedDbGlobals)
  // Every key `[topic, docKey]`: arrays sort after strings in IndexedDB, so `[topic, []]` bounds them from above.
  const topicRange = (topic: string) => globals().IDBKeyRange.bound([topic], [topic, []])
  let opened: Promise<Database> | undefined
  const database = () =>
    opened ??= new Promise<Database>((resolve, reject) => {
      const open = globals().indexedDB.open(options.name ?? "khala", 1)
      open.onupgradeneeded = () => {
        open.result.createObjectStore(cursors)
        open.result.createObjectStore(documents)
      }
      open.onsuccess = () => resolve(open.result)
      open.onerror = () => reject(open.error)
      open.onblocked = () => reject(new Error("IndexedDB open is blocked by another tab holding an older version"))
    })
  return {
    load: async (topic) => {
      const db = await database()
      const tx = db.transaction([cursors, documents], "readonly")
      const [cursor, docs] = await Promise.all([
        request(tx.objectStore(cursors).get(topic) as Request<Cursor | undefined>),
        request(tx.objectStore(documents).getAll(topicRange(topic)) as Request<Array<Document>>)
      ])
      return cursor === undefined ? undefined : { cursor, documents: docs }
    },
    commit: async (commits) => {
      const db = await database()
      const tx = db.transaction([cursors, documents], "readwrite")
      const finished = done(tx)
      const docStore = tx.objectStore(documents)
      for (const commit of commits) {
        if (commit.replace) docStore.delete(topicRange(commit.topic))
        for (const key of commit.remove) docStore.delete([commit.topic, key])
        for (const document of commit.put) docStore.put(document, [commit.topic, document.docKey])
        tx.objectStore(cursors).put(commit.cursor, commit.topic)
      }
      await finished
    },
    // Closed with one client, the store opens again for the next.
    close: async () => {
      const closing = opened
      opened = undefined
      if (closing !== undefined) (await closing).close()
    }
  }
}
