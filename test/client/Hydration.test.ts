/**
 * First loads over HTTP hydration (protocol.md §6, §11), against a real `khala serve`, socket and hydration alike:
 * - a first load hydrates by pages and subscribes from the snapshot watermark: nothing at or below it is replayed, and
 *   it ends at exactly the read model even while a writer creates, updates and deletes during the paging;
 * - pointer-mode rows (no payload, `hydration_required`) are fetched with `documents:batchGet`, several at once, and a
 *   document over the per-update limit alone with `GET …/documents/{doc_key}`;
 * - filters by prefix and by keys narrow hydration, delivery and a later resume alike.
 * Recovery by hydration (`stale_cursor`) is in Resync.test.ts.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Schedule } from "effect"
import { memoryStore } from "../../src/client/node.js"
import { removeDocument } from "../support/ClientHarness.js"
import { events, held, notes, readModel, runs, setup, workers } from "../support/HydrationRig.js"
import { range } from "../support/Khala.js"
import { waitUntil } from "../support/PhoenixClient.js"
import { postgresAvailable } from "../support/Postgres.js"

describe.skipIf(!postgresAvailable)("client, hydration", () => {
  it.live(
    "first load by pages from the snapshot; pointer rows fetched in batches, oversize ones alone; filters",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { client, http, listings, sql, wire } = yield* setup
        // 30 documents, 10 of them updated: 40 journal rows, of which a first load should receive none
        yield* sql.publishAll(range(1, 30).map((i) => ({ docKey: `r${String(i).padStart(2, "0")}`, payload: { i } })))
        yield* sql.publishAll(
          range(1, 10).map((i) => ({
            docKey: `r${String(i).padStart(2, "0")}`,
            docVersion: 2,
            payload: { i, v: 2 }
          }))
        )
        yield* sql.publishAll(range(1, 6).map((i) => ({ topic: events, docKey: `run-${i % 2}/e${i}`, payload: { i } })))
        // over the per-update limit (256 KiB): listed and batch-answered without payload, fetched alone
        const big = "x".repeat(300_000)
        yield* sql.publishAll([
          { topic: notes, docKey: "big", payload: { big } },
          { topic: notes, docKey: "small", payload: { s: 1 } },
          { topic: notes, docKey: "other", payload: { o: 1 } }
        ])
        const store = memoryStore()
        const c = yield* client(store)
        const summaries = c.subscribe(runs)
        const filtered = c.subscribe(events, { filter: { docKeyPrefix: "run-1/" } })
        const pointers = c.subscribe(workers)
        const chosen = c.subscribe<{ big?: string; s?: number }>(notes, {
          filter: { docKeys: ["big", "small", "absent"] }
        })
        yield* Effect.promise(() =>
          Promise.all([summaries.synced(), filtered.synced(), pointers.synced(), chosen.synced()])
        )
        expect(held(summaries.getSnapshot())).toEqual(yield* readModel(sql.client, runs))
        expect(summaries.get("r03")?.payload).toEqual({ i: 3, v: 2 })
        // nothing at or below the snapshot came over the socket
        expect(wire.get(runs) ?? []).toEqual([])
        expect(wire.get(events) ?? []).toEqual([])
        // 30 documents, 7 a page
        expect(listings(runs).length).toBe(5)
        expect(listings(events)[0]).toContain("doc_key_prefix=run-1%2F")
        expect([...filtered.getSnapshot().keys()].sort()).toEqual(["run-1/e1", "run-1/e3", "run-1/e5"])
        // an empty topic is hydrated once, at watermark 0
        expect(listings(workers)).toHaveLength(1)
        // a keys filter hydrates by batchGet; the oversize document is then fetched alone
        expect(listings(notes)).toEqual([])
        expect([...chosen.getSnapshot().keys()].sort()).toEqual(["big", "small"])
        expect(chosen.get("big")?.payload.big).toBe(big)
        expect(http.requests).toContain(`GET /sync/v1/topics/${notes}/documents/big`)

        // live after the snapshot; filtered rows stay out; pointer-mode rows are fetched, several in one batchGet
        const requestsBefore = http.requests.length
        yield* sql.publishAll([
          { docKey: "r31", payload: { i: 31 } },
          { topic: events, docKey: "run-2/e7", payload: { i: 7 } },
          { topic: events, docKey: "run-1/e8", payload: { i: 8 } },
          { topic: notes, docKey: "other", docVersion: 2, payload: { o: 2 } },
          { topic: notes, docKey: "small", docVersion: 2, payload: { s: 2 } },
          { topic: notes, docKey: "big", docVersion: 2, payload: { big: big + "!" } },
          ...range(1, 20).map((i) => ({ topic: workers, docKey: `w${i}`, payload: { w: i }, pointer: true }))
        ])
        yield* waitUntil("the live rows", () =>
          summaries.get("r31") !== undefined && filtered.get("run-1/e8") !== undefined &&
          pointers.getSnapshot().size === 20 && chosen.get("big")?.docVersion === 2 &&
          chosen.get("small")?.docVersion === 2)
        expect(wire.get(runs)).toEqual([41])
        // the server filtered: run-2/e7 and `other` never came over the socket
        expect(wire.get(events)).toHaveLength(1)
        expect(wire.get(notes)).toHaveLength(2)
        expect(filtered.get("run-2/e7")).toBeUndefined()
        expect(chosen.get("other")).toBeUndefined()
        expect(chosen.get("big")?.payload.big).toBe(big + "!")
        expect(pointers.get("w7")?.payload).toEqual({ w: 7 })
        expect(held(pointers.getSnapshot())).toEqual(yield* readModel(sql.client, workers))
        const live = http.requests.slice(requestsBefore)
        const batchGets = live.filter((r) =>
          r === `POST /sync/v1/topics/${workers}/documents:batchGet`
        )
        expect(batchGets.length).toBeGreaterThan(0)
        expect(batchGets.length).toBeLessThan(20)
        // the oversize update came without payload: asked in a batch, then fetched alone
        expect(live).toContain(`POST /sync/v1/topics/${notes}/documents:batchGet`)
        expect(live).toContain(`GET /sync/v1/topics/${notes}/documents/big`)

        // one pointer-mode row alone: fetched by itself, before the cursor moves past it
        const pointerAt =
          (yield* sql.publish({ topic: workers, docKey: "w1", docVersion: 2, payload: { w: 1, v: 2 }, pointer: true }))!
        yield* waitUntil("w1 v2", () => pointers.get("w1")?.docVersion === 2)
        expect(pointers.get("w1")?.payload).toEqual({ w: 1, v: 2 })
        // persisted with its document, the cursor past it
        const stored = yield* Effect.promise(() => store.load(workers)).pipe(
          Effect.filterOrFail((topic) => (topic?.cursor.watermark ?? 0) >= pointerAt),
          Effect.retry(Schedule.spaced("10 millis").pipe(Schedule.upTo("10 seconds"))),
          Effect.orDie
        )
        expect(stored?.documents.find((d) => d.docKey === "w1")).toMatchObject({ docVersion: 2, watermark: pointerAt })

        // resumed later on the same store with the same filters: what they let in, nothing outside, no re-hydration
        yield* Effect.promise(() => c.close())
        const wireBefore = { events: wire.get(events)!.length, notes: wire.get(notes)!.length }
        const requestsBeforeResume = http.requests.length
        yield* sql.publishAll([
          { topic: events, docKey: "run-1/e9", payload: { i: 9 } },
          { topic: events, docKey: "run-2/e10", payload: { i: 10 } },
          { topic: notes, docKey: "other", docVersion: 3, payload: { o: 3 } },
          { topic: notes, docKey: "small", docVersion: 3, payload: { s: 3 } }
        ])
        const again = yield* client(store)
        const filteredAgain = again.subscribe(events, { filter: { docKeyPrefix: "run-1/" } })
        const chosenAgain = again.subscribe<{ s?: number }>(notes, { filter: { docKeys: ["big", "small", "absent"] } })
        yield* Effect.promise(() => Promise.all([filteredAgain.synced(), chosenAgain.synced()]))
        yield* waitUntil("the rows published while away", () =>
          filteredAgain.get("run-1/e9") !== undefined && chosenAgain.get("small")?.docVersion === 3)
        expect([...filteredAgain.getSnapshot().keys()].sort()).toEqual([
          "run-1/e1",
          "run-1/e3",
          "run-1/e5",
          "run-1/e8",
          "run-1/e9"
        ])
        expect([...chosenAgain.getSnapshot().keys()].sort()).toEqual(["big", "small"])
        expect(wire.get(events)!.length - wireBefore.events).toBe(1)
        expect(wire.get(notes)!.length - wireBefore.notes).toBe(1)
        expect(http.requests.slice(requestsBeforeResume)).toEqual([])
      })),
    { timeout: 180_000 }
  )

  it.live(
    "a first load by pages while a writer creates, updates and deletes ends at exactly the read model",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { client, listings, sql } = yield* setup
        const key = (i: number) => `r${String(i).padStart(3, "0")}`
        yield* sql.publishAll(range(1, 60).map((i) => ({ docKey: key(i), payload: { i, v: 1 } })))
        // the writer runs while the client pages through (7 a page): new keys land before and after the page being
        // read, listed keys get newer versions or are deleted, deleted ones come back
        const versions = new Map(range(1, 60).map((i) => [i, 1]))
        let written = 0
        const writer = yield* Effect.fork(Effect.forEach(range(1, 80), (step) =>
          Effect.gen(function*() {
            written = step
            yield* Effect.sleep("5 millis")
            const i = 1 + ((step * 37) % 90)
            const version = (versions.get(i) ?? 0) + 1
            versions.set(i, version)
            if (step % 5 === 0) yield* removeDocument(sql.client, { docKey: key(i), docVersion: version })
            else yield* sql.publish({ docKey: key(i), docVersion: version, payload: { i, v: version } })
          })))
        const c = yield* client(memoryStore())
        const subscription = c.subscribe(runs)
        yield* Effect.promise(() => subscription.synced())
        // the writer was still at work when the client had listed every page and subscribed
        expect(written).toBeGreaterThan(0)
        expect(written).toBeLessThan(80)
        yield* Fiber.join(writer)
        const head = yield* sql.head(runs)
        const model = yield* readModel(sql.client, runs)
        yield* waitUntil("the read model", () => {
          const mine = held(subscription.getSnapshot())
          return mine.size === model.size && [...model].every(([k, d]) => mine.get(k)?.v === d.v)
        }, { detail: () => ({ head, held: held(subscription.getSnapshot()).size, model: model.size }) })
        expect(held(subscription.getSnapshot())).toEqual(model)
        expect(listings(runs).length).toBeGreaterThan(5)
      })),
    { timeout: 180_000 }
  )
})
