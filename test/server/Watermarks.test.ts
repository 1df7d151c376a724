/**
 * What a client persists must never run ahead of what it received (protocol.md §5): `watermarks` of heartbeat replies and
 * pushes give, per topic, the watermark through which updates have been sent to this socket at that moment. A
 * client that persists a heartbeat watermark and then drops must not have skipped rows. The check reads the
 * socket's frames in order: every heartbeat watermark is at most the highest watermark received before it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { range, sqlPublisher, startKhala, token } from "../support/Khala.js"
import { waitUntil } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import type { RawFrame } from "../support/RawSocket.js"
import { openRaw } from "../support/RawSocket.js"

const runs = "runtime.run_summaries"
const count = 60
const payload = (i: number) => ({ i, blob: "w".repeat(150 * 1024) })

/** Heartbeat frames (replies to sync:heartbeat and pushes) whose watermark is above what had been received. */
const aheadOfUpdates = (frames: ReadonlyArray<RawFrame>) => {
  let received = 0
  const ahead: Array<{ index: number; kind: string; watermark: number; received: number }> = []
  for (const [index, f] of frames.entries()) {
    if (f[3] === "sync:update_batch") {
      for (const u of f[4].updates) received = Math.max(received, u.watermark)
      continue
    }
    const watermarks = f[3] === "sync:heartbeat"
      ? f[4].watermarks
      : f[3] === "phx_reply" && f[1]?.startsWith("hb") && f[4].status === "ok"
      ? f[4].response.watermarks
      : undefined
    const watermark = watermarks?.find((w: any) => w.topic === runs)?.watermark
    if (watermark !== undefined && watermark > received) {
      ahead.push({ index, kind: f[3] === "sync:heartbeat" ? "push" : "reply", watermark, received })
    }
  }
  return ahead
}

const heartbeatFrames = (frames: ReadonlyArray<RawFrame>) =>
  frames.filter((f) => f[3] === "sync:heartbeat" || (f[3] === "phx_reply" && f[1]?.startsWith("hb")))

describe.skipIf(!postgresAvailable)("reported watermarks", () => {
  it.live(
    "heartbeat watermarks never run ahead of the updates sent before them, even under backpressure",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { server } = yield* startKhala(db.url, {
          KHALA_SEND_BUFFER_BYTES: String(256 * 1024),
          KHALA_SLOW_CONSUMER_TIMEOUT: "60 seconds",
          KHALA_HEARTBEAT_INTERVAL: "20 millis"
        })
        const sql = yield* sqlPublisher(db.url)
        const raw = yield* openRaw({ port: server.port, token: yield* token({ org: "org_a", scopes: [runs] }) })
        const socket = (raw.ws as any)._socket
        const updates = () => raw.frames.filter((f) => f[3] === "sync:update_batch").flatMap((f) => f[4].updates)
        expect((yield* raw.request("j", "j", "sync:v1", "phx_join", {}))[4].status).toBe("ok")

        // replay: ~9 MB of rows, more than the socket and kernel buffers hold, one row per batch. The client
        // reads nothing at first and asks for heartbeats meanwhile (periodic pushes come every 20 ms too): those
        // answered while batches still wait for the socket must not report the waiting rows as sent.
        yield* sql.publishAll(range(1, count).map((i) => ({ docKey: `d${i}`, payload: payload(i) })))
        socket.pause()
        yield* raw.send(["j", "s", "sync:v1", "sync:subscribe", { topics: [runs], replay_batch_size: 1 }])
        for (const i of range(1, 15)) {
          yield* raw.send(["j", `hb-${i}`, "sync:v1", "sync:heartbeat", {}])
          yield* Effect.sleep("100 millis")
        }
        // then it reads slowly (a slow mobile link: one socket buffer per 10 ms), so every batch waits for room
        const deadline = Date.now() + 30_000
        while (
          !updates().some((u: any) => u.watermark === count) && raw.closed() === undefined && Date.now() < deadline
        ) {
          // in paused mode, read() hands the stream's buffered chunk to ws (a 'data' event) without resuming the flow
          socket.read()
          // jitter, so that room on the socket appears at no fixed phase of the server's polling
          yield* Effect.sleep(`${5 + Math.floor(Math.random() * 10)} millis`)
        }
        socket.resume()
        yield* waitUntil(`the replay through ${count}`, () => updates().some((u: any) => u.watermark === count), {
          timeoutMs: 10_000,
          detail: () => ({ closed: raw.closed(), received: updates().length })
        })
        yield* raw.barrier("final")
        expect(updates().map((u: any) => u.watermark)).toEqual(range(1, count))
        const ahead = aheadOfUpdates(raw.frames)
        yield* Effect.logInfo(
          `watermarks: ${heartbeatFrames(raw.frames).length} heartbeat frames, ${ahead.length} ahead of the updates ` +
            `received before them; first ones ${JSON.stringify(ahead.slice(0, 3))}`
        )
        expect(heartbeatFrames(raw.frames).length).toBeGreaterThan(0)
        expect(ahead).toEqual([])
      })),
    { timeout: 180_000 }
  )
})
