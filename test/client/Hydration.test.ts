/**
 * Recovery over HTTP hydration (protocol.md §6, §11), against a real `khala serve`, socket and hydration alike:
 * - a first load hydrates by pages and subscribes from the snapshot watermark: nothing at or below it is replayed;
 * - pointer-mode rows (no payload, `hydration_required`) are fetched with `documents:batchGet`, several at once, and a
 *   document over the per-update limit alone with `GET …/documents/{doc_key}`;
 * - filters by prefix and by keys narrow hydration and delivery alike;
 * - a cursor past the head (a restored database), one below the retention floor (`khala retention run` pruned past
 *   it) and one of another epoch (`khala topic reset`) get `stale_cursor`, and the client hydrates by pages, resets
 *   its cursor, resubscribes, and holds exactly the read model, retrying a failed hydration.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Schedule } from "effect"
import type pg from "pg"
import { createClient, memoryStore, type WatermarkStore } from "../../src/client/node.js"
import { recordingFetch, recordingWebSocket, removeDocument, type WireLog } from "../support/ClientHarness.js"
import { range, signToken, sqlPublisher, startKhala } from "../support/Khala.js"
import { waitUntil } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import { runCli } from "../support/Processes.js"
import { startProxy } from "../support/TcpProxy.js"

const runs = "runtime.run_summaries"
const workers = "runtime.codex_worker_summaries"
const events = "runtime.codex_worker_events"
const notes = "runtime.notifications"
/** A topic of the test's own, whose journal `khala retention run` prunes entirely (retention 1 ms). */
const short = "test.short_lived"
const scopes = [runs, workers, events, notes, short]
const serverEnv = {
  KHALA_TOPICS: JSON.stringify([{ wire_name: short, retention_ms: 1 }]),
  // retention runs when the test says so, not on the server's schedule
  KHALA_RETENTION: "false"
}

/** The read model of a topic for org_a, as the client should hold it. */
const readModel = (client: pg.Client, topic: string) =>
  Effect.promise(async () => {
    const rows = await client.query(
      "select doc_key, doc_version, payload from khala.sync_documents where topic = $1 and org_id = 'org_a' and not deleted",
      [topic]
    )
    return new Map(rows.rows.map((row) => [row.doc_key as string, { v: Number(row.doc_version), p: row.payload }]))
  })

const epochOf = (client: pg.Client, topic: string) =>
  Effect.promise(() => client.query("select epoch from khala.sync_topic_sequences where topic = $1", [topic])).pipe(
    Effect.map((result) => result.rows[0].epoch as string)
  )

const held = (snapshot: ReadonlyMap<string, { docVersion: number; payload: unknown }>) =>
  new Map([...snapshot].map(([key, document]) => [key, { v: document.docVersion, p: document.payload }]))

