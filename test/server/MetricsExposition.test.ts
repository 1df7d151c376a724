/**
 * What `GET /metrics` renders from Effect's registry (docs/metrics.md): types and help, labels escaped, histogram
 * buckets cumulative and in order, one family per name whatever its label sets, and how a runtime's summaries and
 * frequencies come out. The exporter is a library's; these lines are what operators' queries rely on, so they are
 * pinned here.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Metric, MetricBoundaries } from "effect"
import * as Exporter from "../../src/server/Metrics.js"

/** The lines of the families whose names start with `prefix`, `# UNIT` comments left out. */
const family = (text: string, prefix: string) =>
  text.split("\n").filter((line) =>
    (line.startsWith("#") ? line.split(" ")[2] ?? "" : line).startsWith(prefix) && !line.startsWith("# UNIT")
  )

describe("metrics exposition", () => {
  it.scoped("renders counters, gauges and histograms in the text format", () =>
    Effect.gen(function*() {
      const counter = Metric.counter("test_expo_requests_total", {
        description: "Requests\nby reason",
        incremental: true
      })
      yield* Metric.incrementBy(Metric.tagged(counter, "reason", "a \"quoted\" \\ one"), 2)
      yield* Metric.increment(Metric.tagged(counter, "reason", "plain"))
      yield* Metric.set(Metric.gauge("test_expo.gauge", { description: "A gauge" }), 7)
      const histogram = Metric.histogram("test_expo_seconds", MetricBoundaries.fromIterable([0.1, 1]), "Latency")
      yield* Metric.update(Metric.tagged(histogram, "topic", "t"), 0.05)
      yield* Metric.update(Metric.tagged(histogram, "topic", "t"), 0.5)
      yield* Metric.update(Metric.tagged(histogram, "topic", "t"), 5)
      yield* Metric.update(Metric.tagged(histogram, "topic", "u"), 0.5)
      const text = yield* Effect.flatMap(Exporter.MetricsExporter, (exporter) => exporter.scrape)

      expect(family(text, "test_expo_requests")).toEqual([
        "# HELP test_expo_requests_total Requests\\nby reason",
        "# TYPE test_expo_requests_total counter",
        "test_expo_requests_total{reason=\"a \\\"quoted\\\" \\\\ one\"} 2",
        "test_expo_requests_total{reason=\"plain\"} 1"
      ])
      // a name Prometheus does not allow is made one it does
      expect(family(text, "test_expo_gauge")).toEqual([
        "# HELP test_expo_gauge A gauge",
        "# TYPE test_expo_gauge gauge",
        "test_expo_gauge 7"
      ])
      expect(family(text, "test_expo_seconds")).toEqual([
        "# HELP test_expo_seconds Latency",
        "# TYPE test_expo_seconds histogram",
        "test_expo_seconds_count{topic=\"t\"} 3",
        "test_expo_seconds_sum{topic=\"t\"} 5.55",
        "test_expo_seconds_bucket{topic=\"t\",le=\"0.1\"} 1",
        "test_expo_seconds_bucket{topic=\"t\",le=\"1\"} 2",
        "test_expo_seconds_bucket{topic=\"t\",le=\"+Inf\"} 3",
        "test_expo_seconds_count{topic=\"u\"} 1",
        "test_expo_seconds_sum{topic=\"u\"} 0.5",
        "test_expo_seconds_bucket{topic=\"u\",le=\"0.1\"} 0",
        "test_expo_seconds_bucket{topic=\"u\",le=\"1\"} 1",
        "test_expo_seconds_bucket{topic=\"u\",le=\"+Inf\"} 1"
      ])
      // no label the series were not recorded with, and no info series beside them
      expect(text).not.toContain("otel_scope_name")
      expect(text).not.toContain("target_info")
    }).pipe(Effect.provide(Exporter.layer)))

  it.scoped("renders a runtime's summaries and frequencies as OpenTelemetry maps them", () =>
    Effect.gen(function*() {
      const summary = Metric.summary({
        name: "test_expo_summary",
        maxAge: "1 minute",
        maxSize: 10,
        error: 0.01,
        quantiles: [0.5]
      })
      yield* Metric.update(summary, 3)
      yield* Metric.update(summary, 5)
      yield* Metric.update(Metric.frequency("test_expo_words"), "hello")
      const text = yield* Effect.flatMap(Exporter.MetricsExporter, (exporter) => exporter.scrape)

      expect(family(text, "test_expo_summary").filter((line) => !line.startsWith("#"))).toEqual([
        "test_expo_summary_quantiles{quantile=\"min\"} 3",
        "test_expo_summary_quantiles{quantile=\"0.5\"} 3",
        "test_expo_summary_quantiles{quantile=\"max\"} 5",
        "test_expo_summary_count_total 2",
        "test_expo_summary_sum_total 8"
      ])
      expect(family(text, "test_expo_words").filter((line) => !line.startsWith("#"))).toEqual([
        "test_expo_words_total{key=\"hello\"} 1"
      ])
    }).pipe(Effect.provide(Exporter.layer)))
})
