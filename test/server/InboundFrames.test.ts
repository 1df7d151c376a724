/**
 * Client frames are judged before they are parsed or queued (protocol.md §5, I9): size first (an oversize frame is answered
 * from its first bytes alone), then the rate (socket heartbeats count; a subscribe costs its topics), then nesting
 * depth, then the decode. Binary frames are refused; a defect while handling one socket's frame closes that socket
 * with `internal` instead of leaving it open and deaf. Every case harms only its own socket.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { serveInProcess } from "../support/InProcess.js"
import { range, token } from "../support/Khala.js"
import { waitUntil } from "../support/PhoenixClient.js"
import type { RawSocket } from "../support/RawSocket.js"
import { openRaw } from "../support/RawSocket.js"

const runs = "runtime.run_summaries"
const channel = "sync:v1"

const joined = (port: number, scopes: ReadonlyArray<string> = [runs]) =>
  Effect.gen(function*() {
    const raw = yield* openRaw({ port, token: yield* token({ org: "org_a", scopes }) })
    expect((yield* raw.request("j", "j", channel, "phx_join", {}))[4].status).toBe("ok")
    return raw
  })

const replyTo = (raw: RawSocket, ref: string) =>
  raw.waitForFrame(`reply to ${ref}`, (f) => f[3] === "phx_reply" && f[1] === ref).pipe(Effect.map((f) => f[4]))

describe("inbound frames", () => {
  it.live("a subscribe nested 2500 levels deep is answered bad_subscription and the socket keeps answering", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveInProcess()
      const raw = yield* joined(server.port)
      const deep = "[".repeat(2500) + "]".repeat(2500)
      yield* raw.sendText(
        `["j","deep",${JSON.stringify(channel)},"sync:subscribe",{"topics":[${JSON.stringify(runs)}],` +
          `"resume_after":${deep}}]`
      )
      expect(yield* replyTo(raw, "deep")).toMatchObject({ status: "error", response: { code: "bad_subscription" } })
      expect((yield* raw.barrier("after-deep"))[4]).toEqual({ status: "ok", response: {} })
      expect((yield* raw.request("j", "s1", channel, "sync:subscribe", { topics: [runs] }))[4].status).toBe("ok")
      expect(raw.closed()).toBe(undefined)
    })))

  it.live("a defect while handling a frame closes that socket with internal; its neighbour carries on", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveInProcess({
        wrapCatalog: (catalog) => ({
          ...catalog,
          get: (name) => {
            if (name === "runtime.boom") throw new Error("a bug in the catalog")
            return catalog.get(name)
          }
        })
      })
      const neighbour = yield* joined(server.port)
      const raw = yield* joined(server.port)
      yield* raw.send(["j", "b1", channel, "sync:subscribe", { topics: ["runtime.boom"] }])
      yield* waitUntil("the faulty socket to be closed", () => raw.closed() !== undefined, {
        timeoutMs: 5_000,
        detail: () => raw.frames.slice(-3)
      })
      expect(raw.closed()!.code).toBe(1011)
      expect(raw.pushes("sync:error")).toContainEqual(expect.objectContaining({ code: "internal" }))
      expect((yield* neighbour.request("j", "n1", channel, "sync:subscribe", { topics: [runs] }))[4].status).toBe(
        "ok"
      )
      expect(neighbour.closed()).toBe(undefined)
    })))

  it.live("a binary frame closes the socket with 1003 (unsupported data): it is not activity", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveInProcess()
      const raw = yield* joined(server.port)
      raw.ws.send(Buffer.from([0, 1, 2, 3]), { binary: true })
      yield* waitUntil("the socket to be closed", () => raw.closed() !== undefined, { timeoutMs: 5_000 })
      expect(raw.closed()!.code).toBe(1003)
    })))

  it.live("an oversize frame is answered payload_too_large on its ref from its first bytes, unparsed", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveInProcess({ settings: { maxFrameBytes: 1024 } })
      const raw = yield* joined(server.port)
      // over the limit, and not even JSON past its head: only the head is read
      yield* raw.sendText(`["j","big1",${JSON.stringify(channel)},"sync:heartbeat",{"pad":"${"p".repeat(4000)}`)
      expect(yield* replyTo(raw, "big1")).toMatchObject({
        status: "error",
        response: { code: "payload_too_large" }
      })
      expect((yield* raw.request("j", "h1", channel, "sync:heartbeat", {}))[4].status).toBe("ok")
    })))

  it.live("socket heartbeats count toward the rate limit", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveInProcess({ settings: { framesPerSecond: 5 } })
      const raw = yield* openRaw({ port: server.port, token: yield* token({ org: "org_a", scopes: [runs] }) })
      for (const i of range(1, 20)) yield* raw.send([null, `hb${i}`, "phoenix", "heartbeat", {}])
      const replies = yield* Effect.forEach(range(1, 20), (i) => replyTo(raw, `hb${i}`))
      const limited = replies.filter((r) => r.status === "error")
      expect(limited.length).toBeGreaterThan(0)
      for (const r of limited) {
        expect(r.response).toMatchObject({ code: "rate_limited", retry_after_ms: expect.any(Number) })
      }
      expect(raw.closed()).toBe(undefined)
    })))

  it.live("a subscribe costs its number of topics in the rate limit", () =>
    Effect.scoped(Effect.gen(function*() {
      const topics = range(1, 8).map((i) => `myapp.t${i}`)
      const server = yield* serveInProcess({
        settings: { framesPerSecond: 10 },
        catalog: { topics: topics.map((wireName) => ({ wireName })) }
      })
      const raw = yield* joined(server.port, topics)
      expect((yield* raw.request("j", "s1", channel, "sync:subscribe", { topics }))[4].status).toBe("ok")
      // the same eight topics again at once: eight more replays within the second is over the limit
      const again = yield* raw.request("j", "s2", channel, "sync:subscribe", { topics })
      expect(again[4]).toMatchObject({ status: "error", response: { code: "rate_limited" } })
      expect(again[4].response.retry_after_ms).toBeGreaterThan(0)
    })))
})
