/**
 * Traces across nodes (docs/metrics.md, "Traces"): a publish on one node, under the runtime's own span, is delivered by
 * another node on the same database, and the spans of both nodes form one trace, linked by the trace context the
 * journal row carries.
 */
import { HttpServer } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import type { Exit } from "effect"
import { ConfigProvider, Context, Effect, Layer, Option, Redacted, Tracer } from "effect"
import pg from "pg"
import * as KhalaPg from "../../src/layers/KhalaPg.js"
import * as KhalaServer from "../../src/server/KhalaServer.js"
import * as Metrics from "../../src/services/Metrics.js"
import { Publisher } from "../../src/services/Publisher.js"
import * as Tracing from "../../src/services/Tracing.js"
import { authLayer } from "../support/InProcess.js"
import { token } from "../support/Khala.js"
import { connectJoined, subscribeOk } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"

const runs = "runtime.run_summaries"

/** An in-memory span exporter: every span that ended, in the order they ended. */
const memoryTracer = () => {
  const ended: Array<Tracer.Span> = []
  const randomHex = (length: number) =>
    Array.from({ length }, () => Math.floor(Math.random() * 16).toString(16)).join("")
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind) => {
      const attributes = new Map<string, unknown>()
      const allLinks = [...links]
      const span: Tracer.Span = {
        _tag: "Span",
        name,
        spanId: randomHex(16),
        traceId: Option.match(parent, { onNone: () => randomHex(32), onSome: (p) => p.traceId }),
        parent,
        context,
        status: { _tag: "Started", startTime },
        attributes,
        links: allLinks,
        sampled: true,
        kind,
        end: (endTime: bigint, exit: Exit.Exit<unknown, unknown>) => {
          ;(span as { status: Tracer.SpanStatus }).status = { _tag: "Ended", startTime, endTime, exit }
          ended.push(span)
        },
        attribute: (key, value) => void attributes.set(key, value),
        event: () => undefined,
        addLinks: (more) => {
          for (const link of more) allLinks.push(link)
        }
      }
      return span
    },
    context: (f) => f()
  })
  return { tracer, ended }
}

/** A Khala node on the database: the core over its own pool, and the socket on a free port. */
const node = (url: string) =>
  Effect.gen(function*() {
    const core = KhalaPg.layer().pipe(
      Layer.provideMerge(KhalaPg.layerPgClient({ url: Redacted.make(url), maxConnections: 4 })),
      Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["KHALA_TRACING", "true"]]))))
    )
    const server = HttpServer.serve(KhalaServer.syncRouter).pipe(
      Layer.provide(KhalaServer.layerSocket({})),
      Layer.provide(authLayer),
      Layer.provideMerge(core),
      Layer.provideMerge(KhalaServer.nodeServer({ port: 0 }))
    )
    const context = yield* Layer.build(server).pipe(Effect.orDie)
    const http = Context.get(context, HttpServer.HttpServer)
    return { context, port: http.address._tag === "TcpAddress" ? http.address.port : 0 }
  })

const parentId = (span: Tracer.Span) => Option.getOrUndefined(Option.map(span.parent, (p) => p.spanId))

