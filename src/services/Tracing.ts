/**
 * Khala's traces (docs/metrics.md, "Traces"): spans for a publish through its commit, the tail's read of the rows and
 * each live write to a socket, linked across processes by the publish's trace context, which the journal row carries
 * (`trace_context`, a W3C `traceparent`). Spans go to the runtime's Effect `Tracer` (an OpenTelemetry exporter layer,
 * for instance); the current span when publishing is their parent.
 *
 * Off by default: `KHALA_TRACING=true` turns it on, and so does an OTLP endpoint in the environment
 * (`KHALA_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`). Like the metrics switch, it is process-wide.
 */
import type { Tracer } from "effect"
import { Config, Context, Effect, Layer, Option, Tracer as EffectTracer } from "effect"

let tracing = false
// the share of publishes without a caller's span that are traced
let sampleRatio = 1

/** Whether Khala makes spans and writes trace contexts to the journal. */
export const isTracing = () => tracing

export const TracingConfig = Config.all({
  enabled: Config.option(
    Config.boolean("KHALA_TRACING").pipe(
      Config.withDescription("Spans for publishes, tail reads and socket writes, and trace contexts on journal rows")
    )
  ),
  sampleRatio: Config.number("KHALA_TRACE_SAMPLE_RATIO").pipe(
    Config.validate({ message: "a share from 0 to 1", validation: (r) => r >= 0 && r <= 1 }),
    Config.withDefault(1),
    Config.withDescription("The share of publishes without a caller's span that are traced (a caller's span decides)")
  ),
  khalaEndpoint: Config.option(Config.string("KHALA_OTLP_ENDPOINT")),
  otelEndpoint: Config.option(Config.string("OTEL_EXPORTER_OTLP_ENDPOINT"))
})

/**
 * `TracingConfig` decided: whether Khala traces (as `KHALA_TRACING` says, else when an OTLP endpoint is set) and
 * that endpoint, `KHALA_OTLP_ENDPOINT` before `OTEL_EXPORTER_OTLP_ENDPOINT`. Undefined when the settings are unreadable.
 */
export const tracingSettings: Effect.Effect<
  | { readonly enabled: boolean; readonly sampleRatio: number; readonly endpoint: Option.Option<string> }
  | undefined
> = Effect.orElseSucceed(
  Effect.map(TracingConfig, (config) => {
    const endpoint = Option.orElse(config.khalaEndpoint, () => config.otelEndpoint)
    return {
      enabled: Option.getOrElse(config.enabled, () => Option.isSome(endpoint)),
      sampleRatio: config.sampleRatio,
      endpoint
    }
  }),
  () => undefined
)

/** Sets whether Khala traces, from `tracingSettings`. */
export const layerConfig: Layer.Layer<never> = Layer.effectDiscard(
  Effect.flatMap(tracingSettings, (settings) =>
    Effect.gen(function*() {
      if (settings === undefined) return
      tracing = settings.enabled
      sampleRatio = settings.sampleRatio
      // `khala serve` exports them over OTLP (cli/Otlp.ts); a runtime's own tracer takes them otherwise
      if (tracing) yield* Effect.logInfo("tracing on: spans go to the fibers' Effect tracer")
    }))
)

/** Turns tracing on or off for the process (tests, benches), tracing `ratio` of the publishes without a parent. */
export const setTracing = (on: boolean, ratio = 1) =>
  Effect.sync(() => {
    tracing = on
    sampleRatio = ratio
  })

/** A span's W3C `traceparent`. */
export const traceparent = (span: Tracer.AnySpan): string =>
  `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`

const traceparentPattern = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** The span a `traceparent` names, as a parent or link of local spans; none when it is absent or malformed. */
export const fromTraceparent = (text: string | null | undefined): Option.Option<Tracer.ExternalSpan> => {
  if (text === null || text === undefined) return Option.none()
  const match = traceparentPattern.exec(text)
  if (match === null) return Option.none()
  return Option.some(EffectTracer.externalSpan({
    traceId: match[1]!,
    spanId: match[2]!,
    sampled: (parseInt(match[3]!, 16) & 1) === 1
  }))
}

/** The current span's `traceparent`, if the fiber has one. */
export const currentTraceparent: Effect.Effect<string | undefined> = Effect.map(
  Effect.serviceOption(EffectTracer.ParentSpan),
  Option.match({ onNone: () => undefined, onSome: traceparent })
)

/** Now, in the nanoseconds spans are timed in. */
export const nowNanos = (): bigint => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6))

/** Most rows of one read a span links to besides its parent. */
const maxLinks = 32

/**
 * Starts a span over work on journal rows (a tail read, a socket write), outside any fiber's span stack: a child of
 * the first traced row's publish, linked to the other publishes among the rows. None when no row was traced. The
 * caller ends it.
 */
export const startRowSpan = (
  tracer: Tracer.Tracer,
  name: string,
  rows: ReadonlyArray<{ readonly traceContext?: string | undefined }>,
  startTime: bigint,
  attributes: Record<string, unknown>
): Tracer.Span | undefined => {
  let parent: Tracer.ExternalSpan | undefined
  const links: Array<Tracer.SpanLink> = []
  const seen = new Set<string>()
  for (const row of rows) {
    if (row.traceContext === undefined || seen.has(row.traceContext) || links.length >= maxLinks) continue
    seen.add(row.traceContext)
    const span = fromTraceparent(row.traceContext)
    if (Option.isNone(span)) continue
    if (parent === undefined) parent = span.value
    else links.push({ _tag: "SpanLink", span: span.value, attributes: {} })
  }
  if (parent === undefined) return undefined
  const span = tracer.span(name, Option.some(parent), Context.empty(), links, startTime, "consumer")
  for (const [key, value] of Object.entries(attributes)) span.attribute(key, value)
  return span
}

/**
 * Runs `use` under a span that is a child of the current span, handing it the span's `traceparent`. Lighter than
 * `Effect.withSpan` on a path taken once per publish: the span is not put in the fiber's context, so spans made
 * inside `use` (the SQL client's) are its siblings.
 *
 * Sampled as OpenTelemetry's parent-based sampler does: under a caller's span, traced when that span is sampled;
 * without one, traced for `KHALA_TRACE_SAMPLE_RATIO` of the calls. Untraced, `use` gets no trace context: the rows
 * it writes carry none, and their reads and socket writes make no spans either.
 */
export const withSpanContext = <A, E, R>(
  name: string,
  kind: Tracer.SpanKind,
  attributes: Record<string, unknown>,
  use: (traceContext: string | undefined) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.flatMap(Effect.serviceOption(EffectTracer.ParentSpan), (parent) => {
    const sampled = Option.isSome(parent)
      ? parent.value.sampled
      : sampleRatio >= 1 || (sampleRatio > 0 && Math.random() < sampleRatio)
    if (!sampled) return use(undefined)
    return Effect.tracerWith((tracer) => {
      const span = tracer.span(name, parent, Context.empty(), [], nowNanos(), kind)
      for (const key in attributes) span.attribute(key, attributes[key])
      return Effect.onExit(use(traceparent(span)), (exit) => Effect.sync(() => span.end(nowNanos(), exit)))
    })
  })
