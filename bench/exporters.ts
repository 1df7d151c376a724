/**
 * What each way of serving `/metrics` costs (docs/metrics.md): an update on the hot path, in nanoseconds, for Effect
 * `Metric` instruments (which `@effect/opentelemetry` reads only at a scrape) against prom-client's instruments, and a
 * scrape of a registry as large as a node serving `topics` topics holds. Measured in a process of its own
 * (`exportersProcess.ts`).
 */
import { Effect } from "effect"
import type { ExportersProtocol, ExportersRequest } from "./exportersProcess.js"
import { caller } from "./ipc.js"
import { forkBenchScript } from "./processes.js"
import type { Figure } from "./report.js"
import { figure } from "./report.js"

export const exportersScenario = (options: ExportersRequest) =>
  Effect.gen(function*() {
    const child = yield* forkBenchScript("./exportersProcess.ts")
    const call = caller<ExportersProtocol>(child)
    const { scrape, updates } = yield* Effect.promise(() => call("run", options))
    const scenario = `metric updates, ${options.topics} topics, ${options.updates} × ${options.rounds}`
    const figures: Array<Figure> = []
    for (const cost of updates) {
      figures.push(figure({
        scenario,
        figure: `${cost.operation}: Effect Metric`,
        unit: "ns/update",
        value: cost.effect,
        baseline: "prom-client",
        baselineValue: cost.promClient
      }))
      if (cost.promClientLabelObject !== undefined) {
        figures.push(figure({
          scenario,
          figure: `${cost.operation}: Effect Metric`,
          unit: "ns/update",
          value: cost.effect,
          baseline: "prom-client, label object",
          baselineValue: cost.promClientLabelObject
        }))
      }
    }
    const scrapeScenario = `scrape, ${options.topics} topics (${scrape.lines} samples, ${
      Math.round(scrape.bytes / 1024)
    } KiB)`
    figures.push(figure({
      scenario: scrapeScenario,
      figure: "@effect/opentelemetry + exporter-prometheus",
      unit: "ms/scrape",
      value: scrape.otel,
      baseline: "prom-client",
      baselineValue: scrape.promClient
    }))
    return figures
  }).pipe(Effect.scoped)
