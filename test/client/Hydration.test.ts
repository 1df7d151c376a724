/**
 * Recovery over HTTP hydration (protocol.md §6, §11), with the socket on a real `khala serve` and the hydration answered by a
 * stand-in reading the same database (`HydrationStandIn`) until the server has the endpoints:
 * - a first load hydrates by pages and subscribes from the snapshot watermark: nothing at or below it is replayed;
 * - pointer-mode rows (no payload, `hydration_required`) are fetched in batches;
 * - filters narrow hydration and delivery alike;
 * - a cursor past the head (a restored database) or below the retention floor (pruned) gets `stale_cursor`, and the
 *   client hydrates, resets its cursor, resubscribes, and holds exactly the read model, retrying a failed hydration.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type pg from "pg"
import { createClient, memoryStore, type WatermarkStore } from "../../src/client/node.js"
import { recordingWebSocket, removeDocument, type WireLog } from "../support/ClientHarness.js"
import { startStandIn } from "../support/HydrationStandIn.js"
import { range, signToken, sqlPublisher, startKhala } from "../support/Khala.js"
import { waitUntil } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import { runCli } from "../support/Processes.js"

const runs = "runtime.run_summaries"
const workers = "runtime.codex_worker_summaries"
const events = "runtime.codex_worker_events"
const notes = "runtime.notifications"
const scopes = [runs, workers, events, notes]

/** The read model of a topic for org_a, as the client should hold it. */
const readModel = (client: pg.Client, topic: string) =>
  Effect.promise(async () => {
    const rows = await client.query(
      "select doc_key, doc_version, payload from khala.sync_documents where topic = $1 and org_id = 'org_a' and not deleted",
      [topic]
    )
    return new Map(rows.rows.map((row) => [row.doc_key as string, { v: Number(row.doc_version), p: row.payload }]))
  })

const held = (snapshot: ReadonlyMap<string, { docVersion: number; payload: unknown }>) =>
  new Map([...snapshot].map(([key, document]) => [key, { v: document.docVersion, p: document.payload }]))

const setup = Effect.gen(function*() {
  const db = yield* testDatabase
  const khala = yield* startKhala(db.url)
  const sql = yield* sqlPublisher(db.url)
  const standIn = yield* startStandIn({ databaseUrl: db.url, serverPort: khala.server.port })
  const wire: WireLog = new Map()
  const client = (store: WatermarkStore, initialLoad: "hydrate" | "replay" = "hydrate") => {
    const client = createClient({
      url: standIn.url,
      token: () => signToken({ org: "org_a", scopes }),
      store,
      initialLoad,
      hydrationPageSize: 7,
      webSocket: recordingWebSocket(wire),
      backoff: { baseMs: 100, maxMs: 500 }
    })
    return Effect.as(Effect.addFinalizer(() => Effect.promise(() => client.close())), client)
  }
  return { db, khala, sql, standIn, wire, client }
})

