/**
 * Token refresh in band (protocol.md §5.7): `sync:auth` with a token of the same principal replaces the socket's,
 * moves its deadline and may narrow its scopes, ending the subscriptions they no longer allow with a
 * `forbidden_topic` push per topic; a token of another principal, or one that does not verify, ends the socket
 * (`unauthorized`, 1008). A socket is told `sync:token_expiring` before its token expires and closed at its deadline.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { serveInProcess } from "../support/InProcess.js"
import { token } from "../support/Khala.js"
import { connectJoined, subscribeOk, waitUntil } from "../support/PhoenixClient.js"
import { openRaw } from "../support/RawSocket.js"

const runs = "runtime.run_summaries"
const notes = "runtime.notifications"

describe("sync:auth", () => {
  it.live("the official client refreshes in band; narrower scopes end the subscriptions they no longer allow", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveInProcess()
      const { client } = yield* connectJoined({
        port: server.port,
        token: yield* token({ org: "org_a", sub: "alice", scopes: [runs, notes] })
      })
      yield* subscribeOk(client, { topics: [runs, notes] })
      yield* server.publish({ topic: runs, docKey: "r1" })
      yield* server.publish({ topic: notes, docKey: "n1" })
      yield* client.waitForWatermark(runs, 1)
      yield* client.waitForWatermark(notes, 1)

      const narrower = yield* token({ org: "org_a", sub: "alice", scopes: [runs], ttlSeconds: 7200 })
      const reply = yield* client.push("sync:auth", { token: narrower })
      expect(reply.status).toBe("ok")
      expect(reply.response.allowed_topics).toEqual([runs])
      expect(reply.response.expires_at).toBeGreaterThan(Date.now() / 1000 + 3600)
      // the push for the ended topic comes before the reply
      expect(client.errors).toEqual([
        expect.objectContaining({ code: "forbidden_topic", forbidden_topics: [notes], reason: "scope_narrowed" })
      ])

      yield* server.publish({ topic: notes, docKey: "n2" })
      yield* server.publish({ topic: runs, docKey: "r2" })
      yield* client.waitForWatermark(runs, 2)
      // a heartbeat reply follows every frame sent before it: n2 would have arrived by then
      expect((yield* client.heartbeat).response.watermarks).toEqual([{ topic: runs, watermark: 2 }])
      expect(client.watermarks(notes)).toEqual([1])
      // the refreshed scopes hold for new subscribes too
      const again = yield* client.subscribe({ topics: [notes] })
      expect(again.status).toBe("error")
      expect(again.response.code).toBe("forbidden_topic")
      expect(client.closes).toEqual([])
    })))

  const refusedCases = [
    { name: "another sub", reason: "principal_changed", claims: { org: "org_a", sub: "mallory", scopes: [runs] } },
    { name: "another org", reason: "principal_changed", claims: { org: "org_b", sub: "alice", scopes: [runs] } },
    {
      name: "a bad signature",
      reason: "bad_signature",
      claims: { org: "org_a", sub: "alice", scopes: [runs], secret: "not-the-server-secret-0123456789abcdef" }
    },
    {
      name: "an expired token",
      reason: "expired",
      claims: { org: "org_a", sub: "alice", scopes: [runs], ttlSeconds: -120 }
    }
  ] as const

  for (const { claims, name, reason } of refusedCases) {
    it.live(`a token of ${name} is answered unauthorized (${reason}) and the socket closed with 1008`, () =>
      Effect.scoped(Effect.gen(function*() {
        const server = yield* serveInProcess()
        const raw = yield* openRaw({
          port: server.port,
          token: yield* token({ org: "org_a", sub: "alice", scopes: [runs] })
        })
        expect((yield* raw.request("j", "j", "sync:v1", "phx_join", {}))[4].status).toBe("ok")
        expect((yield* raw.request("j", "s", "sync:v1", "sync:subscribe", { topics: [runs] }))[4].status).toBe("ok")
        const reply = yield* raw.request("j", "a", "sync:v1", "sync:auth", { token: yield* token(claims) })
        expect(reply[4]).toMatchObject({ status: "error", response: { code: "unauthorized", reason } })
        yield* waitUntil("the socket to close", () => raw.closed() !== undefined)
        expect(raw.closed()?.code).toBe(1008)
      })))
  }

  it.live("a malformed sync:auth is a bad request, not the end of the socket", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveInProcess()
      const raw = yield* openRaw({ port: server.port, token: yield* token({ org: "org_a", scopes: [runs] }) })
      yield* raw.request("j", "j", "sync:v1", "phx_join", {})
      for (const [i, payload] of [{}, { token: 7 }, { token: "" }, []].entries()) {
        const reply = yield* raw.request("j", `a${i}`, "sync:v1", "sync:auth", payload)
        expect(reply[4]).toMatchObject({ status: "error", response: { code: "bad_subscription" } })
      }
      expect((yield* raw.barrier("b"))[4].status).toBe("ok")
      expect(raw.closed()).toBe(undefined)
    })))
})

describe("token deadlines", () => {
  it.live("an expiring socket is told sync:token_expiring, then closed with token_expired at its deadline", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveInProcess()
      // past exp, inside the 30 s tolerance: the deadline is 2 to 3 s away, well within the 60 s warning
      const raw = yield* openRaw({
        port: server.port,
        token: yield* token({ org: "org_a", scopes: [runs], ttlSeconds: -28 })
      })
      yield* raw.request("j", "j", "sync:v1", "phx_join", {})
      const warning = yield* raw.waitForFrame("the expiry warning", (f) => f[3] === "sync:token_expiring")
      expect(warning[4].closes_in_ms).toBeGreaterThan(0)
      expect(warning[4].closes_in_ms).toBeLessThanOrEqual(3000)
      expect(warning[4].expires_at).toBeLessThan(Date.now() / 1000)
      yield* waitUntil("the socket to close", () => raw.closed() !== undefined, { timeoutMs: 10_000 })
      expect(raw.closed()?.code).toBe(1008)
      const events = raw.frames.map((f) => f[3])
      expect(events.indexOf("sync:token_expiring")).toBeLessThan(events.indexOf("sync:error"))
      expect(raw.pushes("sync:error")).toEqual([
        expect.objectContaining({ code: "unauthorized", reason: "token_expired" })
      ])
      expect(raw.pushes("sync:token_expiring")).toHaveLength(1)
    })))

  it.live("the warning comes tokenExpiryWarning before exp, not at once", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveInProcess({ settings: { tokenExpiryWarning: Duration.seconds(3) } })
      const raw = yield* openRaw({
        port: server.port,
        token: yield* token({ org: "org_a", scopes: [runs], ttlSeconds: 5 })
      })
      yield* raw.request("j", "j", "sync:v1", "phx_join", {})
      const openedAt = Date.now()
      expect(raw.pushes("sync:token_expiring")).toEqual([])
      const warning = yield* raw.waitForFrame("the expiry warning", (f) => f[3] === "sync:token_expiring")
      // exp is 4 to 5 s after the upgrade; the warning 3 s before it; the close 30 s after exp
      expect(Date.now() - openedAt).toBeGreaterThan(500)
      // on the channel of the join, so that clients matching pushes to their join see it
      expect(warning[0]).toBe("j")
      expect(warning[4].closes_in_ms).toBeGreaterThan(30_000)
      expect(raw.closed()).toBe(undefined)
    })))

  it.live("a refresh moves the deadline: the socket outlives its first token, and is warned again only for the new one", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveInProcess()
      const raw = yield* openRaw({
        port: server.port,
        token: yield* token({ org: "org_a", sub: "alice", scopes: [runs], ttlSeconds: -28 })
      })
      yield* raw.request("j", "j", "sync:v1", "phx_join", {})
      yield* raw.request("j", "s", "sync:v1", "sync:subscribe", { topics: [runs] })
      const deadline = Date.now() + 3000
      yield* raw.waitForFrame("the expiry warning", (f) => f[3] === "sync:token_expiring")
      const reply = yield* raw.request("j", "a", "sync:v1", "sync:auth", {
        token: yield* token({ org: "org_a", sub: "alice", scopes: [runs], ttlSeconds: 3600 })
      })
      expect(reply[4].status).toBe("ok")
      yield* Effect.sleep(Math.max(0, deadline - Date.now()) + 500)
      yield* server.publish({ docKey: "r1" })
      yield* raw.waitForFrame("the update after the first deadline", (f) =>
        f[3] === "sync:update_batch" &&
        f[4].updates.length > 0)
      expect((yield* raw.request("j", "h", "sync:v1", "sync:heartbeat", {}))[4].status).toBe("ok")
      expect(raw.closed()).toBe(undefined)
      expect(raw.pushes("sync:error")).toEqual([])
      expect(raw.pushes("sync:token_expiring")).toHaveLength(1)
    })))
})
