import { Effect } from "effect"
import type { Fleet } from "./clients.js"
import { clientFleet, processesFor } from "./clients.js"
import { benchDatabase } from "./publish.js"
import { rawServer } from "./rawServer.js"
import type { Figure } from "./report.js"
import { figure } from "./report.js"
import { benchPublisher, publishFlood } from "./runtime.js"
import { khalaServe, socketUrl } from "./serve.js"
import { benchToken } from "./token.js"

export interface FanoutOptions {
  readonly subscribers: ReadonlyArray<number>
  readonly seconds: number
}

const batch = 10
const concurrency = 8
// A server behind its subscribers keeps delivering after the publishers stop; past this the run is cut short and
// counts what arrived (the rate stays meaningful, the delivered fraction says it was cut).
const maxDrainMs = 15_000
const drain = { quietMs: 2000, maxMs: maxDrainMs } as const

/** Updates per second received by all sockets together, over the time from `startedAt` to the last receipt. */
const deliveredPerSecond = (report: { readonly received: number; readonly lastAt: number }, startedAt: number) =>
  report.received === 0 ? 0 : report.received / ((report.lastAt - startedAt) / 1000)

/** Khala: the bench process publishes batches as fast as it can; the subscribers count what arrives. */
export const khalaRun = (
  fleet: Fleet,
  url: string,
  options: { subscribers: number; seconds: number; head: number },
  env: Record<string, string> = {}
) =>
  Effect.gen(function*() {
    const publisher = yield* benchPublisher(url, undefined, env)
    const serve = yield* khalaServe(url, env)
    const socket = socketUrl(serve.port, yield* benchToken)
    yield* fleet.open({ url: socket, sockets: options.subscribers, resumeAfter: options.head, mode: "count" })
    yield* fleet.reset
    const published = yield* publishFlood(publisher, { seconds: options.seconds, batch, concurrency })
    const { delivered, perFrame, report } = yield* fleet.collect(published.appended * options.subscribers, drain)
    return {
      rate: deliveredPerSecond(report, published.startedAt),
      delivered,
      perFrame,
      appendedPerSecond: published.appended / options.seconds,
      head: published.head
    }
  }).pipe(Effect.scoped)

/** The raw server broadcasts frames of the same shape as fast as its sockets drain. */
const rawRun = (fleet: Fleet, options: { subscribers: number; seconds: number }) =>
  Effect.gen(function*() {
    const server = yield* rawServer
    const url = socketUrl(server.port, yield* benchToken)
    yield* fleet.open({ url, sockets: options.subscribers, resumeAfter: 0, mode: "count" })
    yield* fleet.reset
    const flood = yield* server.flood({ seconds: options.seconds, updatesPerFrame: batch })
    const { delivered, perFrame, report } = yield* fleet.collect(flood.updates * options.subscribers, drain)
    return {
      rate: deliveredPerSecond(report, flood.startedAt),
      delivered,
      perFrame,
      sentPerSecond: flood.updates / options.seconds
    }
  }).pipe(Effect.scoped)

/**
 * Fan-out: one topic, `subscribers` sockets in client processes, appends as fast as the publisher goes; delivered
 * updates per second, against a raw `ws` broadcast of the same frames.
 */
export const fanoutScenario = (options: FanoutOptions) =>
  Effect.gen(function*() {
    const { url } = yield* benchDatabase
    const fleet = yield* clientFleet(processesFor(Math.max(...options.subscribers)))
    const figures: Array<Figure> = []
    let head = 0
    for (const subscribers of options.subscribers) {
      const khala = yield* khalaRun(fleet, url, { subscribers, seconds: options.seconds, head })
      head = khala.head
      const raw = yield* rawRun(fleet, { subscribers, seconds: options.seconds })
      const scenario = `fan-out, ${subscribers} subscriber${subscribers === 1 ? "" : "s"}, ${options.seconds} s`
      figures.push(
        figure({
          scenario,
          figure: `delivered updates/s (publishAll of ${batch}, ${concurrency} concurrent)`,
          unit: "updates/s",
          value: khala.rate,
          baseline: `raw ws broadcast of ${batch}-update frames, paused over 1 MiB buffered`,
          baselineValue: raw.rate
        }),
        figure({
          scenario,
          figure: "updates delivered",
          unit: "% of sent × subscribers",
          value: 100 * khala.delivered,
          baseline: "raw ws broadcast",
          baselineValue: 100 * raw.delivered
        }),
        // explains the rates: fewer, larger frames cost less per update on both ends
        figure({
          scenario,
          figure: "updates per frame received",
          unit: "updates",
          value: khala.perFrame,
          baseline: "raw ws broadcast",
          baselineValue: raw.perFrame
        }),
        // with few subscribers the publisher, not delivery, is the bound
        figure({
          scenario,
          figure: "updates appended (Khala) or sent (raw) per second",
          unit: "updates/s",
          value: khala.appendedPerSecond,
          baseline: "raw ws broadcast",
          baselineValue: raw.sentPerSecond
        })
      )
    }
    return figures
  }).pipe(Effect.scoped)
