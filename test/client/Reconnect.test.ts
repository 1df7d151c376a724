/**
 * 100 clients dropped at the same instant come back spread out: full-jitter backoff, measured from outside the clients
 * (the proxy's accept times). Clients retrying at a fixed delay would all come back within one instant.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { createClient } from "../../src/client/node.js"
import { range, signToken, startKhala } from "../support/Khala.js"
import { waitUntil } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import { startProxy } from "../support/TcpProxy.js"

const runs = "runtime.run_summaries"
const clients = 100
const baseMs = 2000

describe.skipIf(!postgresAvailable)("client, many reconnecting at once", () => {
  it.live(
    "spread their reconnects over the backoff window instead of bursting",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { server } = yield* startKhala(db.url)
        const proxy = yield* startProxy(server.port)
        const token = yield* Effect.promise(() => signToken({ org: "org_a", scopes: [runs] }))
        const all = range(1, clients).map(() =>
          createClient({
            url: proxy.url,
            token: () => token,
            initialLoad: "replay",
            backoff: { baseMs, maxMs: baseMs, stableAfterMs: 0 }
          })
        )
        yield* Effect.addFinalizer(() => Effect.promise(() => Promise.all(all.map((client) => client.close()))))
        for (const client of all) client.subscribe(runs)
        const allLive = () => all.every((client) => client.state.getSnapshot().status === "live")
        yield* waitUntil("every client live", allLive, { timeoutMs: 30_000 })

        const before = proxy.connectedAt.length
        const droppedAt = performance.now()
        proxy.dropAll()
        yield* waitUntil("every client offline or reconnecting", () => !allLive())
        yield* waitUntil("every client live again", () => allLive() && proxy.connectedAt.length - before >= clients, {
          timeoutMs: 30_000
        })
        const delays = proxy.connectedAt.slice(before).map((at) => at - droppedAt).sort((a, b) => a - b)

        // Full jitter spreads them uniformly over [0, base]; a fixed delay would put them all within a few ms. The
        // bounds leave room for the bunching of 100 clients and a server sharing two cores.
        const quantile = (q: number) => delays[Math.floor(q * (delays.length - 1))]!
        expect(quantile(0.9) - quantile(0.1)).toBeGreaterThan(baseMs / 4)
        const slots = new Map<number, number>()
        for (const delay of delays) slots.set(Math.floor(delay / 100), (slots.get(Math.floor(delay / 100)) ?? 0) + 1)
        expect(Math.max(...slots.values())).toBeLessThanOrEqual(clients * 0.4)
      })),
    { timeout: 90_000 }
  )
})
