/**
 * Draining a node (src/server/Drain.ts, protocol.md §5): two `khala serve` nodes on one database, many subscribed
 * sockets on node A, SIGTERM to A while rows keep being published. A stops taking sockets (`/readyz` and upgrades
 * answer 503), closes every socket with 1001 at times spread over its drain window, and exits 0; each client resumes
 * on node B from its watermark and, across both nodes, sees every row once: no gap, no duplicate (I4).
 *
 * The bench scenario `drain` does the same with 1000 sockets.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { range, sqlPublisher, startKhala, token } from "../support/Khala.js"
import { waitUntil } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import { httpGet, stopServer } from "../support/Processes.js"
import type { RawSocket } from "../support/RawSocket.js"
import { openRaw, upgradeOutcome } from "../support/RawSocket.js"

const runs = "runtime.run_summaries"
const sockets = 200
const windowMs = 2000

const watermarksOf = (raw: RawSocket): Array<number> =>
  raw.frames
    .filter((f) => f[3] === "sync:update_batch")
    .flatMap((f) => f[4].updates.filter((u: any) => u.topic === runs).map((u: any) => Number(u.watermark)))

describe.skipIf(!postgresAvailable)("drain", () => {
  it.live(
    `SIGTERM: ${sockets} sockets closed with 1001 over the window resume on another node without gap or duplicate`,
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        // A logs each socket's close (debug) in JSON: the drain's timing as the server saw it, apart from this
        // process's own load
        const nodeA = yield* startKhala(db.url, {
          KHALA_DRAIN_WINDOW: `${windowMs} millis`,
          KHALA_LOG_FORMAT: "json",
          KHALA_LOG_LEVEL: "debug"
        })
        const nodeB = yield* startKhala(db.url)
        const sql = yield* sqlPublisher(db.url)
        const jwt = yield* token({ org: "org_a", scopes: [runs] })
        yield* sql.publishAll(range(1, 5).map((i) => ({ docKey: `r${i}`, payload: { i } })))

        const onA = yield* Effect.forEach(range(1, sockets), () =>
          Effect.gen(function*() {
            const raw = yield* openRaw({ port: nodeA.server.port, token: jwt })
            let closedAt: number | undefined
            raw.ws.once("close", () => (closedAt = Date.now()))
            yield* raw.request("j", "j", "sync:v1", "phx_join", {})
            yield* raw.request("j", "s", "sync:v1", "sync:subscribe", { topics: [runs] })
            return { raw, closedAt: () => closedAt }
          }), { concurrency: 16 })
        yield* waitUntil("every socket on A to have the first rows", () =>
          onA.every(({ raw }) => watermarksOf(raw).at(-1) === 5))

        // a writer keeps publishing through the drain and the moves to B
        let publishing = true
        let published = 5
        const writer = yield* Effect.gen(function*() {
          while (publishing) {
            published++
            yield* sql.publish({ docKey: `r${published}`, payload: { i: published } })
            yield* Effect.sleep("40 millis")
          }
        }).pipe(Effect.fork)

        // each client, once closed by A, resumes on B from the last watermark it received
        const moved = yield* Effect.forEach(onA, ({ raw }) =>
          Effect.gen(function*() {
            // woken by the close itself: a poll per socket would load this process more than the sockets do
            yield* Effect.async<void>((resume) => {
              if (raw.closed() !== undefined) {
                return resume(Effect.void)
              }
              raw.ws.once("close", () =>
                resume(Effect.void))
            })
            const after = watermarksOf(raw).at(-1) ?? 0
            const onB = yield* openRaw({ port: nodeB.server.port, token: jwt })
            yield* onB.request("j", "j", "sync:v1", "phx_join", {})
            const reply = yield* onB.request("j", "s", "sync:v1", "sync:subscribe", {
              topics: [runs],
              resume_after: [{ topic: runs, watermark: after }]
            })
            expect(reply[4].status).toBe("ok")
            return onB
          }), { concurrency: "unbounded" }).pipe(Effect.fork)

        const signalledAt = Date.now()
        const exit = yield* Effect.fork(stopServer(nodeA.server, "SIGTERM"))
        // while draining, A is not ready and takes no socket
        yield* Effect.gen(function*() {
          while ((yield* httpGet(nodeA.server.url("/readyz"))).status !== 503) yield* Effect.sleep("10 millis")
        }).pipe(Effect.timeout("5 seconds"), Effect.orDie)
        expect(yield* httpGet(nodeA.server.url("/readyz"))).toEqual({ status: 503, body: "draining" })
        const refused = yield* upgradeOutcome({ port: nodeA.server.port, token: jwt })
        expect(refused.status).toBe(503)
        expect(refused.headers?.["retry-after"]).toBeDefined()

        expect(yield* Fiber.join(exit)).toBe(0)
        const onB = yield* Fiber.join(moved)
        yield* Effect.sleep("200 millis")
        publishing = false
        yield* Fiber.join(writer)
        const head = yield* sql.head(runs)
        expect(head).toBe(published)
        yield* waitUntil(
          "every client to reach the head on B",
          () => onB.every((raw) => watermarksOf(raw).at(-1) === head),
          { timeoutMs: 30_000 }
        )

        // every socket got a real 1001 close
        expect(new Set(onA.map(({ raw }) => raw.closed()!.code))).toEqual(new Set([1001]))
        const clientTimes = onA.map(({ closedAt }) => closedAt()! - signalledAt).sort((a, b) => a - b)
        // as A saw them: from the start of its drain to each socket's close, within the window and the cut-off grace
        const log = nodeA.server.output().split("\n").filter((line) => line.startsWith("{")).map((line) =>
          JSON.parse(line)
        )
        const drainStart = Date.parse(log.find((e) => e.message.startsWith("draining")).time)
        const times = log.filter((e) => e.message === "socket closed").map((e) => Date.parse(e.time) - drainStart)
          .sort((a, b) => a - b)
        expect(times).toHaveLength(sockets)
        const quantile = (ts: Array<number>, q: number) => ts[Math.min(ts.length - 1, Math.floor(ts.length * q))]
        yield* Effect.logInfo(
          `drain of ${sockets} sockets over ${windowMs} ms, closes after the drain began (p10, median, p90, last): ` +
            `${[0.1, 0.5, 0.9].map((q) => quantile(times, q)).join(", ")}, ${times.at(-1)} ms on A; ` +
            `${[0.1, 0.5, 0.9].map((q) => quantile(clientTimes, q)).join(", ")}, ${clientTimes.at(-1)} ms ` +
            `after SIGTERM at the clients; A's drain took ${log.find((e) => e.message === "drained")?.elapsedMs} ms; ` +
            `${head} rows`
        )
        // Bounds loose enough for a loaded machine (the bench scenario measures the spread): every close comes within
        // the window and a few seconds of slack, not at once (a drain without jitter closes all at its start).
        expect(times[0]!).toBeGreaterThanOrEqual(0)
        expect(times.at(-1)!).toBeLessThan(windowMs + 8000)
        expect(times.filter((t) => t < windowMs / 10).length).toBeLessThan(sockets * 0.3)
        expect(times.at(-1)! - times[0]!).toBeGreaterThan(windowMs / 2)

        // across both nodes, each client saw every row once
        onA.forEach(({ raw }, i) => {
          expect([...watermarksOf(raw), ...watermarksOf(onB[i]!)]).toEqual(range(1, head))
        })
      })),
    { timeout: 360_000 }
  )
})
