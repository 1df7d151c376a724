/**
 * 100 clients cut off at the same instant by a server crash come back spread out once a new server is up: full-jitter
 * backoff, measured per client (when each opened the socket that reached the new server) and from outside the clients
 * (the proxy's accept times). Clients retrying at a fixed delay would all come back within one instant; these must never put more than a
 * fifth of themselves into any 50 ms. Every one of them resumes with what was published meanwhile.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import WebSocket from "ws"
import type { WebSocketConstructor } from "../../src/client/Connection.js"
import { createClient } from "../../src/client/node.js"
import { range, signToken, sqlPublisher, startKhala } from "../support/Khala.js"
import { waitUntil } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import { stopServer } from "../support/Processes.js"
import { startProxy } from "../support/TcpProxy.js"

const runs = "runtime.run_summaries"
const clients = 100
const baseMs = 3000
const windowMs = 50

/** The most of `times` (sorted) that fall within any window of `width` ms. */
const densest = (times: ReadonlyArray<number>, width: number) => {
  let most = 0
  for (let i = 0, j = 0; j < times.length; j++) {
    while (times[j]! - times[i]! >= width) i++
    most = Math.max(most, j - i + 1)
  }
  return most
}

describe.skipIf(!postgresAvailable)("client, many reconnecting at once", () => {
  it.live(
    "after a server crash and restart, spread their reconnects over the backoff window instead of bursting",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const first = yield* startKhala(db.url)
        const proxy = yield* startProxy(first.server.port)
        const sql = yield* sqlPublisher(db.url)
        yield* sql.publish({ docKey: "before", payload: {} })
        const token = yield* Effect.promise(() => signToken({ org: "org_a", scopes: [runs] }))
        // per client, when it opened the first socket after the crash that reached a server: its connect time, as
        // the client chose it (the server's answer, slower when it is busy, does not move it)
        const backAt = new Map<number, number>()
        let crashedAt = Infinity
        const all = range(1, clients).map((n) => {
          class Timed extends WebSocket {
            constructor(url: string, protocols?: string | Array<string>) {
              super(url, protocols)
              const openedAt = performance.now()
              this.once("open", () => {
                if (openedAt > crashedAt && !backAt.has(n)) backAt.set(n, openedAt)
              })
            }
          }
          return createClient({
            url: proxy.url,
            token: () => token,
            initialLoad: "replay",
            backoff: { baseMs, maxMs: baseMs, stableAfterMs: 0 },
            webSocket: Timed as unknown as WebSocketConstructor
          })
        })
        yield* Effect.addFinalizer(() => Effect.promise(() => Promise.all(all.map((client) => client.close()))))
        const subscriptions = all.map((client) => client.subscribe(runs))
        const allLive = () => all.every((client) => client.state.getSnapshot().status === "live")
        yield* waitUntil("every client live", allLive, { timeoutMs: 30_000 })
        yield* waitUntil("every client has the first row", () => subscriptions.every((s) => s.get("before")))

        const acceptedBefore = proxy.connectedAt.length
        crashedAt = performance.now()
        expect(yield* stopServer(first.server, "SIGKILL")).toBe("SIGKILL")
        yield* waitUntil("every client offline", () => all.every((c) => c.state.getSnapshot().status !== "live"))
        // published while no server runs
        yield* sql.publishAll(range(1, 5).map((i) => ({ docKey: `during-${i}`, payload: { i } })))
        const second = yield* startKhala(db.url)
        const upAt = performance.now()
        proxy.retarget(second.server.port)
        yield* waitUntil("every client live again", () => backAt.size === clients && allLive(), { timeoutMs: 30_000 })
        yield* waitUntil(
          "every client has what was published meanwhile",
          () => subscriptions.every((s) => s.get("during-5") !== undefined && s.getSnapshot().size === 6)
        )

        const times = [...backAt.values()].sort((a, b) => a - b)
        // nobody got through before there was a server to come back to (give or take the proxy's retarget)
        expect(times[0]!).toBeGreaterThan(upAt - windowMs)
        // Full jitter spreads them over the growing backoff window; a fixed delay would put all within a few ms. The
        // bounds leave room for the bunching of 100 random draws and a server sharing two cores.
        expect(densest(times, windowMs)).toBeLessThanOrEqual(clients / 5)
        const quantile = (q: number) => times[Math.floor(q * (times.length - 1))]!
        expect(quantile(0.9) - quantile(0.1)).toBeGreaterThan(baseMs / 3)
        // the same seen from the proxy: accepted connections, failed attempts against the dead server included (a
        // fixed delay puts a quarter of them into one 50 ms; one process holding 100 clients on a busy machine bunches
        // some timers together, hence the margin)
        const accepted = proxy.connectedAt.slice(acceptedBefore).sort((a, b) => a - b)
        expect(accepted.length).toBeGreaterThanOrEqual(clients)
        expect(densest(accepted, windowMs)).toBeLessThanOrEqual(accepted.length / 8)
      })),
    { timeout: 270_000 }
  )
})
