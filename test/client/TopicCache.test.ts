import { describe, expect, it } from "@effect/vitest"
import type { Document } from "../../src/client/Document.js"
import { TopicCache } from "../../src/client/TopicCache.js"

const doc = (
  docKey: string,
  docVersion: number,
  watermark: number,
  payload: unknown = { v: docVersion }
): Document => ({
  docKey,
  docVersion,
  payload,
  payloadHash: null,
  watermark
})

const loaded = (filter?: ConstructorParameters<typeof TopicCache>[1]) => {
  const cache = new TopicCache("runtime.run_summaries", filter)
  cache.restore(undefined)
  cache.notify()
  return cache
}

describe("TopicCache", () => {
  it("applies only newer versions (I6) and drops deleted documents unless the cached one is newer", () => {
    const cache = loaded()
    expect(cache.applyDocument(doc("a", 2, 1))).toBe(true)
    expect(cache.applyDocument(doc("a", 1, 2))).toBe(false)
    expect(cache.applyDocument(doc("a", 2, 3))).toBe(false)
    expect(cache.get("a")?.docVersion).toBe(2)
    expect(cache.applyDelete("a", 2)).toBe(false)
    expect(cache.applyDelete("a", 3)).toBe(true)
    expect(cache.get("a")).toBeUndefined()
    // re-created after the delete
    expect(cache.applyDocument(doc("a", 4, 5))).toBe(true)
    expect([...cache.getSnapshot().keys()]).toEqual(["a"])
  })

  it("keeps one snapshot object until something changes", () => {
    const cache = loaded()
    cache.applyDocument(doc("a", 1, 1))
    const first = cache.getSnapshot()
    expect(cache.getSnapshot()).toBe(first)
    cache.applyDocument(doc("a", 1, 2))
    expect(cache.getSnapshot()).toBe(first)
    cache.applyDocument(doc("b", 1, 3))
    expect(cache.getSnapshot()).not.toBe(first)
    expect(first.size).toBe(1)
  })

  it("skips documents outside its filter", () => {
    const cache = loaded({ docKeyPrefix: "run-1/" })
    expect(cache.applyDocument(doc("run-1/a", 1, 1))).toBe(true)
    expect(cache.applyDocument(doc("run-2/a", 1, 2))).toBe(false)
    expect([...cache.getSnapshot().keys()]).toEqual(["run-1/a"])
  })

  it("commits what changed since the last commit, and keeps it pending until committed", () => {
    const cache = loaded()
    expect(cache.pendingCommit()).toBeUndefined()
    cache.applyDocument(doc("a", 1, 1))
    cache.applyDocument(doc("b", 1, 2))
    cache.advance(2)
    const first = cache.pendingCommit()!
    expect(first.put.map((d) => d.docKey)).toEqual(["a", "b"])
    expect(first.cursor.watermark).toBe(2)
    // a failed commit: nothing is marked committed, the next commit carries it all
    cache.applyDelete("a", 2)
    cache.advance(3)
    const second = cache.pendingCommit()!
    expect(second.put.map((d) => d.docKey)).toEqual(["b"])
    expect(second.remove).toEqual(["a"])
    expect(second.cursor.watermark).toBe(3)
    cache.committed()
    expect(cache.pendingCommit()).toBeUndefined()
  })

  it("never moves the watermark back, except through a reset to a hydrated snapshot", () => {
    const cache = loaded()
    cache.advance(10)
    cache.advance(4)
    expect(cache.cursor.watermark).toBe(10)
    cache.applyDocument(doc("a", 1, 1))
    cache.applyDocument(doc("gone", 1, 2))
    cache.notify()
    cache.reset([doc("a", 3, 7), doc("b", 1, 5)], 7, "e2")
    expect(cache.cursor).toEqual({ watermark: 7, epoch: "e2", filter: "" })
    expect([...cache.getSnapshot().keys()].sort()).toEqual(["a", "b"])
    const commit = cache.pendingCommit()!
    expect(commit.replace).toBe(true)
    expect(commit.put.map((d) => d.docKey).sort()).toEqual(["a", "b"])
    const told: Array<unknown> = []
    cache.changeListeners.add((changes) => void told.push(changes))
    cache.notify()
    expect(told).toEqual([
      expect.objectContaining({ reset: true, removed: ["gone"], watermark: 7 })
    ])
  })

  it("is fresh until restored from the store or reset by a hydration, even to an empty topic at watermark 0", () => {
    const cache = loaded()
    expect(cache.isFresh).toBe(true)
    cache.reset([], 0, null)
    expect(cache.isFresh).toBe(false)
    const restored = new TopicCache("t", undefined)
    restored.restore({ cursor: { watermark: 0, epoch: null, filter: "" }, documents: [] })
    expect(restored.isFresh).toBe(false)
  })

  it("starts over when the store holds the topic under another filter", () => {
    const cache = new TopicCache("t", { docKeys: ["x"] })
    cache.restore({ cursor: { watermark: 40, epoch: null, filter: "" }, documents: [doc("x", 1, 3), doc("y", 1, 4)] })
    expect(cache.cursor.watermark).toBe(0)
    expect(cache.getSnapshot().size).toBe(0)
    expect(cache.pendingCommit()).toMatchObject({ replace: true, put: [] })
  })

  it("restores documents and cursor stored under its filter, and tells its listeners", () => {
    const cache = new TopicCache("t", undefined)
    let told = 0
    cache.subscribe(() => told++)
    cache.restore({ cursor: { watermark: 4, epoch: "e1", filter: "" }, documents: [doc("x", 2, 4)] })
    expect(told).toBe(1)
    expect(cache.cursor).toEqual({ watermark: 4, epoch: "e1", filter: "" })
    expect(cache.get("x")?.docVersion).toBe(2)
    expect(cache.pendingCommit()).toBeUndefined()
  })
})
