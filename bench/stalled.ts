/**
 * Sockets that harm nobody (I9), measured on a real `khala serve`:
 *
 * - stalled: sockets that subscribe and then stop reading while large updates are published, so the server's sends
 *   to them wait. Figures: the server's CPU while they wait with no new traffic (waiting must cost none), its RSS per
 *   stalled socket (bounded by the send buffer limit), and a healthy socket's append→receive latency beside them.
 * - idle storm: sockets that fall silent at the same moment and hit the idle timeout together. Figure: the longest
 *   heartbeat round trip of a busy canary socket while they are closed, against its round trip before.
 *
 * The sockets live in the bench process (plain `ws`); the server in its own, so its CPU and memory are its own.
 */
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import WebSocket from "ws"
import { rssKiB } from "./processes.js"
import { benchDatabase } from "./publish.js"
import { figure } from "./report.js"
import { benchPublisher } from "./runtime.js"
import { khalaServe, socketUrl } from "./serve.js"
import { percentile } from "./stats.js"
import { benchToken } from "./token.js"
import { now, orgId, topic } from "./workload.js"

export interface StalledOptions {
  readonly sockets: number
  /** Sockets of the idle storm. */
  readonly stormSockets: number
  readonly seconds: number
  /** `KHALA_SEND_BUFFER_BYTES` of the server; its default when absent. */
  readonly sendBufferBytes?: number | undefined
}

/** CPU time (user + system) of a process so far, in ms, from /proc (Linux). */
const cpuMs = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  // utime and stime are fields 14 and 15 of the whole line, in clock ticks (100 per second on Linux)
  return (Number(fields[11]) + Number(fields[12])) * 10
}

interface BenchSocket {
  readonly ws: WebSocket
  readonly frames: Array<string>
  readonly closed: () => boolean
}

/** Opens a socket, joins, subscribes from `resumeAfter`, and waits for the end of its replay. */
const subscribed = (url: string, resumeAfter: number) =>
  Effect.acquireRelease(
    Effect.async<BenchSocket>((resume) => {
      const ws = new WebSocket(url)
      const frames: Array<string> = []
      let closed = false
      let done = false
      ws.on("open", () => {
        ws.send(JSON.stringify(["1", "1", "sync:v1", "phx_join", {}]))
        ws.send(JSON.stringify(["1", "2", "sync:v1", "sync:subscribe", {
          topics: [topic],
          resume_after: { [topic]: resumeAfter }
        }]))
      })
      ws.on("message", (data) => {
        const text = data.toString()
        frames.push(text)
        if (!done && text.includes("\"replay_complete\":true")) {
          done = true
          resume(Effect.succeed({ ws, frames, closed: () => closed }))
        }
      })
      ws.on("close", () => (closed = true))
      ws.on("error", () => undefined)
    }),
    (socket) => Effect.sync(() => socket.ws.terminate())
  )

/** Opens `count` subscribed sockets, `concurrency` at a time. */
const many = (url: string, count: number, resumeAfter: number) =>
  Effect.forEach(Array.from({ length: count }), () => subscribed(url, resumeAfter), { concurrency: 50 })

/** The quietest of the next `seconds` seconds of a process's CPU, in percent of one core. */
const quietestSecond = (pid: number, seconds: number) =>
  Effect.gen(function*() {
    const perSecond: Array<number> = []
    let before = cpuMs(pid)
    for (let i = 0; i < seconds; i++) {
      yield* Effect.sleep("1 second")
      const cpu = cpuMs(pid)
      perSecond.push((cpu - before) / 10)
      before = cpu
    }
    return Math.min(...perSecond)
  })

const bigPayload = (i: number) => ({ i, t: now(), blob: "x".repeat(64 * 1024) })
/**
 * 6 MiB for each socket: more than the kernel buffers for a client that stopped reading (the server's send buffer
 * grows to 4 MiB on Linux) plus the server's limit, so that every socket's sends wait in the server.
 */
const bigUpdates = 96

