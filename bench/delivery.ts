import { PgClient } from "@effect/sql-pg"
import { Clock, Context, Effect, Layer, Redacted } from "effect"
import { spawn } from "node:child_process"
import { createServer } from "node:net"
import pg from "pg"
import WebSocket from "ws"
import * as AuthJose from "../src/layers/AuthJose.js"
import * as KhalaPg from "../src/layers/KhalaPg.js"
import { Publisher } from "../src/services/Publisher.js"
import type { Figure } from "./report.js"
import { benchDatabase } from "./publish.js"

const secret = "bench-secret-bench-secret-bench-secret"
const topic = "runtime.run_summaries"

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

/** A subscribed raw Phoenix client that records, per update, the time from the publish call to its arrival. */
const client = (port: number, token: string, latencies: Array<number>, counts: { received: number }) =>
  new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0&token=${token}`)
    ws.on("error", reject)
    ws.on("open", () => {
      ws.send(JSON.stringify(["1", "1", "sync:v1", "phx_join", {}]))
      ws.send(JSON.stringify(["1", "2", "sync:v1", "sync:subscribe", { topics: [topic] }]))
    })
    ws.on("message", (data) => {
      const [, , , event, payload] = JSON.parse(data.toString())
      if (event !== "sync:update_batch") return
      if (payload.replay_complete && payload.updates.length === 0) return resolve(ws)
      const now = Date.now()
      for (const update of payload.updates) {
        counts.received++
        latencies.push(now - update.payload.t)
      }
    })
  })

/**
 * Live delivery through a real `khala serve` on Postgres: `subscribers` sockets on one topic, appends at `rate` per
 * second for `seconds`; latency from the publish call to each socket's receipt, and journal reads per append (index
 * scans of the journal table, which every journal read is and no append is).
 */
export const deliveryScenario = (options: { readonly subscribers: number; readonly rate: number; readonly seconds: number }) =>
  Effect.scoped(Effect.gen(function*() {
    const { url } = yield* benchDatabase
    const port = yield* Effect.promise(freePort)
    yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(process.execPath, [new URL("../dist/main.js", import.meta.url).pathname, "serve"], {
          env: { ...process.env, DATABASE_URL: url, KHALA_PORT: String(port), KHALA_AUTH_HS256_KEYS: `bench:${secret}` },
          stdio: "ignore"
        })
      ),
      (child) => Effect.sync(() => child.kill("SIGTERM"))
    )
    yield* Effect.promise(async () => {
      for (let i = 0; i < 100; i++) {
        const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false)
        if (ok) return
        await new Promise((r) => setTimeout(r, 100))
      }
      throw new Error("khala serve did not become ready")
    })
    const signer = AuthJose.make([{ kid: "bench", secret: new TextEncoder().encode(secret) }])
    const token = yield* signer.sign({ subject: "bench", orgId: "org_bench", scopes: [topic], ttlSeconds: 3600 })
    const latencies: Array<number> = []
    const counts = { received: 0 }
    const sockets = yield* Effect.promise(() =>
      Promise.all(Array.from({ length: options.subscribers }, () => client(port, token, latencies, counts)))
    )
    yield* Effect.addFinalizer(() => Effect.sync(() => sockets.forEach((ws) => ws.terminate())))

    const pool = yield* Effect.acquireRelease(
      Effect.sync(() => new pg.Pool({ connectionString: url, max: 4 })),
      (pool) => Effect.promise(() => pool.end())
    )
    const journalScans = () =>
      pool.query("select idx_scan + seq_scan as n from pg_stat_user_tables where relname = 'sync_stream_events'")
        .then((r) => Number(r.rows[0].n))
    yield* Effect.sleep("1500 millis") // let statistics settle
    const scansBefore = yield* Effect.promise(journalScans)
    const appends = Math.round(options.rate * options.seconds)
    // The appends come from a runtime process composing Khala (this one): its publisher hints the server by NOTIFY.
    const runtime = yield* Layer.build(
      KhalaPg.layer().pipe(Layer.provideMerge(PgClient.layer({ url: Redacted.make(url), maxConnections: 4 })))
    )
    const publisher = Context.get(runtime, Publisher)
    yield* Effect.gen(function*() {
      const start = yield* Clock.currentTimeMillis
      yield* Effect.forEach(Array.from({ length: appends }, (_, i) => i), (i) =>
        Effect.gen(function*() {
          const wait = start + (i * 1000) / options.rate - (yield* Clock.currentTimeMillis)
          if (wait > 0) yield* Effect.sleep(wait)
          yield* publisher.publish({
            topic,
            docKey: `doc-${i}`,
            docVersion: 1,
            orgId: "org_bench",
            payload: { t: Date.now(), i }
          })
        }), { concurrency: 16, discard: true })
    })
    const expected = appends * options.subscribers
    yield* Effect.promise(async () => {
      const deadline = Date.now() + 30_000
      while (counts.received < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    })
    yield* Effect.sleep("1500 millis")
    const scans = (yield* Effect.promise(journalScans)) - scansBefore
    const sorted = [...latencies].sort((a, b) => a - b)
    const label = `live delivery, ${options.subscribers} subscribers × ${options.rate} appends/s`
    const figures: Array<Figure> = [
      { scenario: label, figure: "append→receive p50", unit: "ms", value: percentile(sorted, 50), baseline: "", baselineValue: NaN, ratio: NaN },
      { scenario: label, figure: "append→receive p99", unit: "ms", value: percentile(sorted, 99), baseline: "", baselineValue: NaN, ratio: NaN },
      { scenario: label, figure: "updates delivered", unit: "of expected", value: counts.received / expected, baseline: "", baselineValue: NaN, ratio: NaN },
      { scenario: label, figure: "journal reads per append", unit: "reads", value: scans / appends, baseline: "", baselineValue: NaN, ratio: NaN }
    ]
    return figures
  }))