describe.skipIf(!postgresAvailable)("client, hydration", () => {
  it.live(
    "first load by pages from the snapshot; pointer rows fetched in batches; filters",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { client, sql, standIn, wire } = yield* setup
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
        const c = yield* client(memoryStore())
        const summaries = c.subscribe(runs)
        const filtered = c.subscribe(events, { filter: { docKeyPrefix: "run-1/" } })
        const pointers = c.subscribe(workers)
        yield* Effect.promise(() => Promise.all([summaries.synced(), filtered.synced(), pointers.synced()]))
        expect(held(summaries.getSnapshot())).toEqual(yield* readModel(sql.client, runs))
        expect(summaries.get("r03")?.payload).toEqual({ i: 3, v: 2 })
        expect(wire.get(runs) ?? []).toEqual([])
        expect(standIn.requests.filter((r) => r.startsWith(`GET /sync/v1/topics/${runs}/documents?`)).length).toBe(5)
        expect([...filtered.getSnapshot().keys()].sort()).toEqual(["run-1/e1", "run-1/e3", "run-1/e5"])
        // an empty topic is hydrated once, at watermark 0
        expect(standIn.requests.filter((r) => r.startsWith(`GET /sync/v1/topics/${workers}/documents?`))).toHaveLength(
          1
        )

        // live after the snapshot; filtered rows stay out; pointer-mode rows are fetched, several in one batchGet
        yield* sql.publishAll([
          { docKey: "r31", payload: { i: 31 } },
          { topic: events, docKey: "run-2/e7", payload: { i: 7 } },
          { topic: events, docKey: "run-1/e8", payload: { i: 8 } },
          ...range(1, 20).map((i) => ({ topic: workers, docKey: `w${i}`, payload: { w: i }, pointer: true }))
        ])
        yield* waitUntil("the live rows", () =>
          summaries.get("r31") !== undefined && filtered.get("run-1/e8") !== undefined &&
          pointers.getSnapshot().size === 20)
        expect(wire.get(runs)).toEqual([41])
        expect(filtered.get("run-2/e7")).toBeUndefined()
        expect(pointers.get("w7")?.payload).toEqual({ w: 7 })
        expect(held(pointers.getSnapshot())).toEqual(yield* readModel(sql.client, workers))
        const batchGets = standIn.requests.filter((r) =>
          r === `POST /sync/v1/topics/${workers}/documents:batchGet`
        )
        expect(batchGets.length).toBeGreaterThan(0)
        expect(batchGets.length).toBeLessThan(20)
      })),
    { timeout: 60_000 }
  )

  it.live(
    "a cursor past the head (a restored database) is stale: hydrate, reset, resubscribe, exact read model",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { client, sql, standIn, wire } = yield* setup
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
        standIn.failNext(1)
        const c = yield* client(store, "replay")
        const subscription = c.subscribe(notes)
        yield* Effect.promise(() => subscription.synced())
        expect(held(subscription.getSnapshot())).toEqual(yield* readModel(sql.client, notes))
        expect(subscription.get("ghost")).toBeUndefined()
        expect(subscription.get("n5")).toBeUndefined()
        const epoch = (yield* Effect.promise(() =>
          sql.client.query("select epoch from khala.sync_topic_sequences where topic = $1", [notes])
        )).rows[0].epoch
        expect(
          (yield* Effect.promise(() =>
            store.load(notes)
          ))?.cursor
        ).toMatchObject({ watermark: 13, epoch })
        // the injected failure was retried
        expect(standIn.requests.filter((r) => r.startsWith(`GET /sync/v1/topics/${notes}/documents?`)).length).toBe(3)
        yield* sql.publish({ topic: notes, docKey: "n13", payload: { i: 13 } })
        yield* waitUntil("n13", () => subscription.get("n13") !== undefined)
        expect(wire.get(notes)).toEqual([14])
      })),
    { timeout: 60_000 }
  )

  it.live(
    "a prune past the client's watermark is recovered to exactly the read model",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { client, khala, sql } = yield* setup
        yield* sql.publishAll(range(1, 10).map((i) => ({ docKey: `r${i}`, payload: { i } })))
        const store = memoryStore()
        const first = yield* client(store, "replay")
        const before = first.subscribe(runs)
        yield* Effect.promise(() => before.synced())
        yield* Effect.promise(() => first.close())

        // while the client is away: updates, new documents, then retention prunes past its watermark
        yield* sql.publishAll(range(1, 5).map((i) => ({ docKey: `r${i}`, docVersion: 2, payload: { i, v: 2 } })))
        yield* sql.publishAll(range(11, 15).map((i) => ({ docKey: `r${i}`, payload: { i } })))
        const pruned = yield* runCli(["retention", "prune", "--topic", runs, "--before-watermark", "18"], khala.env)
        expect(pruned.code).toBe(0)

        const second = yield* client(store, "replay")
        const after = second.subscribe(runs)
        yield* Effect.promise(() => after.synced())
        expect(held(after.getSnapshot())).toEqual(yield* readModel(sql.client, runs))
        expect(after.get("r2")?.payload).toEqual({ i: 2, v: 2 })
        expect((yield* Effect.promise(() => store.load(runs)))?.cursor.watermark).toBe(20)
      })),
    { timeout: 60_000 }
  )
})
