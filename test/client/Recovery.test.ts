/**
 * The client across a server crash (I1, I4): the server is SIGKILLed mid-stream, rows are committed while none runs,
 * and a new server on the same database comes up behind the same address. The client reconnects by itself and, on the
 * wire, resumes exactly after the watermark it had persisted; its cache ends equal to what was published. And a network
 * path that dies silently is noticed by the heartbeat.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { createClient, memoryStore } from "../../src/client/node.js"
import { recordingWebSocket, type WireLog } from "../support/ClientHarness.js"
import { range, signToken, sqlPublisher, startKhala } from "../support/Khala.js"
import { waitUntil } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import { stopServer } from "../support/Processes.js"
import { startProxy } from "../support/TcpProxy.js"

const runs = "runtime.run_summaries"

describe.skipIf(!postgresAvailable)("client, server crash", () => {
  it.live(
    "resumes after SIGKILL and restart at exactly the suffix after its persisted watermark",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const first = yield* startKhala(db.url)
        const proxy = yield* startProxy(first.server.port)
        const sql = yield* sqlPublisher(db.url)
        const store = memoryStore()
        const wire: WireLog = new Map()
        const client = createClient({
          url: proxy.url,
          token: () => signToken({ org: "org_a", scopes: [runs] }),
          store,
          initialLoad: "replay",
          webSocket: recordingWebSocket(wire),
          backoff: { baseMs: 200, maxMs: 1000 }
        })
        yield* Effect.addFinalizer(() => Effect.promise(() => client.close()))
        const subscription = client.subscribe<{ i: number }>(runs)
        yield* Effect.promise(() => subscription.synced())

        // documents r<i>, and one document updated at every step, so the final cache has one version to check
        const publish = (from: number, to: number) =>
          sql.publishAll(
            range(from, to).flatMap((i) => [
              { docKey: `r${i}`, payload: { i } },
              { docKey: "counter", docVersion: i, payload: { i } }
            ])
          )
        const writer = yield* Effect.fork(publish(1, 100))
        yield* waitUntil("the client to reach watermark 20", () => subscription.get("r10") !== undefined)
        expect(yield* stopServer(first.server, "SIGKILL")).toBe("SIGKILL")
        yield* waitUntil("the client to go offline", () => client.state.getSnapshot().status !== "live")
        const persisted = (yield* Effect.promise(() => store.load(runs)))!.cursor.watermark
        const firstSession = [...wire.get(runs)!]

        yield* Fiber.join(writer)
        yield* publish(101, 120)
        const second = yield* startKhala(db.url)
        proxy.retarget(second.server.port)
        const head = yield* sql.head(runs)
        expect(head).toBe(240)
        yield* waitUntil("the client to catch up", () => subscription.getSnapshot().size === 121, { timeoutMs: 30_000 })

        // the first session received 1.. in order (frames still queued when the socket died may be received again)
        expect(firstSession.slice(0, persisted)).toEqual(range(1, persisted))
        // and the resumed session started right after the persisted watermark: no gap, no replay of persisted rows
        const resumed = wire.get(runs)!.slice(firstSession.length)
        expect(resumed).toEqual(range(persisted + 1, head))
        expect(subscription.get("counter")).toMatchObject({ docVersion: 120, payload: { i: 120 } })
        expect(range(1, 120).every((i) => subscription.get(`r${i}`)?.payload.i === i)).toBe(true)
        expect(client.state.getSnapshot().status).toBe("live")
        expect((yield* Effect.promise(() => store.load(runs)))!.cursor.watermark).toBe(head)
      })),
    { timeout: 270_000 }
  )

  it.live(
    "notices a dead connection by its unanswered heartbeat, and reconnects",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { server } = yield* startKhala(db.url)
        const proxy = yield* startProxy(server.port)
        const sql = yield* sqlPublisher(db.url)
        const client = createClient({
          url: proxy.url,
          token: () => signToken({ org: "org_a", scopes: [runs] }),
          initialLoad: "replay",
          heartbeatIntervalMs: 200,
          heartbeatTimeoutMs: 300,
          backoff: { baseMs: 100, maxMs: 200 }
        })
        yield* Effect.addFinalizer(() => Effect.promise(() => client.close()))
        const subscription = client.subscribe(runs)
        yield* Effect.promise(() => subscription.synced())
        const connections = proxy.connectedAt.length
        // the path goes dead without a close on either side: only the heartbeat can tell
        proxy.stallAll()
        yield* sql.publish({ docKey: "after-stall", payload: {} })
        yield* waitUntil("the client to give the connection up", () => client.state.getSnapshot().status !== "live")
        expect(client.state.getSnapshot().error).toMatchObject({ reason: "no heartbeat reply from the server" })
        yield* waitUntil("the row, over a new connection", () => subscription.get("after-stall") !== undefined)
        expect(proxy.connectedAt.length).toBeGreaterThan(connections)
        expect(client.state.getSnapshot().status).toBe("live")
      })),
    { timeout: 180_000 }
  )
})