const stalled = (options: StalledOptions) =>
  Effect.gen(function*() {
    const { url } = yield* benchDatabase
    const publisher = yield* benchPublisher(url, 4)
    const serve = yield* khalaServe(url, {
      KHALA_SLOW_CONSUMER_TIMEOUT: "10 minutes",
      KHALA_IDLE_TIMEOUT: "10 minutes",
      ...(options.sendBufferBytes === undefined ? {} : { KHALA_SEND_BUFFER_BYTES: String(options.sendBufferBytes) })
    })
    const socket = socketUrl(serve.port, yield* benchToken)
    const healthy = yield* subscribed(socket, 0)
    const rssBefore = rssKiB(serve.pid)
    const sockets = yield* many(socket, options.sockets, 0)
    // the baseline: as many sockets, subscribed and reading, nothing published
    const readingCpu = yield* quietestSecond(serve.pid, 5)
    // they stop reading; the updates below fill the kernel's buffers, then the server's, up to its limit
    for (const s of sockets) (s.ws as any)._socket.pause()
    // one by one, so that each is a live batch of its own: the first ones fill the sockets, the next ones find them
    // over their limit, and their subscriptions wait for room
    const publishBig = (count: number) =>
      Effect.forEach(Array.from({ length: count }), (_, i) =>
        publisher.publish({ topic, docKey: `big-${i}-${now()}`, docVersion: 1, orgId, payload: bigPayload(i) }).pipe(
          Effect.zipLeft(Effect.sleep("10 millis"))
        ), { discard: true }).pipe(Effect.orDie)
    yield* publishBig(bigUpdates)
    // Every socket takes what fits in the kernel's buffers and up to its limit (catching up from the journal, a page
    // at a time), then only waits. The cost of waiting is the quietest second of the server's CPU that follows.
    const idleCpu = yield* quietestSecond(serve.pid, options.seconds)
    const rssStalled = rssKiB(serve.pid)
    // a healthy socket beside them: append→receive of small updates
    const latencies: Array<number> = []
    healthy.ws.on("message", (data) => {
      const match = /"t":([0-9.]+)/.exec(data.toString())
      if (match !== null) {
        latencies.push(now() - Number(match[1]))
      }
    })
    for (let i = 0; i < 50; i++) {
      yield* publisher.publish({ topic, docKey: `small-${i}-${now()}`, docVersion: 1, orgId, payload: { t: now(), i } })
        .pipe(Effect.orDie)
      yield* Effect.sleep("20 millis")
    }
    yield* Effect.sleep("1 second")
    latencies.sort((a, b) =>
      a - b
    )
    const scenario = `${options.sockets} stalled sockets (stopped reading, 6 MiB published to each)`
    return [
      figure({
        scenario,
        figure: "server CPU while they wait (quietest second)",
        unit: "% of a core",
        value: idleCpu,
        baseline: "the same sockets subscribed and reading, nothing published",
        baselineValue: readingCpu
      }),
      figure({
        scenario,
        figure: "server RSS per stalled socket",
        unit: "KiB",
        value: (rssStalled - rssBefore) / options.sockets,
        baseline: "KHALA_SEND_BUFFER_BYTES (default)",
        baselineValue: 256
      }),
      figure({
        scenario,
        figure: `healthy socket append→receive p99 (${latencies.length} samples)`,
        unit: "ms",
        value: percentile(latencies, 99),
        baseline: "its p50",
        baselineValue: percentile(latencies, 50)
      })
    ]
  }).pipe(Effect.scoped)

const idleStorm = (options: StalledOptions) =>
  Effect.gen(function*() {
    const { url } = yield* benchDatabase
    const idleSeconds = 8
    const serve = yield* khalaServe(url, { KHALA_IDLE_TIMEOUT: `${idleSeconds} seconds` })
    const socket = socketUrl(serve.port, yield* benchToken)
    const canary = yield* subscribed(socket, 0)
    const roundTrips: Array<{ at: number; ms: number }> = []
    let sentAt = 0
    canary.ws.on("message", (data) => {
      if (data.toString().startsWith("[null,\"hb\"")) roundTrips.push({ at: now(), ms: now() - sentAt })
    })
    const ping = Effect.sync(() => {
      sentAt = now()
      canary.ws.send(JSON.stringify([null, "hb", "phoenix", "heartbeat", {}]))
    })
    // the canary keeps talking every 25 ms throughout
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(ping, Effect.sleep("25 millis"))))
    const sockets = yield* many(socket, options.stormSockets, 0)
    const silentSince = now()
    const stormFrom = silentSince + (idleSeconds - 1) * 1000
    while (sockets.some((s) => !s.closed()) && now() - silentSince < (idleSeconds + 20) * 1000) {
      yield* Effect.sleep("100 millis")
    }
    yield* Effect.sleep("500 millis")
    const before = roundTrips.filter((r) => r.at > silentSince && r.at < stormFrom).map((r) => r.ms).sort((a, b) =>
      a - b
    )
    const storm = roundTrips.filter((r) => r.at >= stormFrom).map((r) => r.ms)
    return [
      figure({
        scenario: `${options.stormSockets} sockets hit the idle timeout together`,
        figure: "busy canary's longest heartbeat round trip while they close",
        unit: "ms",
        value: Math.max(0, ...storm),
        baseline: "its p99 before",
        baselineValue: percentile(before, 99)
      })
    ]
  }).pipe(Effect.scoped)

/** Both scenarios (`--stalled-sockets 0` or `--storm-sockets 0` leaves one out). */
export const stalledScenario = (options: StalledOptions) =>
  Effect.map(
    Effect.all([
      options.sockets > 0 ? stalled(options) : Effect.succeed([]),
      options.stormSockets > 0 ? idleStorm(options) : Effect.succeed([])
    ]),
    (figures) => figures.flat()
  )
