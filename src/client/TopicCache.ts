/**
 * One followed topic: its documents keyed by doc_key, its cursor, what is not yet persisted, and what the app has not
 * yet been told. Updates apply only when their version is newer than the cached one (I6), so a replayed or re-fetched
 * row never regresses a document; deletes drop the document (protocol.md §7).
 *
 * Everything here is synchronous and owned by the client's one processing fiber.
 *
 * @since 0.1.0
 */
import type { Document, DocumentFilter, TopicChanges } from "./Document.js"
import { filterKey, matchesFilter } from "./Document.js"
import type { Cell, ExternalStore } from "./ExternalStore.js"
import { makeCell, notifyAll } from "./ExternalStore.js"
import type { Cursor, StoredTopic, TopicCommit } from "./WatermarkStore.js"

/**
 * Where a followed topic stands.
 *
 * @since 0.1.0
 */
export interface TopicStatus {
  /**
   * True once the topic's replay completed on the current connection: the cache then holds every change up to the
   * moment of subscribing, and stays current while live. False before, and again while disconnected.
   */
  readonly synced: boolean
  /** Set when the topic cannot be followed (forbidden), or its changes could not be persisted. */
  readonly error: Error | undefined
}

/**
 * Receives each step's changes once they are persisted; a returned promise holds the client back until it settles,
 * which is how a slow consumer slows the client down instead of growing a buffer.
 *
 * @since 0.1.0
 */
export type ChangeListener<T = unknown> = (changes: TopicChanges<T>) => void | PromiseLike<unknown>

/**
 * @since 0.1.0
 */
export class TopicCache {
  readonly filterKey: string
  private documents = new Map<string, Document>()
  private cursorValue: Cursor
  private snapshot: ReadonlyMap<string, Document> | undefined
  private readonly listeners = new Set<() => void>()
  readonly changeListeners = new Set<ChangeListener>()
  private readonly statusCell: Cell<TopicStatus> = makeCell<TopicStatus>({ synced: false, error: undefined })

  // Not yet persisted: merged across failed commits, so the next commit carries them all.
  private pendingPut = new Map<string, Document>()
  private pendingRemove = new Set<string>()
  private pendingReplace = false
  private pendingCursor = false

  // Not yet told to the app.
  private changedUpsert = new Map<string, Document>()
  private changedRemove = new Set<string>()
  private changedReset = false

  constructor(
    readonly topic: string,
    readonly filter: DocumentFilter | undefined
  ) {
    this.filterKey = filterKey(filter)
    this.cursorValue = { watermark: 0, epoch: null, filter: this.filterKey }
  }

  /** Whether `restore` ran: until then the topic is neither subscribed nor persisted. */
  loaded = false

  /** Fills the cache from what the store held, then tells the app. */
  restore(stored: StoredTopic | undefined): void {
    if (stored !== undefined && stored.cursor.filter === this.filterKey) {
      this.fresh = false
      this.cursorValue = stored.cursor
      for (const document of stored.documents) {
        this.documents.set(document.docKey, document)
        this.changedUpsert.set(document.docKey, document)
      }
    } else if (stored !== undefined) {
      // Stored under another filter: that watermark skipped rows this filter wants, so start over and clear what the
      // store holds for the topic at the first commit.
      this.pendingReplace = true
      this.pendingCursor = true
    }
    this.loaded = true
    this.snapshot = undefined
    this.changedReset = true
    // Listeners that hold the client back (streams) only do so for persisted steps; the restored state is persisted.
    this.notify()
  }

  /**
   * Whether the topic has no resume point yet: nothing was stored under this filter, and no hydration reset it. An
   * empty topic hydrated at watermark 0 is not fresh: its cursor is 0 because the journal is empty.
   */
  get isFresh(): boolean {
    return this.fresh
  }
  private fresh = true

  get cursor(): Cursor {
    return this.cursorValue
  }

  get status(): ExternalStore<TopicStatus> {
    return this.statusCell
  }

  setStatus(status: Partial<TopicStatus>): void {
    const current = this.statusCell.getSnapshot()
    const next = { ...current, ...status }
    if (next.synced !== current.synced || next.error !== current.error) this.statusCell.set(next)
  }

  get(docKey: string): Document | undefined {
    return this.documents.get(docKey)
  }

  /** The documents, as one immutable map that stays the same object until something changes. */
  getSnapshot = (): ReadonlyMap<string, Document> => (this.snapshot ??= new Map(this.documents))

  subscribe = (listener: () => void): () => void => {
    this.listeners.add(listener)
    return () => {
      this.listeners.delete(listener)
    }
  }

