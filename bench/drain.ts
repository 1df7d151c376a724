/**
 * Draining a node (src/server/Drain.ts) at scale: two `khala serve` nodes on one database, `sockets` subscribed
 * sockets on node A, SIGTERM to A while a runtime publishes at a steady rate. Each socket, closed by A, resumes on
 * node B from the last watermark it received.
 *
 * Figures: when the closes came, as quantiles of the drain window (uniform times put the p10 at 0.1, the median at
 * 0.5, the p90 at 0.9 of it); the most reconnects to B in one tenth of the window against a uniform spread's share;
 * how long A took to exit; and how many clients saw exactly every row once across both nodes (all of them).
 *
 * The sockets live in the bench process (plain `ws`); the servers in their own.
 */
import { Effect, Fiber } from "effect"
import WebSocket from "ws"
import { benchDatabase } from "./publish.js"
import { figure } from "./report.js"
import { benchPublisher, publishPaced } from "./runtime.js"
import { khalaServe, socketUrl } from "./serve.js"
import { percentile } from "./stats.js"
import { benchToken } from "./token.js"
import { now, topic } from "./workload.js"

export interface DrainOptions {
  readonly sockets: number
  readonly windowSeconds: number
  /** Appends per second during the drain. */
  readonly rate: number
}

interface Client {
  readonly ws: WebSocket
  readonly watermarks: Array<number>
  closedAt: number | undefined
  code: number | undefined
}

/** Opens a socket, joins, subscribes after `resumeAfter`, and waits for the end of its replay. */
const subscribed = (url: string, resumeAfter: number, watermarks: Array<number>) =>
  Effect.acquireRelease(
    Effect.async<Client>((resume) => {
      const ws = new WebSocket(url)
      const client: Client = { ws, watermarks, closedAt: undefined, code: undefined }
      let done = false
      ws.on("open", () => {
        ws.send(JSON.stringify(["1", "1", "sync:v1", "phx_join", {}]))
        ws.send(JSON.stringify(["1", "2", "sync:v1", "sync:subscribe", {
          topics: [topic],
          resume_after: [{ topic, watermark: resumeAfter }]
        }]))
      })
      ws.on("message", (data) => {
        const frame = JSON.parse(data.toString())
        if (frame[3] !== "sync:update_batch") return
        for (const update of frame[4].updates) watermarks.push(Number(update.watermark))
        if (!done && frame[4].replay_complete === true) {
          done = true
          resume(Effect.succeed(client))
        }
      })
      ws.on("close", (code) => {
        client.closedAt = now()
        client.code = code
      })
      ws.on("error", () => undefined)
    }),
    (client) => Effect.sync(() => client.ws.terminate())
  )

const closed = (client: Client) =>
  Effect.async<void>((resume) => {
    if (client.closedAt !== undefined) return resume(Effect.void)
    client.ws.once("close", () => resume(Effect.void))
  })

/** Whether a process still runs. */
const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const drain = (options: DrainOptions) =>
  Effect.gen(function*() {
    const { url } = yield* benchDatabase
    const publisher = yield* benchPublisher(url, 4)
    const windowMs = options.windowSeconds * 1000
    const nodeA = yield* khalaServe(url, { KHALA_DRAIN_WINDOW: `${windowMs} millis` })
    const nodeB = yield* khalaServe(url)
    const token = yield* benchToken
    yield* publishPaced(publisher, { rate: 100, seconds: 0.2 })

    const clients = yield* Effect.forEach(
      Array.from({ length: options.sockets }),
      () => subscribed(socketUrl(nodeA.port, token), 0, []),
      { concurrency: 50 }
    )
    // each client resumes on B from the last watermark it received, keeping one list of watermarks across both
    const moved = yield* Effect.forEach(clients, (client) =>
      Effect.gen(function*() {
        yield* closed(client)
        const resumedAt = now()
        yield* subscribed(socketUrl(nodeB.port, token), client.watermarks.at(-1) ?? 0, client.watermarks)
        return resumedAt
      }), { concurrency: "unbounded" }).pipe(Effect.fork)
    const writer = yield* publishPaced(publisher, { rate: options.rate, seconds: options.windowSeconds + 2 }).pipe(
      Effect.fork
    )

    yield* Effect.sleep("500 millis")
    const signalledAt = now()
    process.kill(nodeA.pid, "SIGTERM")
    while (alive(nodeA.pid)) yield* Effect.sleep("20 millis")
    const exitMs = now() - signalledAt
    const resumedAt = yield* Fiber.join(moved)
    yield* Fiber.join(writer)

    const head = Math.max(...clients.map((c) => c.watermarks.at(-1) ?? 0))
    const deadline = now() + 30_000
    while (clients.some((c) => c.watermarks.at(-1) !== head) && now() < deadline) yield* Effect.sleep("50 millis")
    const exact = clients.filter((c) => c.watermarks.length === head && c.watermarks.every((w, i) => w === i + 1))
    const codes = clients.filter((c) => c.code === 1001).length

    const closes = clients.map((c) => (c.closedAt ?? Infinity) - signalledAt).sort((a, b) => a - b)
    const ofWindow = (q: number) => percentile(closes, q) / windowMs
    const tenth = windowMs / 10
    const perTenth = new Map<number, number>()
    for (const t of resumedAt) {
      perTenth.set(
        Math.floor((t - signalledAt) / tenth),
        (perTenth.get(Math.floor((t - signalledAt) / tenth)) ?? 0) + 1
      )
    }
    const peakTenth = Math.max(...perTenth.values())

    const scenario = `drain ${options.sockets} sockets, ${options.windowSeconds} s window`
    return [
      figure({
        scenario,
        figure: "close p10",
        unit: "of window",
        value: ofWindow(10),
        baseline: "uniform",
        baselineValue: 0.1
      }),
      figure({
        scenario,
        figure: "close median",
        unit: "of window",
        value: ofWindow(50),
        baseline: "uniform",
        baselineValue: 0.5
      }),
      figure({
        scenario,
        figure: "close p90",
        unit: "of window",
        value: ofWindow(90),
        baseline: "uniform",
        baselineValue: 0.9
      }),
      figure({
        scenario,
        figure: "last close",
        unit: "of window",
        value: closes.at(-1)! / windowMs,
        baseline: "window",
        baselineValue: 1
      }),
      figure({
        scenario,
        figure: "peak reconnects in a tenth of the window",
        unit: "sockets",
        value: peakTenth,
        baseline: "uniform tenth",
        baselineValue: options.sockets / 10
      }),
      figure({
        scenario,
        figure: "SIGTERM to exit",
        unit: "ms",
        value: exitMs,
        baseline: "window",
        baselineValue: windowMs
      }),
      figure({
        scenario,
        figure: "closed with 1001",
        unit: "sockets",
        value: codes,
        baseline: "all",
        baselineValue: options.sockets
      }),
      figure({
        scenario,
        figure: `saw rows 1..${head} once`,
        unit: "sockets",
        value: exact.length,
        baseline: "all",
        baselineValue: options.sockets
      })
    ]
  })

export const drainScenario = (options: DrainOptions) => Effect.scoped(drain(options))
