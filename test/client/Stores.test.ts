/**
 * Every store honours the same contract: a commit is applied whole, a replacing commit clears the topic first, topics
 * are independent, and what was committed is what loads.
 */
import { describe, expect, it } from "@effect/vitest"
import { mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Document } from "../../src/client/Document.js"
import { fileStore } from "../../src/client/FileStore.js"
import { localStorageStore } from "../../src/client/LocalStorageStore.js"
import type { WatermarkStore } from "../../src/client/WatermarkStore.js"
import { memoryStore } from "../../src/client/WatermarkStore.js"

const doc = (docKey: string, docVersion: number): Document => ({
  docKey,
  docVersion,
  payload: { docKey, docVersion },
  payloadHash: null,
  watermark: docVersion
})
const cursor = (watermark: number) => ({ watermark, epoch: null, filter: "" })

const memoryStorage = () => {
  const items = new Map<string, string>()
  return {
    getItem: (key: string) => items.get(key) ?? null,
    setItem: (key: string, value: string) => void items.set(key, value)
  }
}

const providers: ReadonlyArray<
  [string, () => { store: WatermarkStore; reopen: () => WatermarkStore; done: () => void }]
> = [
  ["memory", () => {
    const store = memoryStore()
    return { store, reopen: () => store, done: () => undefined }
  }],
  ["localStorage", () => {
    const storage = memoryStorage()
    return {
      store: localStorageStore({ storage }),
      reopen: () => localStorageStore({ storage }),
      done: () => undefined
    }
  }],
  ["file", () => {
    const dir = mkdtempSync(join(tmpdir(), "khala-store-"))
    return {
      store: fileStore(dir),
      reopen: () => fileStore(dir),
      done: () => rmSync(dir, { recursive: true, force: true })
    }
  }]
]

describe.each(providers)("%s store", (_name, make) => {
  it("loads what was committed: merged commits, removals, replacements, topics apart", async () => {
    const { done, reopen, store } = make()
    try {
      expect(await store.load("t")).toBeUndefined()
      await store.commit([
        { topic: "t", cursor: cursor(2), put: [doc("a", 1), doc("b", 2)], remove: [], replace: false },
        { topic: "u", cursor: cursor(1), put: [doc("x", 1)], remove: [], replace: false }
      ])
      await store.commit([{ topic: "t", cursor: cursor(4), put: [doc("a", 3)], remove: ["b"], replace: false }])
      const again = reopen()
      expect(await again.load("t")).toEqual({ cursor: cursor(4), documents: [doc("a", 3)] })
      expect(await again.load("u")).toEqual({ cursor: cursor(1), documents: [doc("x", 1)] })
      await again.commit([{ topic: "t", cursor: cursor(9), put: [doc("c", 9)], remove: [], replace: true }])
      expect(await again.load("t")).toEqual({ cursor: cursor(9), documents: [doc("c", 9)] })
      expect((await again.load("u"))?.documents).toEqual([doc("x", 1)])
    } finally {
      done()
    }
  })
})

describe("file store", () => {
  it("leaves no temporary file behind and keeps topic names safe as file names", async () => {
    const dir = mkdtempSync(join(tmpdir(), "khala-store-"))
    try {
      const store = fileStore(dir)
      await store.commit([{ topic: "a/../b", cursor: cursor(1), put: [doc("x", 1)], remove: [], replace: false }])
      expect(readdirSync(dir)).toEqual([`${encodeURIComponent("a/../b")}.json`])
      expect((await store.load("a/../b"))?.cursor).toEqual(cursor(1))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
