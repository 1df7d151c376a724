import { Effect } from "effect"
import type { ClientProtocol, OpenRequest, ReplayRequest, Report } from "./clientProcess.js"
import { caller } from "./ipc.js"
import { forkBenchScript } from "./processes.js"
import { concatSamples } from "./stats.js"

/** Enough processes for about 500 sockets each, at most `max`: on 2 cores more would only take turns. */
export const processesFor = (sockets: number, max = 2) => Math.min(max, Math.max(1, Math.ceil(sockets / 500)))

/** Client processes, started once per scenario and pointed at one server after another. */
export const clientFleet = (processes: number) =>
  Effect.gen(function*() {
    const calls = yield* Effect.forEach(
      Array.from({ length: processes }),
      () =>
        Effect.map(forkBenchScript("./clientProcess.ts"), (child) => {
          const call = caller<ClientProtocol>(child)
          return <K extends keyof ClientProtocol & string>(type: K, request: ClientProtocol[K]["request"]) =>
            Effect.promise(() => call(type, request))
        })
    )
    const all = <K extends keyof ClientProtocol & string>(type: K, request: ClientProtocol[K]["request"]) =>
      Effect.forEach(calls, (call) => call(type, request), { concurrency: "unbounded" })

    /** Opens `sockets` subscribed sockets on `url`, spread evenly over the processes; returns once all are live. */
    const open = (options: OpenRequest) =>
      Effect.forEach(calls, (call, i) => {
        const share = Math.floor(options.sockets / calls.length) + (i < options.sockets % calls.length ? 1 : 0)
        return share === 0 ? Effect.void : call("open", { ...options, sockets: share })
      }, { concurrency: "unbounded", discard: true })

    /** Counts and timings of all processes since the last reset, merged. */
    const report = Effect.map(all("report", null), (reports): Report => {
      const closed = reports.reduce((n, r) => n + r.closed, 0)
      // a socket the server closed (a slow consumer, a fault) stops counting: the figures then need reading with that
      if (closed > 0) console.error(`bench: the server closed ${closed} subscribed socket(s) during the run`)
      const active = reports.filter((r) => r.received > 0)
      return {
        received: reports.reduce((n, r) => n + r.received, 0),
        frames: reports.reduce((n, r) => n + r.frames, 0),
        firstAt: active.length === 0 ? 0 : Math.min(...active.map((r) => r.firstAt)),
        lastAt: active.length === 0 ? 0 : Math.max(...active.map((r) => r.lastAt)),
        latencies: concatSamples(reports.map((r) => r.latencies)),
        closed
      }
    })

    /**
     * Waits until the sockets have received `expected` updates in all, or nothing arrived for `quietMs`, or `maxMs`
     * passed; the count then.
     */
    const awaitReceived = (expected: number, options: { readonly quietMs: number; readonly maxMs: number }) =>
      Effect.gen(function*() {
        const start = Date.now()
        let last = -1
        let lastChange = start
        while (true) {
          const received = (yield* all("received", null)).reduce((a, b) => a + b, 0)
          const at = Date.now()
          if (received !== last) {
            last = received
            lastChange = at
          }
          if (received >= expected || at - lastChange >= options.quietMs || at - start >= options.maxMs) return received
          yield* Effect.sleep("100 millis")
        }
      })

    const close = Effect.asVoid(all("close", null))

    /** Waits for `expected` updates (or quiet), then reports and closes the sockets. */
    const collect = (expected: number, options: { readonly quietMs: number; readonly maxMs: number }) =>
      Effect.gen(function*() {
        yield* awaitReceived(expected, options)
        const r = yield* report
        yield* close
        return { report: r, delivered: r.received / expected, perFrame: r.received / r.frames }
      })

    return {
      open,
      reset: Effect.asVoid(all("reset", null)),
      report,
      collect,
      close,
      /** One socket of the first process replays the topic. */
      replay: (request: ReplayRequest) => calls[0]!("replay", request)
    }
  })

export type Fleet = Effect.Effect.Success<ReturnType<typeof clientFleet>>
