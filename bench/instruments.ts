/**
 * The cost of Khala's instruments (docs/metrics.md): the fan-out and group-commit publish scenarios with metrics
 * recorded (the default) against `KHALA_METRICS=false`, and with tracing on (`KHALA_TRACING=true`: spans to the
 * runtime's tracer, trace contexts on journal rows), for every publish and for a sample of them
 * (`KHALA_TRACE_SAMPLE_RATIO`), against tracing off. The settings take turns in rotating order,
 * after a discarded warm-up run, so that drift of the machine spreads over all alike. The goal is at most 5% each.
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

/** The sample ratio of the sampled variant: a share of publishes traced, as a busy deployment would set it. */
const sampleRatio = 0.1

const variants = {
  bare: { KHALA_METRICS: "false", KHALA_TRACING: "false" },
  metrics: { KHALA_METRICS: "true", KHALA_TRACING: "false" },
  traced: { KHALA_METRICS: "true", KHALA_TRACING: "true", KHALA_TRACE_SAMPLE_RATIO: "1" },
  sampled: { KHALA_METRICS: "true", KHALA_TRACING: "true", KHALA_TRACE_SAMPLE_RATIO: String(sampleRatio) }
} as const
type Variant = keyof typeof variants
const names = Object.keys(variants) as Array<Variant>

/** Runs `measure` for every variant, `rounds` times in rotating order after one warm-up; the mean of each. */
const compare = (rounds: number, measure: (settings: Record<string, string>) => Effect.Effect<number, unknown>) =>
  Effect.gen(function*() {
    yield* measure(variants.metrics)
    const totals: Record<Variant, number> = { bare: 0, metrics: 0, traced: 0, sampled: 0 }
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < names.length; i++) {
        const name = names[(i + round) % names.length]!
        totals[name] += (yield* measure(variants[name])) / rounds
      }
    }
    return totals
  })

const pair = (scenario: string, what: string, unit: string, totals: Record<Variant, number>): Array<Figure> => [
  figure({
    scenario,
    figure: `${what} with metrics`,
    unit,
    value: totals.metrics,
    baseline: "KHALA_METRICS=false",
    baselineValue: totals.bare
  }),
  figure({
    scenario,
    figure: `${what} with metrics and tracing, every publish`,
    unit,
    value: totals.traced,
    baseline: "metrics, tracing off",
    baselineValue: totals.metrics
  }),
  figure({
    scenario,
    figure: `${what} with metrics and tracing, ${100 * sampleRatio}% of publishes`,
    unit,
    value: totals.sampled,
    baseline: "metrics, tracing off",
    baselineValue: totals.metrics
  })
]

export const instrumentsScenario = (options: InstrumentsOptions) =>
  Effect.gen(function*() {
    const { url } = yield* benchDatabase
    const fleet = options.subscribers.length === 0
      ? undefined
      : yield* clientFleet(processesFor(Math.max(...options.subscribers)))
    let figures: Array<Figure> = []
    let head = 0
    for (const subscribers of options.subscribers) {
      const totals = yield* compare(options.rounds, (settings) =>
        Effect.map(khalaRun(fleet!, url, { subscribers, seconds: options.seconds, head }, settings), (run) => {
          head = run.head
          return run.rate
        }))
      const scenario = `fan-out, ${subscribers} subscriber${subscribers === 1 ? "" : "s"}, ${options.seconds} s × ` +
        `${options.rounds}`
      figures = figures.concat(pair(scenario, "delivered updates/s", "updates/s", totals))
    }
    const publish = yield* compare(options.rounds, (settings) =>
      publishLoop(options.writers, options.seconds, 64).pipe(
        Effect.provide(khalaLayer(url, options.writers + 2, true, settings))
      ))
    return figures.concat(
      pair(
        `publish, one topic, ${options.writers} writers × 64 in flight, ${options.seconds} s × ${options.rounds}`,
        "Publisher.publish with group commit",
        "publishes/s",
        publish
      )
    )
  }).pipe(Effect.scoped)
