/**
 * The cost of Khala's instruments (docs/metrics.md): the fan-out and group-commit publish scenarios with the metrics
 * recorded (the default) against the same scenarios with `KHALA_METRICS=false`, in interleaved rounds so that drift
 * of the machine spreads over both alike. The goal is an overhead of at most 5%.
 */
import { Effect } from "effect"
import { clientFleet, processesFor } from "./clients.js"
import { khalaRun } from "./fanout.js"
import { benchDatabase, khalaLayer, publishLoop } from "./publish.js"
import type { Figure } from "./report.js"
import { figure } from "./report.js"

export interface InstrumentsOptions {
  readonly subscribers: ReadonlyArray<number>
  readonly seconds: number
  readonly writers: number
  readonly rounds: number
}

const settings = (on: boolean) => ({ KHALA_METRICS: String(on) })
/** Round i runs on then off, or off then on: neither setting always goes first. */
const order = (round: number) => (round % 2 === 0 ? [true, false] : [false, true])

export const instrumentsScenario = (options: InstrumentsOptions) =>
  Effect.gen(function*() {
    const { url } = yield* benchDatabase
    const fleet = yield* clientFleet(processesFor(Math.max(...options.subscribers)))
    const figures: Array<Figure> = []
    let head = 0
    for (const subscribers of options.subscribers) {
      const totals = { on: 0, off: 0 }
      for (let round = 0; round < options.rounds; round++) {
        for (const on of order(round)) {
          const run = yield* khalaRun(fleet, url, { subscribers, seconds: options.seconds, head }, settings(on))
          head = run.head
          totals[on ? "on" : "off"] += run.rate / options.rounds
        }
      }
      figures.push(figure({
        scenario: `fan-out, ${subscribers} subscriber${
          subscribers === 1 ? "" : "s"
        }, ${options.seconds} s × ${options.rounds}`,
        figure: "delivered updates/s with metrics",
        unit: "updates/s",
        value: totals.on,
        baseline: "KHALA_METRICS=false",
        baselineValue: totals.off
      }))
    }
    const publish = { on: 0, off: 0 }
    for (let round = 0; round < options.rounds; round++) {
      for (const on of order(round)) {
        const perSecond = yield* publishLoop(options.writers, options.seconds, 64).pipe(
          Effect.provide(khalaLayer(url, options.writers + 2, true, settings(on)))
        )
        publish[on ? "on" : "off"] += perSecond / options.rounds
      }
    }
    figures.push(figure({
      scenario:
        `publish, one topic, ${options.writers} writers × 64 in flight, ${options.seconds} s × ${options.rounds}`,
      figure: "Publisher.publish with group commit, with metrics",
      unit: "publishes/s",
      value: publish.on,
      baseline: "KHALA_METRICS=false",
      baselineValue: publish.off
    }))
    return figures
  }).pipe(Effect.scoped)
