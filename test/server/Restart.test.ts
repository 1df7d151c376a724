/**
 * Resume across a server crash (I1, I4): a SIGKILLed server holds nothing a client needs; a new server on the same
 * database serves the exact suffix after the client's persisted watermark, including rows committed while no
 * server ran.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { range, sqlPublisher, startKhala, token } from "../support/Khala.js"
import { connectJoined, subscribeOk, waitUntil } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import { stopServer } from "../support/Processes.js"

const runs = "runtime.run_summaries"

describe.skipIf(!postgresAvailable)("resume after SIGKILL of the server", () => {
  it.live(
    "a new server on the same database resumes the client at exactly the suffix",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const first = yield* startKhala(db.url)
        const sql = yield* sqlPublisher(db.url)
        const jwt = yield* token({ org: "org_a", scopes: [runs] })
        yield* sql.publishAll(range(1, 10).map((i) => ({ docKey: `r${i}`, payload: { i } })))

        const before = yield* connectJoined({ port: first.server.port, token: jwt })
        yield* subscribeOk(before.client, { topics: [runs] })
        const writer = yield* Effect.fork(
          sql.publishAll(range(11, 60).map((i) => ({ docKey: `r${i}`, payload: { i } })))
        )
        yield* before.client.waitForWatermark(runs, 20)

        // the server dies mid-stream; the client keeps what it had received when the socket dropped
        expect(yield* stopServer(first.server, "SIGKILL")).toBe("SIGKILL")
        yield* waitUntil("the client to see the socket close", () => before.client.closes.length > 0)
        const seen = [...before.client.batches]
        yield* before.client.disconnect
        const persisted = before.client.persisted(runs, seen) ?? 0
        const firstSession = seen.flatMap((b) => b.updates).map((u) => u.watermark)
        expect(firstSession).toEqual(range(1, persisted))

        // rows committed while no server runs
        yield* Fiber.join(writer)
        yield* sql.publishAll(range(61, 70).map((i) => ({ docKey: `r${i}`, payload: { i } })))

        const second = yield* startKhala(db.url)
        const after = yield* connectJoined({ port: second.server.port, token: jwt })
        const reply = yield* subscribeOk(after.client, {
          topics: [runs],
          resume_after: [{ topic: runs, watermark: persisted }]
        })
        expect(reply.current_watermarks).toEqual([{ topic: runs, watermark: persisted, epoch: expect.any(String) }])
        yield* after.client.waitForReplayComplete(runs)
        // and live on the new server
        yield* sql.publishAll(range(71, 75).map((i) => ({ docKey: `r${i}`, payload: { i } })))
        yield* after.client.waitForWatermark(runs, 75)

        expect(after.client.watermarks(runs)).toEqual(range(persisted + 1, 75))
        expect([...firstSession, ...after.client.watermarks(runs)]).toEqual(range(1, 75))
        expect(after.client.updates(runs).map((u) => u.payload)).toEqual(range(persisted + 1, 75).map((i) => ({ i })))
        expect(yield* stopServer(second.server)).toBe(0)
      })),
    { timeout: 180_000 }
  )
})
