/**
 * Where the client persists, per topic, its watermark and epoch together with the documents they account for (SPEC
 * §8). A commit is atomic: the stored watermark never runs ahead of the stored documents, so a client that crashes at
 * any point resumes from a watermark whose rows it really holds (I4).
 *
 * Stores are Promise-based so that platform storage (IndexedDB, localStorage, files) and an app's own store plug in
 * directly.
 *
 * @since 0.1.0
 */
import type { Document } from "./Document.js"

/**
 * A topic's resume point: the watermark through which the stored documents are complete, the topic's epoch when the
 * server reported one, and the filter the watermark was reached with.
 *
 * @since 0.1.0
 */
export interface Cursor {
  readonly watermark: number
  readonly epoch: string | null
  readonly filter: string
}

/**
 * A topic as stored.
 *
 * @since 0.1.0
 */
export interface StoredTopic {
  readonly cursor: Cursor
  readonly documents: ReadonlyArray<Document>
}

/**
 * One topic's part of a commit: its new cursor, documents written (newer versions), documents dropped, and whether the
 * topic's documents are replaced as a whole (after a hydration) before `put` is written.
 *
 * @since 0.1.0
 */
export interface TopicCommit {
  readonly topic: string
  readonly cursor: Cursor
  readonly put: ReadonlyArray<Document>
  readonly remove: ReadonlyArray<string>
  readonly replace: boolean
}

/**
 * @since 0.1.0
 */
export interface WatermarkStore {
  /** The topic as stored, or undefined when nothing is. */
  readonly load: (topic: string) => Promise<StoredTopic | undefined>
  /** Writes every topic's part in one atomic step. */
  readonly commit: (commits: ReadonlyArray<TopicCommit>) => Promise<void>
  /** Releases what the store holds open (a database connection). */
  readonly close?: (() => Promise<void> | void) | undefined
}

/**
 * Applies a commit to a topic held as a map of documents: the one way every store merges a commit.
 *
 * @since 0.1.0
 */
export const applyCommit = (documents: Map<string, Document>, commit: TopicCommit): void => {
  if (commit.replace) documents.clear()
  for (const key of commit.remove) documents.delete(key)
  for (const document of commit.put) documents.set(document.docKey, document)
}

/**
 * A store in memory: for tests, for Node processes that start over on restart, and as the default.
 *
 * @since 0.1.0
 */
export const memoryStore = (): WatermarkStore => {
  const topics = new Map<string, { cursor: Cursor; documents: Map<string, Document> }>()
  return {
    load: (topic) => {
      const stored = topics.get(topic)
      return Promise.resolve(
        stored === undefined ? undefined : { cursor: stored.cursor, documents: [...stored.documents.values()] }
      )
    },
    commit: (commits) => {
      for (const commit of commits) {
        const stored = topics.get(commit.topic) ?? { cursor: commit.cursor, documents: new Map() }
        applyCommit(stored.documents, commit)
        stored.cursor = commit.cursor
        topics.set(commit.topic, stored)
      }
      return Promise.resolve()
    }
  }
}
