/**
 * `khala serve`'s span exporter: OTLP over HTTP (JSON) to `KHALA_OTLP_ENDPOINT` or the standard
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL: spans go to its `/v1/traces`), when tracing is on. A runtime that mounts
 * Khala provides its own tracer instead; Khala's spans go to whichever the fibers run with (docs/metrics.md, "Traces").
 */
import * as OtlpSerialization from "@effect/opentelemetry/OtlpSerialization"
import * as OtlpTracer from "@effect/opentelemetry/OtlpTracer"
import { NodeHttpClient } from "@effect/platform-node"
import { Effect, Layer, Option } from "effect"
import { tracingSettings } from "../services/Tracing.js"

/** The traces URL of an OTLP base endpoint. */
export const tracesUrl = (endpoint: string) => new URL("v1/traces", endpoint.endsWith("/") ? endpoint : `${endpoint}/`)

export const layerConfig: Layer.Layer<never> = Layer.unwrapEffect(
  Effect.gen(function*() {
    const settings = yield* tracingSettings
    if (settings === undefined || !settings.enabled || Option.isNone(settings.endpoint)) return Layer.empty
    const url = tracesUrl(settings.endpoint.value).toString()
    yield* Effect.logInfo("exporting spans over OTLP").pipe(Effect.annotateLogs("url", url))
    return OtlpTracer.layer({ url, resource: { serviceName: "khala" }, exportInterval: "1 second" }).pipe(
      Layer.provide(OtlpSerialization.layerJson),
      Layer.provide(NodeHttpClient.layerUndici)
    )
  })
)
