/**
 * Hand-written frames on a plain `ws` socket (protocol.md §5, I9): malformed and misaddressed frames get an error reply when
 * they can be addressed and are dropped otherwise; the Phoenix channel rules (unmatched topic, rejoin, stale
 * join_ref, socket heartbeat) hold; afterwards the same socket still works, another socket was undisturbed, and the
 * server still runs.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { range, sqlPublisher, startKhala, token } from "../support/Khala.js"
import { connectJoined, subscribeOk } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import { httpGet } from "../support/Processes.js"
import type { RawSocket } from "../support/RawSocket.js"
import { openRaw } from "../support/RawSocket.js"

const runs = "runtime.run_summaries"
const topic = "sync:v1"

/** Sends the text, then a socket heartbeat; returns the frames that arrived before the heartbeat's reply. */
const answersTo = (raw: RawSocket, text: string, barrierRef: string) =>
  Effect.gen(function*() {
    const from = raw.frames.length
    yield* raw.sendText(text)
    yield* raw.barrier(barrierRef)
    return raw.frames.slice(from).filter((f) => !(f[2] === "phoenix" && f[1] === barrierRef))
  })

describe.skipIf(!postgresAvailable)("raw Phoenix frames", () => {
  it.live(
    "malformed and misaddressed frames harm nobody; the socket, its neighbours and the server carry on",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { server } = yield* startKhala(db.url)
        const sql = yield* sqlPublisher(db.url)
        const jwt = yield* token({ org: "org_a", scopes: [runs] })

        // a well-behaved neighbour, subscribed throughout
        const neighbour = (yield* connectJoined({ port: server.port, token: jwt })).client
        yield* subscribeOk(neighbour, { topics: [runs] })
        yield* sql.publishAll(range(1, 3).map((i) => ({ docKey: `r${i}`, payload: { i } })))

        const raw = yield* openRaw({ port: server.port, token: jwt })

        // the socket heartbeat is answered whether or not a channel is joined
        expect(yield* raw.request(null, "hb-1", "phoenix", "heartbeat", {})).toEqual([
          null,
          "hb-1",
          "phoenix",
          "phx_reply",
          { status: "ok", response: {} }
        ])

        // frames that cannot be addressed are dropped without an answer
        expect(yield* answersTo(raw, "this is not json", "b1")).toEqual([])
        expect(yield* answersTo(raw, "{\"topic\":\"sync:v1\",\"event\":\"phx_join\"}", "b2")).toEqual([])
        expect(yield* answersTo(raw, "[null,\"n1\",42,\"phx_join\",{}]", "b3")).toEqual([])
        expect(yield* answersTo(raw, "[]", "b4")).toEqual([])
        expect(yield* answersTo(raw, "\"[]\"", "b5")).toEqual([])

        // a wrong arity with readable refs gets an error reply on its ref
        const arity = yield* answersTo(raw, JSON.stringify([null, "a1", topic, "phx_join"]), "b6")
        expect(arity).toEqual([[null, "a1", topic, "phx_reply", {
          status: "error",
          response: expect.objectContaining({ code: "bad_subscription", message: expect.any(String) })
        }]])

        // a channel event before any join: "unmatched topic", as Phoenix answers it
        expect(yield* raw.request(null, "s0", topic, "sync:subscribe", { topics: [runs] })).toEqual([
          null,
          "s0",
          topic,
          "phx_reply",
          { status: "error", response: { reason: "unmatched topic" } }
        ])
        // a join on another topic: "unmatched topic"
        expect((yield* raw.request("x1", "x1", "room:lobby", "phx_join", {}))[4]).toEqual({
          status: "error",
          response: { reason: "unmatched topic" }
        })

        // join, then an unknown event on the joined channel: a bad_subscription error reply
        const joined = yield* raw.request("j1", "j1", topic, "phx_join", {})
        expect(joined).toEqual(["j1", "j1", topic, "phx_reply", {
          status: "ok",
          response: expect.objectContaining({ subscription_id: expect.any(String), allowed_topics: [runs] })
        }])
        const unknown = yield* raw.request("j1", "u1", topic, "sync:frobnicate", {})
        expect(unknown[4]).toMatchObject({ status: "error", response: { code: "bad_subscription" } })
        // malformed subscribe payloads: bad_subscription
        for (
          const [ref, payload] of [["m1", { topics: "nope" }], ["m2", []], ["m3", {
            topics: [runs],
            resume_after: { [runs]: -1 }
          }]] as const
        ) {
          expect((yield* raw.request("j1", ref, topic, "sync:subscribe", payload))[4]).toMatchObject({
            status: "error",
            response: { code: "bad_subscription" }
          })
        }
        // a frame over KHALA_MAX_FRAME_BYTES (64 KiB by default): payload_too_large
        const padded = yield* raw.request("j1", "big1", topic, "sync:heartbeat", { pad: "p".repeat(70 * 1024) })
        expect(padded[4]).toMatchObject({ status: "error", response: { code: "payload_too_large" } })

        // a second join replaces the first: the old join_ref gets phx_close, the new join is ok
        const from = raw.frames.length
        const rejoined = yield* raw.request("j2", "j2", topic, "phx_join", {})
        expect(rejoined[4].status).toBe("ok")
        const sinceRejoin = raw.frames.slice(from)
        expect(sinceRejoin).toContainEqual(["j1", "j1", topic, "phx_close", {}])
        expect(sinceRejoin.findIndex((f) => f[3] === "phx_close")).toBeLessThan(sinceRejoin.indexOf(rejoined))
        // a frame of the replaced join (stale join_ref) is ignored: no reply, no subscription
        expect(
          yield* answersTo(raw, JSON.stringify(["j1", "old-1", topic, "sync:subscribe", { topics: [runs] }]), "b7")
        )
          .toEqual([])

        // after all that, the socket still works on its current join
        const subscribed = yield* raw.request("j2", "s1", topic, "sync:subscribe", { topics: [runs] })
        expect(subscribed[4]).toMatchObject({ status: "ok", response: { topics: [runs] } })
        yield* sql.publishAll(range(4, 6).map((i) => ({ docKey: `r${i}`, payload: { i } })))
        yield* raw.waitForFrame("update 6 on the raw socket", (f) =>
          f[3] === "sync:update_batch" && f[4].updates.some((u: any) => u.watermark === 6))
        const rawUpdates = raw.frames.filter((f) =>
          f[3] === "sync:update_batch"
        )
        // every push goes to the current join_ref, never the stale one
        expect(rawUpdates.every((f) => f[0] === "j2")).toBe(true)
        expect(rawUpdates.flatMap((f) => f[4].updates.map((u: any) => u.watermark))).toEqual(range(1, 6))

        // phx_leave: ok reply, then phx_close; later channel frames are unmatched again
        const leave = yield* raw.request("j2", "l1", topic, "phx_leave", {})
        expect(leave[4]).toEqual({ status: "ok", response: {} })
        yield* raw.waitForFrame("phx_close after leave", (f) => f[0] === "j2" && f[3] === "phx_close")
        expect((yield* raw.request("j2", "s2", topic, "sync:heartbeat", {}))[4]).toEqual({
          status: "error",
          response: { reason: "unmatched topic" }
        })
        // a join with a null join_ref takes its own ref as the join_ref
        const nullJoin = yield* raw.request(null, "j3", topic, "phx_join", {})
        expect(nullJoin[0]).toBe("j3")
        expect(nullJoin[4].status).toBe("ok")
        expect((yield* raw.request("j3", "h3", topic, "sync:heartbeat", {}))[4].status).toBe("ok")

        // the neighbour saw every row, nothing else; the raw socket is open; the server runs and answers
        yield* neighbour.waitForWatermark(runs, 6)
        expect(neighbour.watermarks(runs)).toEqual(range(1, 6))
        expect(neighbour.errors).toEqual([])
        expect(neighbour.closes).toEqual([])
        expect(raw.closed()).toBe(undefined)
        expect(server.process.exitCode).toBe(null)
        expect((yield* httpGet(server.url("/healthz"))).status).toBe(200)
      })),
    { timeout: 180_000 }
  )
})
