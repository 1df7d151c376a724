/**
 * Tokens (protocol.md §8): the client asks its provider for a fresh token at every connect and before the current one
 * expires, so short-lived tokens never let the server cut it off, and nothing is missed across the refreshes. In-band
 * refresh (`sync:auth`) falls back to reconnecting where the server refuses it. A provider that fails puts the client
 * in `needs-auth` until it succeeds.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { ConnectionStatus } from "../../src/client/node.js"
import { createClient } from "../../src/client/node.js"
import { countingTokens, recordingWebSocket, type WireLog } from "../support/ClientHarness.js"
import { range, signToken, sqlPublisher, startKhala } from "../support/Khala.js"
import { waitUntil } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import { startProxy } from "../support/TcpProxy.js"

const runs = "runtime.run_summaries"

describe.skipIf(!postgresAvailable)("client, tokens", () => {
  it.live(
    "refreshes short-lived tokens before they expire, by reconnecting or in band, missing nothing",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { server } = yield* startKhala(db.url)
        const sql = yield* sqlPublisher(db.url)
        // both modes at once, on one topic: each client receives every row, each writer publishes its own documents
        yield* Effect.forEach(["reconnect", "in-band"] as const, (mode) =>
          Effect.gen(function*() {
            const tokens = countingTokens({ org: "org_a", scopes: [runs], ttlSeconds: 4 })
            const wire: WireLog = new Map()
            const statuses: Array<ConnectionStatus> = []
            const client = createClient({
              url: server.url(""),
              token: tokens,
              initialLoad: "replay",
              tokenRefresh: mode,
              refreshBeforeExpiryMs: 1500,
              webSocket: recordingWebSocket(wire)
            })
            yield* Effect.addFinalizer(() => Effect.promise(() => client.close()))
            client.state.subscribe(() => statuses.push(client.state.getSnapshot().status))
            const subscription = client.subscribe(runs)
            yield* Effect.promise(() => subscription.synced())
            // publish for longer than a token lives
            yield* Effect.forEach(range(1, 35), (i) =>
              Effect.zipRight(
                sql.publish({ docKey: `${mode}-${i}`, payload: { i } }),
                Effect.sleep("200 millis")
              ))
            const mine = () => [...subscription.getSnapshot().keys()].filter((key) => key.startsWith(`${mode}-`))
            yield* waitUntil(`every row of ${mode}`, () => mine().length === 35, { timeoutMs: 20_000 })
            // a fresh token per connection, and the server never had to refuse one
            expect(tokens.calls).toBeGreaterThanOrEqual(3)
            expect(statuses).not.toContain("needs-auth")
            expect(statuses).not.toContain("offline")
            // across the reconnects, the wire carried each row once: no gap (every row arrived), no replay
            const received = wire.get(runs)!
            expect(new Set(received).size).toBe(received.length)
          }), { concurrency: "unbounded" })
      })),
    { timeout: 270_000 }
  )

  it.live(
    "asks for a fresh token at every reconnect, and waits in needs-auth while the provider fails",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { server } = yield* startKhala(db.url)
        const proxy = yield* startProxy(server.port)
        let signedIn = false
        let calls = 0
        const client = createClient({
          url: proxy.url,
          token: () => {
            calls++
            if (!signedIn) throw new Error("signed out")
            return signToken({ org: "org_a", scopes: [runs] })
          },
          initialLoad: "replay",
          backoff: { baseMs: 100, maxMs: 200 }
        })
        yield* Effect.addFinalizer(() => Effect.promise(() => client.close()))
        client.subscribe(runs)
        yield* waitUntil("needs-auth", () => client.state.getSnapshot().status === "needs-auth")
        expect(client.state.getSnapshot().error).toMatchObject({ _tag: "TokenUnavailable" })
        signedIn = true
        client.reconnect()
        yield* waitUntil("live", () => client.state.getSnapshot().status === "live")
        const before = calls
        proxy.dropAll()
        yield* waitUntil("not live", () => client.state.getSnapshot().status !== "live")
        yield* waitUntil("live again", () => client.state.getSnapshot().status === "live")
        expect(calls).toBe(before + 1)
      })),
    { timeout: 180_000 }
  )
})