describe.skipIf(!postgresAvailable)("traces", () => {
  it.live("one publish's trace runs from the runtime's span on node A to the socket write on node B", () => {
    const { ended, tracer } = memoryTracer()
    return Effect.scoped(Effect.gen(function*() {
      // the switch is process-wide: off again for the next test of this worker
      yield* Effect.addFinalizer(() => Tracing.setTracing(false))
      const db = yield* testDatabase
      const a = yield* node(db.url)
      const b = yield* node(db.url)

      const { client } = yield* connectJoined({ port: b.port, token: yield* token({ org: "org_a", scopes: [runs] }) })
      yield* subscribeOk(client, { topics: [runs] })
      yield* client.waitForReplayComplete(runs)

      // the runtime's request, publishing on node A
      yield* Effect.flatMap(
        Publisher,
        (publisher) =>
          publisher.publish({ topic: runs, docKey: "d1", docVersion: 1, orgId: "org_a", payload: { n: 1 } })
      ).pipe(
        Effect.withSpan("runtime.request"),
        Effect.provide(a.context)
      )
      yield* client.waitForWatermark(runs, 1)

      const named = (name: string) => ended.filter((s) => s.name === name)
      const request = named("runtime.request")[0]!
      const publish = named("khala.publish")[0]!
      const commit = named("khala.group_commit")[0]!
      expect(request).toBeDefined()
      expect(parentId(publish)).toBe(request.spanId)
      expect(parentId(commit)).toBe(publish.spanId)
      expect(commit.attributes.get("khala.batch_size")).toBe(1)

      // the journal row carries the commit's context, and node B reads it back from the database
      const traceContextOf = (watermark: number) =>
        Effect.acquireUseRelease(
          Effect.promise(async () => {
            const c = new pg.Client({ connectionString: db.url })
            await c.connect()
            return c
          }),
          (c) =>
            Effect.promise(() =>
              c.query<{ trace_context: string | null }>(
                "select trace_context from khala.sync_stream_events where topic = $1 and watermark = $2",
                [runs, watermark]
              )
            ),
          (c) => Effect.promise(() => c.end())
        ).pipe(Effect.map((result) => result.rows[0]?.trace_context))
      expect(yield* traceContextOf(1)).toBe(Tracing.traceparent(commit))

      // Node A has no subscriber, so the only tail that read the row is node B's
      yield* Effect.sleep("100 millis")
      const reads = named("khala.tail_read")
      expect(reads.length).toBe(1)
      expect(reads[0]!.traceId).toBe(request.traceId)
      expect(parentId(reads[0]!)).toBe(commit.spanId)
      expect(reads[0]!.attributes.get("khala.topic")).toBe(runs)
      const writes = named("khala.socket_write")
      expect(writes.length).toBe(1)
      expect(writes[0]!.traceId).toBe(request.traceId)
      expect(parentId(writes[0]!)).toBe(commit.spanId)

      // Inside the runtime's own transaction the row carries the publish's own context
      yield* Effect.flatMap(Publisher, (publisher) =>
        Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql.withTransaction(
            publisher.publish({ topic: runs, docKey: "d2", docVersion: 1, orgId: "org_a", payload: { n: 2 } })
          ))).pipe(Effect.withSpan("runtime.transaction"), Effect.provide(a.context))
      yield* client.waitForWatermark(runs, 2)
      const inTransaction = named("khala.publish").find((s) =>
        s.attributes.get("khala.topic") === runs && s !== publish
      )!
      // under the caller's span (through the SQL client's transaction span)
      expect(inTransaction.traceId).toBe(named("runtime.transaction")[0]!.traceId)
      expect(yield* traceContextOf(2)).toBe(Tracing.traceparent(inTransaction))
      // and a row published untraced carries none
      yield* Tracing.setTracing(false)
      yield* Effect.flatMap(
        Publisher,
        (publisher) =>
          publisher.publish({ topic: runs, docKey: "d3", docVersion: 1, orgId: "org_a", payload: { n: 3 } })
      ).pipe(
        Effect.provide(a.context)
      )
      expect(yield* traceContextOf(3)).toBeNull()

      // node A hinted node B over NOTIFY (both count in this one process)
      expect(Metrics.notifySent.unsafeValue([]).count).toBeGreaterThanOrEqual(1)
      expect(Metrics.notifyReceived.unsafeValue([]).count).toBeGreaterThanOrEqual(1)
    })).pipe(Effect.withTracer(tracer))
  }, 90_000)

  it.live("a caller's span decides whether a publish is traced; the sample ratio decides for the others", () => {
    const { ended, tracer } = memoryTracer()
    return Effect.scoped(Effect.gen(function*() {
      yield* Effect.addFinalizer(() => Tracing.setTracing(false))
      const db = yield* testDatabase
      const a = yield* node(db.url)
      const traceContexts = Effect.promise(async () => {
        const c = new pg.Client({ connectionString: db.url })
        await c.connect()
        try {
          const result = await c.query<{ doc_key: string; trace_context: string | null }>(
            "select doc_key, trace_context from khala.sync_stream_events where topic = $1 order by watermark",
            [runs]
          )
          return Object.fromEntries(result.rows.map((r) => [r.doc_key, r.trace_context]))
        } finally {
          await c.end()
        }
      })
      const publish = (docKey: string) =>
        Effect.flatMap(
          Publisher,
          (publisher) => publisher.publish({ topic: runs, docKey, docVersion: 1, orgId: "org_a", payload: { docKey } })
        ).pipe(Effect.provide(a.context))
      const unsampledCaller = Tracer.externalSpan({
        traceId: "0af7651916cd43dd8448eb211c80319c",
        spanId: "b7ad6b7169203331",
        sampled: false
      })

      // nothing traces a publish without a caller's span at ratio 0
      yield* Tracing.setTracing(true, 0)
      yield* publish("root_unsampled")
      // a sampled caller's span is followed whatever the ratio
      yield* publish("caller_sampled").pipe(Effect.withSpan("runtime.request"))
      // an unsampled one is followed too, at ratio 1
      yield* Tracing.setTracing(true, 1)
      yield* publish("caller_unsampled").pipe(Effect.withParentSpan(unsampledCaller))
      yield* publish("root_sampled")

      const contexts = yield* traceContexts
      expect(contexts["root_unsampled"]).toBeNull()
      expect(contexts["caller_unsampled"]).toBeNull()
      expect(contexts["caller_sampled"]).not.toBeNull()
      expect(contexts["root_sampled"]).not.toBeNull()
      const publishes = ended.filter((s) => s.name === "khala.publish")
      expect(publishes).toHaveLength(2)
      expect(publishes.some((s) => s.traceId === unsampledCaller.traceId)).toBe(false)
      const request = ended.find((s) => s.name === "runtime.request")!
      expect(publishes.filter((s) => s.traceId === request.traceId)).toHaveLength(1)
      // a shared commit of untraced publishes only makes no span
      expect(ended.filter((s) => s.name === "khala.group_commit")).toHaveLength(2)
    })).pipe(Effect.withTracer(tracer))
  }, 90_000)
})
