/**
 * Abandoned replays harm nobody (I9), measured on a real `khala serve`: in each round, `sockets` sockets join and
 * subscribe to three topics from 0 (one of them holding `rows` rows), and 300 ms after the last subscribe all are
 * terminated at once, abandoning thousands of replays mid-read and every journal read queued behind them. A canary
 * socket beside them receives a live update every 20 ms throughout.
 *
 * Figures: whether the server is still up after every round (and how many rounds it survived), the canary's missed
 * updates (must be 0), and its longest append→receive during the rounds against its p99 before them.
 */
import { Effect, Schedule } from "effect"
import WebSocket from "ws"
import * as AuthJose from "../src/auth/AuthJose.js"
import { benchDatabase } from "./publish.js"
import { figure } from "./report.js"
import { benchPublisher, publishBulk } from "./runtime.js"
import { khalaServe, socketUrl } from "./serve.js"
import { percentile } from "./stats.js"
import { authKeys } from "./token.js"
import { now, orgId, topic } from "./workload.js"

export interface AbandonOptions {
  readonly sockets: number
  readonly rows: number
  readonly rounds: number
}

const topics = [topic, "runtime.notifications", "runtime.codex_worker_events"]

const token = Effect.suspend(() => {
  const [kid = "", secret = ""] = authKeys.split(":")
  return AuthJose.make([{ kid, secret: new TextEncoder().encode(secret) }])
    .sign({ subject: "abandon", orgId, scopes: topics, ttlSeconds: 3600 })
})

/**
 * A socket that joins and subscribes to every topic from 0; resolves once the subscribe is sent. An abandoned one
 * stops reading at once, so that the bench process spends nothing on the replays it is about to abandon and the
 * server's sends to it wait, as they do for a client that vanished.
 */
const opened = (url: string, abandoned: boolean): Effect.Effect<WebSocket> =>
  Effect.async<WebSocket, Error>((resume) => {
    const ws = new WebSocket(url)
    let open = false
    // an upgrade refused with 503 (too many at once) is tried again, as clients do
    ws.on("error", (error) => {
      if (!open) resume(Effect.fail(error))
    })
    ws.on("open", () => {
      open = true
      ws.send(JSON.stringify(["1", "1", "sync:v1", "phx_join", {}]))
      ws.send(JSON.stringify(["1", "2", "sync:v1", "sync:subscribe", {
        topics,
        resume_after: Object.fromEntries(topics.map((t) => [t, 0]))
      }]))
      if (abandoned) (ws as any)._socket.pause()
      resume(Effect.succeed(ws))
    })
  }).pipe(
    Effect.tapError(() => Effect.sync(() => refused++)),
    Effect.retry(Schedule.spaced("100 millis")),
    Effect.orDie
  )

let refused = 0

export const abandonScenario = (options: AbandonOptions) =>
  Effect.gen(function*() {
    const { url } = yield* benchDatabase
    const publisher = yield* benchPublisher(url, 4)
    const seededFrom = now()
    yield* publishBulk(publisher, { count: options.rows, batch: 1000, concurrency: 2 })
    console.error(`bench: abandon: ${options.rows} rows in ${((now() - seededFrom) / 1000).toFixed(1)} s`)
    const serve = yield* khalaServe(url, { KHALA_IDLE_TIMEOUT: "10 minutes" })
    const socket = socketUrl(serve.port, yield* token)
    const alive = () => {
      try {
        process.kill(serve.pid, 0)
        return true
      } catch {
        return false
      }
    }

    // the canary: subscribed from the head, counting live updates by their key and timing them
    const canary = yield* opened(socket, false)
    const received = new Set<string>()
    const latencies: Array<{ at: number; ms: number }> = []
    canary.on("message", (data) => {
      for (const match of data.toString().matchAll(/"doc_key":"(canary-[0-9]+)"[^}]*"t":([0-9.]+)/g)) {
        received.add(match[1]!)
        latencies.push({ at: now(), ms: now() - Number(match[2]) })
      }
    })
    let sent = 0
    yield* Effect.forkScoped(Effect.forever(
      Effect.suspend(() => {
        const docKey = `canary-${++sent}`
        return publisher.publish({ topic, docKey, docVersion: 1, orgId, payload: { t: now() } })
      }).pipe(Effect.orDie, Effect.zipRight(Effect.sleep("20 millis")))
    ))
    // it talks, as a client does, so that the idle timeout never closes it
    yield* Effect.forkScoped(Effect.forever(
      Effect.sync(() => canary.send(JSON.stringify([null, "hb", "phoenix", "heartbeat", {}]))).pipe(
        Effect.zipRight(Effect.sleep("5 seconds"))
      )
    ))
    yield* Effect.sleep("3 seconds")
    const roundsFrom = now()

    let survived = 0
    for (let round = 0; round < options.rounds && alive(); round++) {
      const startedAt = now()
      const sockets = yield* Effect.forEach(Array.from({ length: options.sockets }), () => opened(socket, true), {
        concurrency: 100
      })
      yield* Effect.sleep("300 millis")
      for (const ws of sockets) ws.terminate()
      yield* Effect.sleep("2 seconds")
      if (alive()) survived++
      console.error(
        `bench: abandon round ${round + 1}: ${((now() - startedAt) / 1000).toFixed(1)} s, ${refused} upgrades retried`
      )
    }
    yield* Effect.sleep("2 seconds")
    const publishedBefore = sent
    const missed = Array.from({ length: publishedBefore - 50 }, (_, i) => `canary-${i + 1}`)
      .filter((key) => !received.has(key)).length
    const before = latencies.filter((l) => l.at < roundsFrom).map((l) => l.ms)
    const during = latencies.filter((l) => l.at >= roundsFrom).map((l) => l.ms)
    const scenario =
      `${options.sockets} sockets subscribe to 3 topics from 0 (${options.rows} rows), all cut 300 ms later`
    return [
      figure({
        scenario,
        figure: "rounds the server survived",
        unit: "rounds",
        value: survived,
        baseline: "rounds run",
        baselineValue: options.rounds
      }),
      figure({
        scenario,
        figure: `canary updates missed (of ${publishedBefore - 50})`,
        unit: "updates",
        value: missed,
        baseline: "none may be",
        baselineValue: 0
      }),
      figure({
        scenario,
        figure: "canary's longest append→receive during the rounds",
        unit: "ms",
        value: Math.max(0, ...during),
        baseline: "its p99 before",
        baselineValue: percentile(before.sort((a, b) => a - b), 99)
      })
    ]
  }).pipe(Effect.scoped)
