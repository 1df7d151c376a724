/**
 * Socket lifecycle limits (protocol.md §5, §8, I9): a socket that floods frames gets `rate_limited` (with retry_after_ms)
 * on that socket alone; a silent socket is closed after the idle timeout with a resumable code; a socket whose token
 * expires gets `unauthorized` and a resumable close.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { range, sqlPublisher, startKhala, token } from "../support/Khala.js"
import { waitUntil } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import { openRaw } from "../support/RawSocket.js"

const runs = "runtime.run_summaries"

describe.skipIf(!postgresAvailable)("socket lifecycle", () => {
  it.live(
    "rate limit, idle timeout and token expiry each end or refuse only their own socket",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { server } = yield* startKhala(db.url, {
          KHALA_CLIENT_FRAMES_PER_SECOND: "10",
          KHALA_IDLE_TIMEOUT: "2 seconds"
        })
        const sql = yield* sqlPublisher(db.url)
        const jwt = yield* token({ org: "org_a", scopes: [runs] })

        // a bystander that keeps talking (a socket heartbeat every 300 ms) and stays subscribed
        const bystander = yield* openRaw({ port: server.port, token: jwt })
        yield* bystander.request("b", "b", "sync:v1", "phx_join", {})
        yield* bystander.request("b", "bs", "sync:v1", "sync:subscribe", { topics: [runs] })
        let beats = 0
        const keepAlive = yield* Effect.fork(Effect.forever(Effect.zipRight(
          Effect.sleep("300 millis"),
          Effect.suspend(() => bystander.send([null, `ka-${beats++}`, "phoenix", "heartbeat", {}]))
        )))

        // opened now, checked after the flood: a silent socket (idle timeout) and one whose token the server accepts
        // for 2 s more (its exp was 28 s ago, inside the 30 s clock tolerance), kept talking, so that only the expiry
        // can end it
        const silent = yield* openRaw({ port: server.port, token: jwt })
        yield* silent.request("s", "s", "sync:v1", "phx_join", {})
        const silentSince = Date.now()
        const expiring = yield* openRaw({
          port: server.port,
          token: yield* token({ org: "org_a", scopes: [runs], ttlSeconds: -28 })
        })
        yield* expiring.request("e", "e", "sync:v1", "phx_join", {})
        const expiringKeepAlive = yield* Effect.fork(Effect.forever(
          Effect.zipRight(
            Effect.sleep("300 millis"),
            Effect.suspend(() => expiring.send([null, `eka-${Date.now()}`, "phoenix", "heartbeat", {}]))
          ).pipe(Effect.ignore)
        ))

        // flooding: 30 channel frames at once; past 10 per second they are refused with rate_limited
        const flooder = yield* openRaw({ port: server.port, token: jwt })
        yield* flooder.request("f", "f", "sync:v1", "phx_join", {})
        for (const i of range(1, 30)) yield* flooder.send(["f", `h${i}`, "sync:v1", "sync:heartbeat", {}])
        // a refused frame is answered as it arrives, and may overtake the replies of frames still queued
        yield* waitUntil(
          "every flood reply",
          () => range(1, 30).every((i) => flooder.frames.some((f) => f[3] === "phx_reply" && f[1] === `h${i}`))
        )
        const replies = range(1, 30).map((i) =>
          flooder.frames.find((f) => f[3] === "phx_reply" && f[1] === `h${i}`)![4]
        )
        const limited = replies.filter((r) => r.status === "error")
        yield* Effect.logInfo(`lifecycle: ${limited.length} of 30 flooded frames rate limited`)
        expect(limited.length).toBeGreaterThan(0)
        expect(replies.filter((r) => r.status === "ok").length).toBeGreaterThan(0)
        for (const r of limited) {
          expect(r.response).toMatchObject({ code: "rate_limited", retry_after_ms: expect.any(Number) })
          expect(r.response.retry_after_ms).toBeGreaterThan(0)
        }
        // after a pause the socket answers again, socket heartbeats (which count too) and channel frames alike
        yield* Effect.sleep("1100 millis")
        expect((yield* flooder.barrier("after-flood"))[4]).toEqual({ status: "ok", response: {} })
        expect((yield* flooder.request("f", "again", "sync:v1", "sync:heartbeat", {}))[4].status).toBe("ok")

        // idle: the silent socket is closed with a resumable code after KHALA_IDLE_TIMEOUT
        yield* waitUntil("the idle socket to be closed", () => silent.closed() !== undefined, { timeoutMs: 15_000 })
        yield* Effect.logInfo(
          `lifecycle: idle socket closed after ${Date.now() - silentSince} ms with ${silent.closed()!.code}`
        )
        expect(silent.closed()!.code).not.toBe(1000)
        expect(silent.closed()!.code).not.toBe(1006)

        // token expiry: unauthorized push, then a resumable close (the client refreshes its token and resumes)
        yield* waitUntil("the expired token's socket to be closed", () => expiring.closed() !== undefined, {
          timeoutMs: 15_000,
          detail: () => expiring.frames.slice(-5)
        })
        yield* Fiber.interrupt(expiringKeepAlive)
        expect(expiring.closed()!.code).not.toBe(1000)
        expect(expiring.closed()!.code).not.toBe(1006)
        expect(expiring.pushes("sync:error")).toContainEqual(expect.objectContaining({ code: "unauthorized" }))

        // the bystander was neither limited nor closed, and still receives
        yield* sql.publishAll(range(1, 3).map((i) => ({ docKey: `r${i}`, payload: { i } })))
        yield* bystander.waitForFrame(
          "row 3 on the bystander",
          (f) => f[3] === "sync:update_batch" && f[4].updates.some((u: any) => u.watermark === 3)
        )
        yield* Fiber.interrupt(keepAlive)
        expect(bystander.closed()).toBe(undefined)
        expect(bystander.frames.filter((f) => f[3] === "phx_reply" && f[4].status === "error")).toEqual([])
        expect(server.process.exitCode).toBe(null)
      })),
    { timeout: 180_000 }
  )
})
