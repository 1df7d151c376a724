/**
 * A slow consumer harms nobody (I9): a socket that reads nothing while many large updates are published does not
 * keep a fast client on the same topic from receiving all of them. Latency is measured and logged, not asserted.
 * Afterwards the slow socket either catches up gap-free or was closed with a resumable (non-1000) code; past
 * KHALA_SLOW_CONSUMER_TIMEOUT it is closed with a resumable code and resumes on a new socket without a gap.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { range, sqlPublisher, startKhala, token } from "../support/Khala.js"
import { connectJoined, subscribeOk, waitUntil } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import { openRaw } from "../support/RawSocket.js"

const runs = "runtime.run_summaries"
const count = 80
// ~200 KiB each (under the 256 KiB inline limit): 16 MB in all, far beyond socket and kernel buffers
const payload = (i: number) => ({ i, blob: String(i % 10).repeat(200 * 1024) })

const percentile = (values: ReadonlyArray<number>, p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN
}

describe.skipIf(!postgresAvailable)("slow consumers", () => {
  it.live("a paused socket does not delay a fast client on the same topic", () =>
    Effect.scoped(Effect.gen(function*() {
      const db = yield* testDatabase
      const { server } = yield* startKhala(db.url, {
        KHALA_SEND_BUFFER_BYTES: String(512 * 1024),
        KHALA_SLOW_CONSUMER_TIMEOUT: "60 seconds"
      })
      const sql = yield* sqlPublisher(db.url)
      const jwt = yield* token({ org: "org_a", scopes: [runs] })

      // the slow socket subscribes, then stops reading from the network altogether
      const slow = yield* openRaw({ port: server.port, token: jwt })
      expect((yield* slow.request("s", "s", "sync:v1", "phx_join", {}))[4].status).toBe("ok")
      expect((yield* slow.request("s", "s1", "sync:v1", "sync:subscribe", { topics: [runs] }))[4].status).toBe("ok")
      yield* slow.waitForFrame("the slow socket's replay end", (f) =>
        f[3] === "sync:update_batch" && f[4].replay_complete)
      ;(slow.ws as any)._socket.pause()

      const fast = (yield* connectJoined({ port: server.port, token: jwt })).client
      const arrivals = new Map<number, number>()
      fast.channel.on("sync:update_batch", (batch: any) => {
        for (const u of batch.updates) {
          arrivals.set(u.watermark, Date.now())
        }
      })
      yield* subscribeOk(fast, { topics: [runs] })
      yield* fast.waitForReplayComplete(runs)

      const committed = new Map<number, number>()
      const start = Date.now()
      for (const i of range(1, count)) {
        const watermark = yield* sql.publish({ docKey: `big-${i}`, payload: payload(i) })
        committed.set(watermark!, Date.now())
      }
      const published = Date.now()
      yield* fast.waitForWatermark(runs, count, 45_000)
      const done = Date.now()

      // the fast client got every update, in order, with its payload
      expect(fast.watermarks(runs)).toEqual(range(1, count))
      expect(
        fast.updates(runs).every((u) =>
          (u.payload as any)?.i === u.watermark && !u.hydration_required
        )
      ).toBe(true)
      // batches stay within 2 MiB of updates (protocol.md §5)
      for (const batch of fast.batches) {
        expect(Buffer.byteLength(JSON.stringify(batch.updates))).toBeLessThanOrEqual(2 * 1024 * 1024)
      }
      const latencies = range(1, count).map((w) => arrivals.get(w)! - committed.get(w)!)
      const slowSoFar = slow.frames.filter((f) => f[3] === "sync:update_batch").flatMap((f) => f[4].updates).length
      yield* Effect.logInfo(
        `slow consumer: ${count} x 200 KiB published in ${published - start} ms, fast client had all ${
          done - start
        } ms ` +
          `after the first publish; commit->arrival latency p50 ${percentile(latencies, 50)} ms, p95 ` +
          `${percentile(latencies, 95)} ms, max ${Math.max(...latencies)} ms; the paused socket had read ${slowSoFar}`
      )
      expect(slowSoFar).toBeLessThan(count)
      expect(fast.errors).toEqual([])
      expect(fast.closes).toEqual([]) // the slow socket reads again: it catches up gap-free, or it was told to reconnect (non-1000 close)
      ;(slow.ws as any)._socket.resume()
      const slowWatermarks = () =>
        slow.frames.filter((f) => f[3] === "sync:update_batch").flatMap((f) =>
          f[4].updates.map((u: any) => u.watermark)
        )
      yield* waitUntil(
        "the slow socket to catch up or close",
        () => slow.closed() !== undefined || slowWatermarks().includes(count),
        { timeoutMs: 45_000 }
      )
      const closed = slow.closed()
      yield* Effect.logInfo(
        `slow consumer: afterwards ${closed ? `closed with ${closed.code} ${closed.reason}` : "caught up"}`
      )
      if (closed !== undefined) expect(closed.code).not.toBe(1000)
      else expect(slowWatermarks()).toEqual(range(1, count))
      expect(server.process.exitCode).toBe(null)
    })), { timeout: 270_000 })

  it.live(
    "past KHALA_SLOW_CONSUMER_TIMEOUT the slow socket is closed with a resumable code and resumes gap-free",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { server } = yield* startKhala(db.url, {
          KHALA_SEND_BUFFER_BYTES: String(256 * 1024),
          KHALA_SLOW_CONSUMER_TIMEOUT: "1 second"
        })
        const sql = yield* sqlPublisher(db.url)
        const jwt = yield* token({ org: "org_a", scopes: [runs] })
        const slow = yield* openRaw({ port: server.port, token: jwt })
        yield* slow.request("s", "s", "sync:v1", "phx_join", {})
        yield* slow.request("s", "s1", "sync:v1", "sync:subscribe", { topics: [runs] })
        yield* slow.waitForFrame("replay end", (f) => f[3] === "sync:update_batch" && f[4].replay_complete)
        ;(slow.ws as any)._socket.pause()
        const total = 50
        yield* sql.publishAll(range(1, total).map((i) => ({ docKey: `big-${i}`, payload: payload(i) })))
        // stuck well past the timeout, then the client reads again: what was sent, then the close
        yield* Effect.sleep("3 seconds")
        ;(slow.ws as any)._socket.resume()
        yield* waitUntil("the slow socket to be closed", () => slow.closed() !== undefined, { timeoutMs: 40_000 })
        const closed = slow.closed()!
        const received = slow.frames.filter((f) => f[3] === "sync:update_batch").flatMap((f) => f[4].updates)
        yield* Effect.logInfo(
          `slow consumer: closed with ${closed.code} "${closed.reason}" after ${received.length} updates`
        )
        expect(closed.code).not.toBe(1000)
        expect(closed.code).not.toBe(1006)
        // what it got is a gap-free prefix; it persists the last watermark and resumes on a new socket
        const persisted = received.length === 0 ? 0 : received[received.length - 1].watermark
        expect(received.map((u: any) => u.watermark)).toEqual(range(1, persisted))
        expect(persisted).toBeLessThan(total)

        const again = (yield* connectJoined({ port: server.port, token: jwt })).client
        yield* subscribeOk(again, { topics: [runs], resume_after: { [runs]: persisted } })
        yield* again.waitForWatermark(runs, total)
        expect(again.watermarks(runs)).toEqual(range(persisted + 1, total))
        expect(server.process.exitCode).toBe(null)
      })),
    { timeout: 270_000 }
  )
})
