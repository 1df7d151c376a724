/**
 * A server's share per tenant (protocol.md §2, §10, I9): at most `maxSocketsPerOrg` sockets per org and
 * `maxSocketsPerPrincipal` per principal, each further upgrade answered 429 with `Retry-After` and a freed place taken
 * again; browser upgrades only from `socketOrigins` (403 otherwise, requests without `Origin` unchecked); and one
 * subscribe rate per principal, shared by its sockets.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Admission from "../../src/server/Admission.js"
import { serveInProcess } from "../support/InProcess.js"
import { token } from "../support/Khala.js"
import { waitUntil } from "../support/PhoenixClient.js"
import { openRaw, upgradeOutcome } from "../support/RawSocket.js"

const runs = "runtime.run_summaries"
const topics = ["runtime.run_summaries", "runtime.notifications", "runtime.codex_worker_summaries"]

describe("per-tenant admission", () => {
  it("a place is given back once however often it is released; a principal's rate outlives none of its sockets", () => {
    const admission = Admission.make({
      maxSocketsPerOrg: 2,
      maxSocketsPerPrincipal: 1,
      principalSubscribesPerSecond: 4,
      socketOrigins: ["https://app.example"]
    })
    const alice = { subject: "alice", orgId: "org_a" }
    const first = admission.admit(alice, 0)
    if (first._tag !== "Admitted") throw new Error("refused")
    expect(admission.admit(alice, 0)).toMatchObject({ _tag: "Refused", refusal: { status: 429 } })
    expect(first.ticket.subscribeRate(4, 0)).toBe(0)
    expect(first.ticket.subscribeRate(1, 0)).toBeGreaterThan(0)
    first.ticket.release()
    first.ticket.release()
    const second = admission.admit(alice, 0)
    expect(second._tag).toBe("Admitted")
    // the double release freed one place, not two: the principal's limit holds
    expect(admission.admit(alice, 0)._tag).toBe("Refused")
    // a new socket after the last one ended starts with a full bucket of its own
    if (second._tag === "Admitted") expect(second.ticket.subscribeRate(4, 0)).toBe(0)
    expect(admission.admit({ subject: "bob", orgId: "org_a" }, 0)._tag).toBe("Admitted")
    expect(admission.admit({ subject: "carol", orgId: "org_a" }, 0)).toMatchObject({ refusal: { status: 429 } })
    expect(admission.originAllowed(undefined)).toBe(true)
    expect(admission.originAllowed("https://app.example")).toBe(true)
    expect(admission.originAllowed("https://app.example.evil")).toBe(false)
  })

  it.live("beyond maxSocketsPerPrincipal the principal is refused 429 with Retry-After; others are not", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveInProcess({ settings: { maxSocketsPerPrincipal: 2 } })
      const alice = yield* token({ org: "org_a", sub: "alice", scopes: [runs] })
      const first = yield* openRaw({ port: server.port, token: alice })
      yield* openRaw({ port: server.port, token: alice })
      for (let i = 0; i < 5; i++) {
        const refused = yield* upgradeOutcome({ port: server.port, token: alice })
        expect(refused.status).toBe(429)
        expect(Number(refused.headers?.["retry-after"])).toBeGreaterThan(0)
      }
      // the same sub in another org is another principal, and so is another sub of the org
      expect(
        (yield* upgradeOutcome({
          port: server.port,
          token: yield* token({ org: "org_b", sub: "alice", scopes: [runs] })
        })).status
      ).toBe("open")
      expect(
        (yield* upgradeOutcome({
          port: server.port,
          token: yield* token({ org: "org_a", sub: "bob", scopes: [runs] })
        })).status
      ).toBe("open")
      first.ws.close()
      yield* waitUntil("the first socket to be closed", () => first.closed() !== undefined)
      const again = yield* upgradeOutcome({ port: server.port, token: alice }).pipe(
        Effect.repeat({ until: (o) => o.status === "open", times: 50 })
      )
      expect(again.status).toBe("open")
    })))

  it.live("beyond maxSocketsPerOrg the org is refused 429; another org is not; refusals hold no place", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveInProcess({ settings: { maxSocketsPerOrg: 2 } })
      const a1 = yield* openRaw({ port: server.port, token: yield* token({ org: "org_a", sub: "u1", scopes: [runs] }) })
      yield* openRaw({ port: server.port, token: yield* token({ org: "org_a", sub: "u2", scopes: [runs] }) })
      const u3 = yield* token({ org: "org_a", sub: "u3", scopes: [runs] })
      const refused = yield* upgradeOutcome({ port: server.port, token: u3 })
      expect(refused.status).toBe(429)
      expect(Number(refused.headers?.["retry-after"])).toBeGreaterThan(0)
      const other = yield* token({ org: "org_b", sub: "u1", scopes: [runs] })
      yield* openRaw({ port: server.port, token: other })
      yield* openRaw({ port: server.port, token: other })
      a1.ws.close()
      yield* waitUntil("the first socket to be closed", () => a1.closed() !== undefined)
      const again = yield* upgradeOutcome({ port: server.port, token: u3 }).pipe(
        Effect.repeat({ until: (o) => o.status === "open", times: 50 })
      )
      expect(again.status).toBe("open")
    })))

  it.live("a browser upgrade from an origin outside socketOrigins is refused 403; no Origin is not checked", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveInProcess({
        settings: { socketOrigins: ["https://app.example"], maxSocketsPerPrincipal: 1 }
      })
      const jwt = yield* token({ org: "org_a", scopes: [runs] })
      for (const origin of ["https://evil.example", "http://app.example", "https://app.example:8443", "null"]) {
        expect((yield* upgradeOutcome({ port: server.port, token: jwt, origin })).status).toBe(403)
      }
      // refused before the token was looked at: no place was taken, so the principal's only socket still opens
      const allowed = yield* upgradeOutcome({ port: server.port, token: jwt, origin: "https://app.example" })
      expect(allowed.status).toBe("open")
      const native = yield* upgradeOutcome({ port: server.port, token: jwt }).pipe(
        Effect.repeat({ until: (o) => o.status === "open", times: 50 })
      )
      expect(native.status).toBe("open")
    })))

  it.live("a principal's sockets share one subscribe rate; another principal has its own", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveInProcess({ settings: { principalSubscribesPerSecond: 10 } })
      const alice = yield* token({ org: "org_a", sub: "alice", scopes: topics })
      const sockets = [
        yield* openRaw({ port: server.port, token: alice }),
        yield* openRaw({ port: server.port, token: alice })
      ]
      const bob = yield* openRaw({
        port: server.port,
        token: yield* token({ org: "org_a", sub: "bob", scopes: topics })
      })
      for (const raw of [...sockets, bob]) yield* raw.request("j", "j", "sync:v1", "phx_join", {})
      // 3 + 3 of alice's 10, then 3 more on either socket: 9, then the fourth subscribe goes over
      expect((yield* sockets[0]!.request("j", "s1", "sync:v1", "sync:subscribe", { topics }))[4].status).toBe("ok")
      expect((yield* sockets[1]!.request("j", "s2", "sync:v1", "sync:subscribe", { topics }))[4].status).toBe("ok")
      expect((yield* sockets[1]!.request("j", "s3", "sync:v1", "sync:subscribe", { topics }))[4].status).toBe("ok")
      const limited = yield* sockets[0]!.request("j", "s4", "sync:v1", "sync:subscribe", { topics, request_id: "r4" })
      expect(limited[4]).toMatchObject({ status: "error", response: { code: "rate_limited", request_id: "r4" } })
      expect(limited[4].response.retry_after_ms).toBeGreaterThan(0)
      expect((yield* bob.request("j", "b1", "sync:v1", "sync:subscribe", { topics }))[4].status).toBe("ok")
      // the limit refills: after the advised wait the subscribe goes through
      yield* Effect.sleep(limited[4].response.retry_after_ms + 50)
      expect((yield* sockets[0]!.request("j", "s5", "sync:v1", "sync:subscribe", { topics }))[4].status).toBe("ok")
    })))
})