const setup = Effect.gen(function*() {
  const db = yield* testDatabase
  const khala = yield* startKhala(db.url, serverEnv)
  const proxy = yield* startProxy(khala.server.port)
  const sql = yield* sqlPublisher(db.url)
  const http = recordingFetch()
  const wire: WireLog = new Map()
  const client = (store: WatermarkStore, initialLoad: "hydrate" | "replay" = "hydrate") => {
    const client = createClient({
      url: proxy.url,
      token: () => signToken({ org: "org_a", scopes }),
      store,
      initialLoad,
      hydrationPageSize: 7,
      fetch: http.fetch,
      webSocket: recordingWebSocket(wire),
      backoff: { baseMs: 100, maxMs: 500 }
    })
    return Effect.as(Effect.addFinalizer(() => Effect.promise(() => client.close())), client)
  }
  const listings = (topic: string) =>
    http.requests.filter((r) => r.startsWith(`GET /sync/v1/topics/${topic}/documents?`))
  return { db, khala, proxy, sql, http, wire, client, listings }
})

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
    { timeout: 60_000 }
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
    { timeout: 60_000 }
  )

  it.live(
    "a cursor past the head (a restored database) is stale: hydrate, reset, resubscribe, exact read model",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { client, http, listings, sql, wire } = yield* setup
        yield* sql.publishAll(range(1, 12).map((i) => ({ topic: notes, docKey: `n${i}`, payload: { i } })))
        // a tombstone: listed by no page, so absent from the hydrated cache
        expect(yield* removeDocument(sql.client, { topic: notes, docKey: "n5", docVersion: 2 })).toBe(13)
        const store = memoryStore()
        // what the client had from the database before the restore: further ahead, and a document it no longer has
        yield* Effect.promise(() =>
          store.commit([{
            topic: notes,
            cursor: { watermark: 500, epoch: null, filter: "" },
            put: [{ docKey: "ghost", docVersion: 9, payload: {}, payloadHash: null, watermark: 480 }],
            remove: [],
            replace: false
          }])
        )
        http.failNext(1)
        const c = yield* client(store, "replay")
        const subscription = c.subscribe(notes)
        yield* Effect.promise(() => subscription.synced())
        expect(held(subscription.getSnapshot())).toEqual(yield* readModel(sql.client, notes))
        expect(subscription.get("ghost")).toBeUndefined()
        expect(subscription.get("n5")).toBeUndefined()
        expect((yield* Effect.promise(() => store.load(notes)))?.cursor).toMatchObject({
          watermark: 13,
          epoch: yield* epochOf(sql.client, notes)
        })
        // the injected failure, then the two pages of 11 documents
        expect(listings(notes).length).toBe(3)
        yield* sql.publish({ topic: notes, docKey: "n13", payload: { i: 13 } })
        yield* waitUntil("n13", () => subscription.get("n13") !== undefined)
        expect(wire.get(notes)).toEqual([14])
      })),
    { timeout: 60_000 }
  )

  it.live(
    "a prune past the client's watermark (khala retention run) is recovered to exactly the read model",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { client, khala, listings, sql, wire } = yield* setup
        yield* sql.publishAll(range(1, 10).map((i) => ({ topic: short, docKey: `s${i}`, payload: { i } })))
        const store = memoryStore()
        const first = yield* client(store, "replay")
        const before = first.subscribe(short)
        yield* Effect.promise(() => before.synced())
        yield* waitUntil("watermark 10 persisted", () => before.get("s10") !== undefined)
        yield* Effect.promise(() => first.close())
        expect(wire.get(short)).toEqual(range(1, 10))

        // while the client is away: updates, new documents, a delete, then retention prunes the whole journal
        yield* sql.publishAll(
          range(1, 5).map((i) => ({ topic: short, docKey: `s${i}`, docVersion: 2, payload: { i, v: 2 } }))
        )
        yield* sql.publishAll(range(11, 15).map((i) => ({ topic: short, docKey: `s${i}`, payload: { i } })))
        expect(yield* removeDocument(sql.client, { topic: short, docKey: "s7", docVersion: 2 })).toBe(21)
        yield* Effect.sleep("10 millis")
        const pruned = yield* runCli(["retention", "run"], khala.env)
        expect(pruned.stdout + pruned.stderr).toContain(`of ${short}; retention floor is now 21`)

        const second = yield* client(store, "replay")
        const after = second.subscribe<{ i: number; v?: number }>(short)
        yield* Effect.promise(() => after.synced())
        expect(held(after.getSnapshot())).toEqual(yield* readModel(sql.client, short))
        expect(after.get("s2")?.payload).toEqual({ i: 2, v: 2 })
        expect(after.get("s7")).toBeUndefined()
        expect((yield* Effect.promise(() => store.load(short)))?.cursor.watermark).toBe(21)
        // recovered by pages (14 documents, 7 a page), not by a replay: nothing more came over the socket
        expect(listings(short).length).toBeGreaterThanOrEqual(2)
        expect(wire.get(short)).toEqual(range(1, 10))
        // and resubscribed from the snapshot: live again
        yield* sql.publish({ topic: short, docKey: "s16", payload: { i: 16 } })
        yield* waitUntil("s16", () => after.get("s16") !== undefined)
        expect(wire.get(short)).toEqual([...range(1, 10), 22])
      })),
    { timeout: 60_000 }
  )

  it.live(
    "a journal reset (khala topic reset) is told as epoch_changed at the next connect: re-hydrated, new epoch kept",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { client, khala, listings, proxy, sql } = yield* setup
        yield* sql.publishAll(range(1, 8).map((i) => ({ topic: notes, docKey: `n${i}`, payload: { i } })))
        const store = memoryStore()
        const c = yield* client(store)
        const subscription = c.subscribe<{ i: number; v?: number }>(notes)
        yield* Effect.promise(() => subscription.synced())
        const oldEpoch = yield* epochOf(sql.client, notes)
        expect((yield* Effect.promise(() => store.load(notes)))?.cursor.epoch).toBe(oldEpoch)
        expect(listings(notes)).toHaveLength(2)

        // a restore: the journal is reset, and the read model changes in ways no journal row tells
        const reset = yield* runCli(["topic", "reset", "--topic", notes], khala.env)
        expect(reset.code, reset.stderr).toBe(0)
        const newEpoch = yield* epochOf(sql.client, notes)
        expect(newEpoch).not.toBe(oldEpoch)
        yield* Effect.promise(() =>
          sql.client.query(
            "update khala.sync_documents set doc_version = 5, payload = '{\"i\": 3, \"v\": 5}' " +
              "where topic = $1 and doc_key = 'n3'",
            [notes]
          )
        )
        yield* Effect.promise(() =>
          sql.client.query(
            "update khala.sync_documents set deleted = true, payload = null, payload_hash = null, doc_version = 9 " +
              "where topic = $1 and doc_key = 'n4'",
            [notes]
          )
        )
        // the connection drops (the restore restarted the servers): the client resumes with its old epoch
        proxy.dropAll()
        yield* waitUntil(
          "re-hydrated",
          () => subscription.get("n4") === undefined && subscription.get("n3")?.docVersion === 5,
          {
            detail: () => ({
              requests: listings(notes),
              state: c.state.getSnapshot(),
              keys: [...subscription.getSnapshot().keys()]
            })
          }
        )
        expect(listings(notes).length).toBeGreaterThan(2)
        yield* Effect.promise(() => subscription.synced())
        expect(held(subscription.getSnapshot())).toEqual(yield* readModel(sql.client, notes))
        expect(subscription.get("n3")?.payload).toEqual({ i: 3, v: 5 })
        yield* waitUntil(
          "the new epoch persisted",
          () => c.state.getSnapshot().status === "live"
        )
        expect((yield* Effect.promise(() => store.load(notes)))?.cursor.epoch).toBe(newEpoch)
        // and followed live in the new epoch
        yield* sql.publish({ topic: notes, docKey: "n9", payload: { i: 9 } })
        yield* waitUntil("n9", () => subscription.get("n9") !== undefined)
        expect((yield* Effect.promise(() => store.load(notes)))?.cursor).toMatchObject({
          watermark: yield* sql.head(notes),
          epoch: newEpoch
        })
      })),
    { timeout: 60_000 }
  )
})
