/**
 * `khala serve` exports its spans over OTLP when an endpoint is configured (docs/metrics.md, "Traces"): a row published
 * by plain SQL under a runtime's trace context is read by the server's tail and written to a socket, and those spans
 * reach a local OTLP receiver in the publish's trace.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { tracesUrl } from "../../src/cli/Otlp.js"
import { sqlPublisher, startKhala, token } from "../support/Khala.js"
import { connectJoined, subscribeOk, waitUntil } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"

const runs = "runtime.run_summaries"

interface ReceivedSpan {
  readonly traceId: string
  readonly name: string
}

/** An OTLP/HTTP receiver of JSON trace exports, for the current scope. */
const receiver = Effect.acquireRelease(
  Effect.async<
    { readonly url: string; readonly spans: Array<ReceivedSpan>; readonly paths: Array<string>; close: () => void }
  >(
    (resume) => {
      const spans: Array<ReceivedSpan> = []
      const paths: Array<string> = []
      const server = createServer((request, response) => {
        let body = ""
        request.on("data", (chunk) => (body += chunk))
        request.on("end", () => {
          paths.push(request.url ?? "")
          const exported = JSON.parse(body) as {
            resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<ReceivedSpan> }> }>
          }
          for (const resource of exported.resourceSpans) {
            for (const scope of resource.scopeSpans) for (const span of scope.spans) spans.push(span)
          }
          response.writeHead(200, { "content-type": "application/json" }).end("{}")
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, spans, paths, close: () => server.close() }))
      })
    }
  ),
  (r) => Effect.sync(() => r.close())
)

describe("OTLP endpoint", () => {
  it("names the traces path under a base endpoint, with or without its slash", () => {
    expect(tracesUrl("http://collector:4318").toString()).toBe("http://collector:4318/v1/traces")
    expect(tracesUrl("http://collector:4318/otlp/").toString()).toBe("http://collector:4318/otlp/v1/traces")
  })

  describe.skipIf(!postgresAvailable)("khala serve", () => {
    it.live(
      "exports the tail read and socket write of a traced row in the publish's trace",
      () =>
        Effect.scoped(Effect.gen(function*() {
          const db = yield* testDatabase
          const otlp = yield* receiver
          const { server } = yield* startKhala(db.url, { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url })
          const { client } = yield* connectJoined({
            port: server.port,
            token: yield* token({ org: "org_a", scopes: [runs] })
          })
          yield* subscribeOk(client, { topics: [runs] })
          yield* client.waitForReplayComplete(runs)

          // the runtime's own trace, carried by the publishing transaction (docs/metrics.md)
          const traceId = "4bf92f3577b34da6a3ce929d0e0e4736"
          const sql = yield* sqlPublisher(db.url)
          yield* Effect.promise(async () => {
            await sql.client.query("begin")
            await sql.client.query("select set_config('khala.trace_context', $1, true)", [
              `00-${traceId}-00f067aa0ba902b7-01`
            ])
            await sql.client.query("select khala.publish($1, 'org_a:t1', 1, 'org_a', '{}'::jsonb)", [runs])
            await sql.client.query("commit")
          })
          yield* waitUntil(
            "the row's spans at the receiver",
            () =>
              ["khala.tail_read", "khala.socket_write"].every((name) =>
                otlp.spans.some((span) => span.name === name && span.traceId === traceId)
              ),
            { timeoutMs: 15_000, detail: () => ({ paths: otlp.paths, spans: otlp.spans.map((s) => s.name) }) }
          )
          expect(new Set(otlp.paths)).toEqual(new Set(["/v1/traces"]))
        })),
      { timeout: 180_000 }
    )
  })
})
