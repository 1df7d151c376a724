/**
 * `GET /metrics`: every instrument of Effect's metric registry (Khala's are in `services/Metrics.ts`) in the Prometheus
 * text format (docs/metrics.md). The registry is the process's, so a runtime that records metrics of its own gets them
 * served here too.
 *
 * The instruments stay Effect's, so recording costs what it always did; `@effect/opentelemetry`'s producer reads the
 * registry only when a scrape asks, into exporter-prometheus's reader (its own HTTP server kept off), whose serializer
 * writes the text.
 */
// each module by its own path: the package index loads every SDK it wraps (web traces, logs), at every start
import * as Metrics from "@effect/opentelemetry/Metrics"
import * as Resource from "@effect/opentelemetry/Resource"
import { HttpRouter, HttpServerResponse } from "@effect/platform"
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus"
import { Context, Effect, Layer } from "effect"

/** The content type Prometheus scrapers ask for. */
export const contentType = "text/plain; version=0.0.4; charset=utf-8"

/** The metrics of the process, as `/metrics` serves them. */
export class MetricsExporter extends Context.Tag("khala/MetricsExporter")<MetricsExporter, {
  /** Every metric of Effect's registry, in the Prometheus text format. */
  readonly scrape: Effect.Effect<string>
}>() {}

/** The exporter over Effect's registry, for the layer's lifetime (the reader shuts down with it). */
export const layer: Layer.Layer<MetricsExporter> = Layer.scoped(
  MetricsExporter,
  Effect.gen(function*() {
    const reader = new PrometheusExporter({ preventServerStart: true })
    yield* Metrics.registerProducer(yield* Metrics.makeProducer, () => reader)
    // No `otel_scope_name` label (one value, the producer's, on every series) and no `target_info` (its attributes
    // would only name the producer; a scrape's job and instance already say which node it is).
    const serializer = new PrometheusSerializer(undefined, false, undefined, true, true)
    return MetricsExporter.of({
      scrape: Effect.gen(function*() {
        const { errors, resourceMetrics } = yield* Effect.promise(() => reader.collect())
        if (errors.length > 0) yield* Effect.logWarning("metrics collected with errors", ...errors)
        return serializer.serialize(resourceMetrics)
      })
    })
  })
).pipe(
  // the producer needs a resource; with `target_info` off, it is written nowhere
  Layer.provide(Resource.layer({ serviceName: "khala" }))
)

/** `GET /metrics` */
export const routes = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/metrics",
    Effect.flatMap(
      MetricsExporter,
      (exporter) => Effect.map(exporter.scrape, (text) => HttpServerResponse.text(text, { contentType }))
    )
  )
)
