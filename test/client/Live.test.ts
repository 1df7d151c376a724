/**
 * The client against a real `khala serve`: it replays and goes live, applies by version, persists its cursor with its
 * documents so that a client started later on the same store resumes exactly after them, and reports a forbidden topic
 * on that topic alone. The Effect service streams the same changes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import { createClient, KhalaClient, memoryStore } from "../../src/client/node.js"
import { recordingWebSocket, removeDocument, type WireLog } from "../support/ClientHarness.js"
import { range, signToken, sqlPublisher, startKhala } from "../support/Khala.js"
import { waitUntil } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"

const runs = "runtime.run_summaries"
const notes = "runtime.notifications"

describe.skipIf(!postgresAvailable)("client, live", () => {
  it.live(
    "replays, goes live, applies only newer versions, and a later client on the same store resumes after them",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { server } = yield* startKhala(db.url)
        const sql = yield* sqlPublisher(db.url)
        yield* sql.publishAll(range(1, 5).map((i) => ({ docKey: `r${i}`, payload: { i } })))
        const store = memoryStore()
        const wire: WireLog = new Map()
        const options = {
          url: server.url(""),
          token: () => signToken({ org: "org_a", scopes: [runs] }),
          store,
          initialLoad: "replay" as const,
          webSocket: recordingWebSocket(wire)
        }
        const first = createClient(options)
        const subscription = first.subscribe<{ i: number; v?: number }>(runs)
        yield* Effect.promise(() => subscription.synced())
        expect(first.state.getSnapshot().status).toBe("live")
        expect([...subscription.getSnapshot().keys()].sort()).toEqual(range(1, 5).map((i) => `r${i}`).sort())

        // live: new documents, a newer version, and a stale version the read model refuses
        yield* sql.publishAll([
          { docKey: "r6", payload: { i: 6 } },
          { docKey: "r1", docVersion: 3, payload: { i: 1, v: 3 } },
          { docKey: "r1", docVersion: 2, payload: { i: 1, v: 2 } }
        ])
        yield* waitUntil(
          "r6 and r1 v3",
          () => subscription.get("r6") !== undefined && subscription.get("r1")?.docVersion === 3
        )
        expect(subscription.get("r1")?.payload).toEqual({ i: 1, v: 3 })
        const persisted = yield* Effect.promise(() => store.load(runs))
        expect(persisted?.cursor.watermark).toBe(yield* sql.head(runs))
        yield* Effect.promise(() => first.close())
        expect(first.state.getSnapshot().status).toBe("closed")

        // while no client runs
        yield* sql.publishAll(range(7, 9).map((i) => ({ docKey: `r${i}`, payload: { i } })))
        const before = wire.get(runs)!.length
        const second = createClient(options)
        const again = second.subscribe<{ i: number }>(runs)
        const sizes: Array<number> = []
        again.subscribe(() => sizes.push(again.getSnapshot().size))
        // the cache is there before the server answers: the first change the app sees is the stored documents
        yield* waitUntil("the stored cache", () => sizes.length > 0)
        expect(sizes[0]).toBe(6)
        yield* Effect.promise(() => again.synced())
        yield* waitUntil("r9", () => again.get("r9") !== undefined)
        expect(wire.get(runs)!.slice(before)).toEqual(range(persisted!.cursor.watermark + 1, yield* sql.head(runs)))
        expect(again.getSnapshot().size).toBe(9)
        yield* Effect.promise(() => second.close())
      })),
    { timeout: 180_000 }
  )

  it.live(
    "drops deleted documents, live and when resuming, and takes a document created again after its delete",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { server } = yield* startKhala(db.url)
        const sql = yield* sqlPublisher(db.url)
        yield* sql.publishAll(range(1, 3).map((i) => ({ docKey: `r${i}`, payload: { i } })))
        const store = memoryStore()
        const options = {
          url: server.url(""),
          token: () => signToken({ org: "org_a", scopes: [runs] }),
          store,
          initialLoad: "replay" as const
        }
        const first = createClient(options)
        const live = first.subscribe<{ i: number }>(runs)
        yield* Effect.promise(() => live.synced())
        yield* removeDocument(sql.client, { docKey: "r2", docVersion: 2 })
        yield* waitUntil("r2 dropped", () => live.get("r2") === undefined)
        expect([...live.getSnapshot().keys()].sort()).toEqual(["r1", "r3"])
        const stored = yield* Effect.promise(() => store.load(runs))
        expect(stored?.documents.map((d) => d.docKey).sort()).toEqual(["r1", "r3"])
        yield* Effect.promise(() => first.close())

        // while the client is away: another delete, and r2 created again at a newer version
        yield* removeDocument(sql.client, { docKey: "r3", docVersion: 2 })
        yield* sql.publish({ docKey: "r2", docVersion: 3, payload: { i: 2 } })
        const second = createClient(options)
        const resumed = second.subscribe<{ i: number }>(runs)
        yield* Effect.promise(() => resumed.synced())
        yield* waitUntil("r2 back", () => resumed.get("r2")?.docVersion === 3)
        expect([...resumed.getSnapshot().keys()].sort()).toEqual(["r1", "r2"])
        yield* Effect.promise(() => second.close())
      })),
    { timeout: 180_000 }
  )

  it.live(
    "a forbidden topic fails alone, refused by the subscribe or by hydration; the others are followed",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { server } = yield* startKhala(db.url)
        const sql = yield* sqlPublisher(db.url)
        yield* sql.publish({ docKey: "r1", payload: { i: 1 } })
        // a first load by replay meets the subscribe's refusal; one by hydration the listing's 403
        for (const initialLoad of ["replay", "hydrate"] as const) {
          const client = createClient({
            url: server.url(""),
            token: () => signToken({ org: "org_a", scopes: [runs] }),
            initialLoad
          })
          const allowed = client.subscribe(runs)
          const forbidden = client.subscribe(notes)
          const refusal = yield* Effect.promise(() =>
            forbidden.synced().then(() => undefined, (error: unknown) => error)
          )
          expect(refusal, initialLoad).toMatchObject({ _tag: "ForbiddenTopic", topic: notes })
          expect(forbidden.status.getSnapshot().error).toMatchObject({ _tag: "ForbiddenTopic" })
          yield* Effect.promise(() => allowed.synced())
          expect(allowed.get("r1")?.payload).toEqual({ i: 1 })
          expect(client.state.getSnapshot().status).toBe("live")
          yield* Effect.promise(() => client.close())
        }
      })),
    { timeout: 180_000 }
  )

  it.live("the Effect service streams each persisted step's changes", () =>
    Effect.scoped(Effect.gen(function*() {
      const db = yield* testDatabase
      const { server } = yield* startKhala(db.url)
      const sql = yield* sqlPublisher(db.url)
      const program = Effect.gen(function*() {
        const client = yield* KhalaClient
        const topic = yield* client.subscribe<{ i: number }>(runs)
        yield* topic.synced
        const seen: Array<string> = []
        const received = yield* topic.changes.pipe(
          Stream.flatMap((changes) => Stream.fromIterable(changes.upserted)),
          Stream.map((document) => document.docKey),
          Stream.tap((docKey) => Effect.sync(() => seen.push(docKey))),
          Stream.takeUntil((docKey) => docKey === "r10"),
          Stream.runCollect,
          Effect.fork
        )
        // The stream listens once its fiber runs: publish r1 (in newer versions) until it has seen one.
        for (let version = 1; seen.length === 0; version++) {
          yield* sql.publish({ docKey: "r1", docVersion: version, payload: { i: 1 } })
          yield* Effect.sleep("50 millis")
        }
        yield* sql.publishAll(range(2, 10).map((i) => ({ docKey: `r${i}`, payload: { i } })))
        expect([...new Set(yield* Fiber.join(received))]).toEqual(range(1, 10).map((i) => `r${i}`))
        expect((yield* topic.documents).size).toBe(10)
        const latest = yield* topic.snapshots.pipe(Stream.filter((documents) => documents.size === 10), Stream.runHead)
        expect(latest._tag === "Some" && latest.value.get("r10")?.payload).toEqual({ i: 10 })
        expect(yield* topic.get("r3")).toMatchObject({ _tag: "Some", value: { payload: { i: 3 } } })
      })
      yield* program.pipe(
        Effect.scoped,
        Effect.provide(KhalaClient.layer({
          url: server.url(""),
          token: () => signToken({ org: "org_a", scopes: [runs] }),
          initialLoad: "replay"
        }))
      )
    })), { timeout: 180_000 })
})
