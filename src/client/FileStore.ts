/**
 * A store in files, for Node: one JSON file per topic in a directory, replaced by writing a temporary file and
 * renaming it over the old one, which is atomic on POSIX file systems. Every commit rewrites the topic's file; the
 * client commits once per drained group of frames, so the rewrite cost is paid per group, not per update.
 *
 * @since 0.1.0
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises"
import { join } from "node:path"
import type { Document } from "./Document.js"
import type { Cursor, WatermarkStore } from "./WatermarkStore.js"
import { applyCommit } from "./WatermarkStore.js"

interface TopicFile {
  readonly cursor: Cursor
  readonly documents: ReadonlyArray<Document>
}

const isMissing = (error: unknown) =>
  typeof error === "object" && error !== null && (error as { code?: unknown }).code === "ENOENT"

/**
 * @since 0.1.0
 */
export const fileStore = (directory: string): WatermarkStore => {
  // Topic names are dotted words, but a runtime may add its own: keep file names safe whatever they are.
  const path = (topic: string) => join(directory, `${encodeURIComponent(topic)}.json`)
  const read = async (topic: string): Promise<TopicFile | undefined> => {
    try {
      return JSON.parse(await readFile(path(topic), "utf8")) as TopicFile
    } catch (error) {
      if (isMissing(error)) return undefined
      throw error
    }
  }
  let sequence = 0
  return {
    load: read,
    commit: async (commits) => {
      await mkdir(directory, { recursive: true })
      for (const commit of commits) {
        const documents = new Map(((await read(commit.topic))?.documents ?? []).map((d) => [d.docKey, d]))
        applyCommit(documents, commit)
        const temporary = `${path(commit.topic)}.${process.pid}.${++sequence}.tmp`
        await writeFile(temporary, JSON.stringify({ cursor: commit.cursor, documents: [...documents.values()] }))
        await rename(temporary, path(commit.topic))
      }
    }
  }
}
