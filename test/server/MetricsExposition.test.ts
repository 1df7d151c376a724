/**
 * The Prometheus text rendering of `GET /metrics` (docs/metrics.md): types, help, labels escaped, histogram buckets
 * cumulative and in order, one family per name whatever its label sets.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Metric, MetricBoundaries } from "effect"
import { exposition } from "../../src/server/Metrics.js"

describe("metrics exposition", () => {
  it.effect("renders counters, gauges, histograms and summaries in the text format", () =>
    Effect.gen(function*() {
      const counter = Metric.counter("test_expo_requests_total", { description: "Requests\nby reason" })
      yield* Metric.incrementBy(Metric.tagged(counter, "reason", "a \"quoted\" \\ one"), 2)
      yield* Metric.increment(Metric.tagged(counter, "reason", "plain"))
      yield* Metric.set(Metric.gauge("test_expo.gauge"), 7)
      const histogram = Metric.histogram("test_expo_seconds", MetricBoundaries.fromIterable([0.1, 1]))
      yield* Metric.update(histogram, 0.05)
      yield* Metric.update(histogram, 0.5)
      yield* Metric.update(histogram, 5)
      const summary = Metric.summary({
        name: "test_expo_summary",
        maxAge: "1 minute",
        maxSize: 10,
        error: 0.01,
        quantiles: [0.5]
      })
      yield* Metric.update(summary, 3)
      const text = exposition((yield* Metric.snapshot).filter((p) => p.metricKey.name.startsWith("test_expo")))
      expect(text.split("\n")).toEqual([
        "# TYPE test_expo_gauge gauge",
        "test_expo_gauge 7",
        "# HELP test_expo_requests_total Requests\\nby reason",
        "# TYPE test_expo_requests_total counter",
        "test_expo_requests_total{reason=\"a \\\"quoted\\\" \\\\ one\"} 2",
        "test_expo_requests_total{reason=\"plain\"} 1",
        "# TYPE test_expo_seconds histogram",
        "test_expo_seconds_bucket{le=\"0.1\"} 1",
        "test_expo_seconds_bucket{le=\"1\"} 2",
        "test_expo_seconds_bucket{le=\"+Inf\"} 3",
        "test_expo_seconds_sum 5.55",
        "test_expo_seconds_count 3",
        "# TYPE test_expo_summary summary",
        "test_expo_summary{quantile=\"0.5\"} 3",
        "test_expo_summary_sum 3",
        "test_expo_summary_count 1",
        ""
      ])
    }))
})