  matches(docKey: string): boolean {
    return matchesFilter(this.filter, docKey)
  }

  /** Applies one version of a document if it is newer than the cached one (I6); true when it changed the cache. */
  applyDocument(document: Document): boolean {
    if (!this.matches(document.docKey)) return false
    const cached = this.documents.get(document.docKey)
    if (cached !== undefined && cached.docVersion >= document.docVersion) return false
    this.documents.set(document.docKey, document)
    this.pendingPut.set(document.docKey, document)
    this.pendingRemove.delete(document.docKey)
    this.changedUpsert.set(document.docKey, document)
    this.changedRemove.delete(document.docKey)
    this.snapshot = undefined
    return true
  }

  /** Applies a delete of the given version: drops the document unless the cached one is newer. */
  applyDelete(docKey: string, docVersion: number): boolean {
    const cached = this.documents.get(docKey)
    if (cached === undefined || cached.docVersion >= docVersion) return false
    this.drop(docKey)
    return true
  }

  /** Drops a document whatever its version: the server says it no longer exists or is no longer visible. */
  drop(docKey: string): void {
    if (!this.documents.delete(docKey)) return
    this.pendingPut.delete(docKey)
    this.pendingRemove.add(docKey)
    this.changedUpsert.delete(docKey)
    this.changedRemove.add(docKey)
    this.snapshot = undefined
  }

  /** Moves the watermark forward (never back), with the epoch the server reported. */
  advance(watermark: number, epoch?: string | undefined): void {
    const nextEpoch = epoch ?? this.cursorValue.epoch
    if (watermark <= this.cursorValue.watermark && nextEpoch === this.cursorValue.epoch) return
    this.cursorValue = {
      watermark: Math.max(watermark, this.cursorValue.watermark),
      epoch: nextEpoch,
      filter: this.filterKey
    }
    this.pendingCursor = true
  }

  /**
   * Replaces the topic with a hydrated snapshot: exactly these documents, at watermark `watermark` (protocol.md §6 snapshot
   * rule). The watermark may move back: the journal before it is no longer needed.
   */
  reset(documents: ReadonlyArray<Document>, watermark: number, epoch: string | null): void {
    const previous = this.documents
    this.documents = new Map()
    for (const document of documents) {
      if (this.matches(document.docKey)) this.documents.set(document.docKey, document)
    }
    this.cursorValue = { watermark, epoch, filter: this.filterKey }
    this.fresh = false
    this.pendingReplace = true
    this.pendingCursor = true
    this.pendingPut = new Map(this.documents)
    this.pendingRemove.clear()
    this.changedReset = true
    this.changedUpsert = new Map(this.documents)
    this.changedRemove = new Set([...previous.keys()].filter((key) => !this.documents.has(key)))
    this.snapshot = undefined
  }

  /** What the store must write for this topic, if anything. */
  pendingCommit(): TopicCommit | undefined {
    if (!this.pendingCursor && !this.pendingReplace && this.pendingPut.size === 0 && this.pendingRemove.size === 0) {
      return undefined
    }
    return {
      topic: this.topic,
      cursor: this.cursorValue,
      put: [...this.pendingPut.values()],
      remove: [...this.pendingRemove],
      replace: this.pendingReplace
    }
  }

  /**
   * The commit returned by `pendingCommit` was persisted. Nothing changes the cache between the two (the processing
   * fiber awaits the store), so nothing stays pending.
   */
  committed(): void {
    this.pendingReplace = false
    this.pendingCursor = false
    this.pendingPut = new Map()
    this.pendingRemove = new Set()
  }

  /** Tells the app what changed since it was last told: the snapshot listeners, then the change listeners. */
  notify(): Array<PromiseLike<unknown>> {
    if (this.changedUpsert.size === 0 && this.changedRemove.size === 0 && !this.changedReset) return []
    const changes: TopicChanges = {
      topic: this.topic,
      upserted: [...this.changedUpsert.values()],
      removed: [...this.changedRemove],
      reset: this.changedReset,
      watermark: this.cursorValue.watermark
    }
    this.changedUpsert = new Map()
    this.changedRemove = new Set()
    this.changedReset = false
    notifyAll(this.listeners)
    const waits: Array<PromiseLike<unknown>> = []
    for (const listener of [...this.changeListeners]) {
      try {
        const result = listener(changes)
        if (result !== undefined && typeof result.then === "function") waits.push(result)
      } catch (error) {
        notifyAll([() => {
          throw error
        }])
      }
    }
    return waits
  }
}
