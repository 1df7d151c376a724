/**
 * `GET /metrics`: every instrument of Effect's metric registry (Khala's are in `services/Metrics.ts`) in the
 * Prometheus text exposition format, version 0.0.4 (docs/metrics.md). The registry is the process's, so a runtime that
 * records metrics of its own gets them served here too.
 */
import { HttpRouter, HttpServerResponse } from "@effect/platform"
import type { MetricLabel, MetricPair } from "effect"
import { Effect, Metric, MetricState, Option } from "effect"

/** The content type Prometheus scrapers ask for. */
export const contentType = "text/plain; version=0.0.4; charset=utf-8"

/** A metric or label name as Prometheus allows it. */
const metricName = (name: string) => {
  const cleaned = name.replace(/[^a-zA-Z0-9_:]/g, "_")
  return /^[0-9]/.test(cleaned) ? `_${cleaned}` : cleaned
}
const labelName = (name: string) => {
  const cleaned = name.replace(/[^a-zA-Z0-9_]/g, "_")
  return /^[0-9]/.test(cleaned) ? `_${cleaned}` : cleaned
}
const escapeLabel = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, "\\\"")
const escapeHelp = (text: string) => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

const number = (value: number | bigint) =>
  typeof value === "bigint"
    ? value.toString()
    : Number.isNaN(value)
    ? "NaN"
    : value === Infinity
    ? "+Inf"
    : value === -Infinity
    ? "-Inf"
    : String(value)

const labelSet = (labels: ReadonlyArray<MetricLabel.MetricLabel>, extra: ReadonlyArray<readonly [string, string]>) => {
  const pairs = [
    ...labels.map((l) => `${labelName(l.key)}="${escapeLabel(l.value)}"`),
    ...extra.map(([key, value]) => `${key}="${escapeLabel(value)}"`)
  ]
  return pairs.length === 0 ? "" : `{${pairs.join(",")}}`
}

interface Family {
  readonly type: "counter" | "gauge" | "histogram" | "summary"
  readonly help: string | undefined
  readonly lines: Array<string>
}

/** The series of one metric key, appended to its family (one `# TYPE` per name, whatever its label sets). */
const render = (pair: MetricPair.MetricPair.Untyped, families: Map<string, Family>) => {
  const name = metricName(pair.metricKey.name)
  const tags = pair.metricKey.tags
  const state = pair.metricState
  const family = (type: Family["type"]) => {
    let f = families.get(name)
    if (f === undefined) {
      f = { type, help: Option.getOrUndefined(pair.metricKey.description), lines: [] }
      families.set(name, f)
    }
    return f
  }
  if (MetricState.isCounterState(state)) {
    family("counter").lines.push(`${name}${labelSet(tags, [])} ${number(state.count)}`)
  } else if (MetricState.isGaugeState(state)) {
    family("gauge").lines.push(`${name}${labelSet(tags, [])} ${number(state.value)}`)
  } else if (MetricState.isHistogramState(state)) {
    const lines = family("histogram").lines
    // Effect's buckets are cumulative and end with +Inf, as Prometheus wants them
    for (const [le, count] of state.buckets) {
      lines.push(`${name}_bucket${labelSet(tags, [["le", number(le)]])} ${number(count)}`)
    }
    lines.push(`${name}_sum${labelSet(tags, [])} ${number(state.sum)}`)
    lines.push(`${name}_count${labelSet(tags, [])} ${number(state.count)}`)
  } else if (MetricState.isSummaryState(state)) {
    const lines = family("summary").lines
    for (const [quantile, value] of state.quantiles) {
      lines.push(
        `${name}${labelSet(tags, [["quantile", String(quantile)]])} ${number(Option.getOrElse(value, () => NaN))}`
      )
    }
    lines.push(`${name}_sum${labelSet(tags, [])} ${number(state.sum)}`)
    lines.push(`${name}_count${labelSet(tags, [])} ${number(state.count)}`)
  } else if (MetricState.isFrequencyState(state)) {
    // a frequency is a counter per word
    const lines = family("counter").lines
    for (const [word, count] of state.occurrences) {
      lines.push(`${name}${labelSet(tags, [["key", word]])} ${number(count)}`)
    }
  }
}

/** The registry's metrics in the Prometheus text format. */
export const exposition = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, Family>()
  // series in a stable order: by name, then by label set; a histogram's lines stay in bucket order
  const keyed = pairs.map((pair) => ({
    pair,
    key: `${pair.metricKey.name}\u0000${pair.metricKey.tags.map((t) => `${t.key}=${t.value}`).join("\u0000")}`
  }))
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  for (const { pair } of keyed) render(pair, families)
  const out: Array<string> = []
  for (const [name, family] of families) {
    if (family.help !== undefined) out.push(`# HELP ${name} ${escapeHelp(family.help)}`)
    out.push(`# TYPE ${name} ${family.type}`)
    for (const line of family.lines) out.push(line)
  }
  return out.join("\n") + "\n"
}

/** `GET /metrics` */
export const routes = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/metrics",
    Effect.map(
      Metric.snapshot,
      (pairs) => HttpServerResponse.text(exposition(pairs), { contentType })
    )
  )
)
