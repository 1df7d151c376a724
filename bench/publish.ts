import { SqlClient } from "@effect/sql"
import { Clock, ConfigProvider, Effect, Layer, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import pg from "pg"
import * as KhalaPg from "../src/layers/KhalaPg.js"
import { Publisher } from "../src/services/Publisher.js"
import { Sequencer } from "../src/services/Sequencer.js"
import type { Figure } from "./report.js"
import { figure } from "./report.js"

const adminUrl = process.env["KHALA_BENCH_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"

const admin = (statement: string) =>
  Effect.promise(async () => {
    const client = new pg.Client({ connectionString: adminUrl })
    await client.connect()
    try {
      await client.query(statement)
    } finally {
      await client.end()
    }
  })

/** A database of its own for the run. */
export const benchDatabase = Effect.acquireRelease(
  Effect.gen(function*() {
    const name = `khala_bench_${randomBytes(4).toString("hex")}`
    yield* admin(`create database ${name}`)
    const url = new URL(adminUrl)
    url.pathname = `/${name}`
    return { name, url: url.toString() }
  }),
  ({ name }) => admin(`drop database if exists ${name} with (force)`)
)

/** Runs `writers` loops of `once` until `seconds` have passed; operations per second. */
const rate = <E, R>(
  writers: number,
  seconds: number,
  once: (writer: number, i: number) => Effect.Effect<unknown, E, R>
) =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    const deadline = start + seconds * 1000
    const counts = yield* Effect.forEach(
      Array.from({ length: writers }, (_, w) => w),
      (w) =>
        Effect.gen(function*() {
          let i = 0
          while ((yield* Clock.currentTimeMillis) < deadline) {
            yield* once(w, i++)
          }
          return i
        }),
      { concurrency: "unbounded" }
    )
    const elapsed = ((yield* Clock.currentTimeMillis) - start) / 1000
    return counts.reduce((a, b) => a + b, 0) / elapsed
  })

/** The tables of the raw SQL baselines: a per-topic counter and an append-only log. */
const rawTables = [
  "create table if not exists raw_seq (topic text primary key, head bigint not null)",
  "create table if not exists raw_events (topic text, watermark bigint, doc_key text, payload jsonb, " +
  "primary key (topic, watermark))"
]

/** The raw SQL of the per-call shape: lock and bump the topic's counter, append the row, one transaction each. */
const rawPerCall = (url: string, writers: number, seconds: number) =>
  Effect.gen(function*() {
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const pool = new pg.Pool({ connectionString: url, max: writers })
        // end() resolves before idle clients have closed, and the run's database drop may terminate one of them
        pool.on("error", () => undefined)
        return pool
      }),
      (pool) => Effect.promise(() => pool.end())
    )
    yield* Effect.promise(async () => {
      for (const ddl of rawTables) await pool.query(ddl)
      await pool.query("insert into raw_seq values ('t', 0)")
    })
    return yield* rate(writers, seconds, (w, i) =>
      Effect.promise(async () => {
        const client = await pool.connect()
        try {
          await client.query("begin")
          const { rows } = await client.query("update raw_seq set head = head + 1 where topic = 't' returning head")
          await client.query("insert into raw_events values ('t', $1, $2, $3)", [
            rows[0].head,
            `doc-${w}-${i}`,
            JSON.stringify({ writer: w, i })
          ])
          await client.query("commit")
        } finally {
          client.release()
        }
      }))
  })

/** The core over the bench database, with the group commit on or off. */
export const khalaLayer = (
  url: string,
  connections: number,
  groupCommit: boolean,
  settings: Record<string, string> = {}
) =>
  KhalaPg.layer().pipe(
    Layer.provideMerge(KhalaPg.layerPgClient({ url: Redacted.make(url), maxConnections: connections })),
    Layer.provide(Layer.setConfigProvider(
      ConfigProvider.fromMap(new Map([["KHALA_GROUP_COMMIT", String(groupCommit)], ...Object.entries(settings)]))
    ))
  )

export const publishLoop = (writers: number, seconds: number, inFlight: number) =>
  Effect.flatMap(Publisher, (publisher) =>
    rate(writers * inFlight, seconds, (w, i) =>
      publisher.publish({
        topic: "runtime.run_summaries",
        docKey: `doc-${w}-${i}`,
        docVersion: 1,
        orgId: "org_bench",
        payload: { writer: w, i }
      })))

/**
 * A runtime's own transaction: one authority row, then (per `publish`) the append, 8 callers at once, on one topic or
 * spread over `topics`. Three shapes through the same client and pool: with `Publisher.publish`, with the raw SQL of
 * the per-call append (UPDATE … RETURNING + INSERT), and the authority write alone.
 */
const callerTransactions = (writers: number, seconds: number, topics: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const publisher = yield* Publisher
    const topicOf = (w: number) => `bench.caller_${w % topics}`
    yield* (yield* Sequencer).register(
      Array.from({ length: topics }, (_, t) => ({ topic: topicOf(t), retentionClass: "unspecified" }))
    )
    yield* sql`create table if not exists bench_authority (id bigserial primary key, run_id text, state jsonb)`
    yield* Effect.forEach(rawTables, (ddl) => sql.unsafe(ddl), { discard: true })
    yield* sql`insert into raw_seq select ${"bench.caller_"} || t, 0 from generate_series(0, ${topics - 1}) t
      on conflict do nothing`
    const authority = (w: number, i: number) =>
      sql`insert into bench_authority (run_id, state) values (${`run-${w}-${i}`}, ${JSON.stringify({ w, i })})`
    const shapes = {
      authority: (w: number, i: number) => sql.withTransaction(authority(w, i)),
      raw: (w: number, i: number) =>
        sql.withTransaction(Effect.gen(function*() {
          yield* authority(w, i)
          const [row] = yield* sql<{ head: string }>`
            update raw_seq set head = head + 1 where topic = ${topicOf(w)} returning head`
          yield* sql`insert into raw_events values (${topicOf(w)}, ${row!.head}, ${`doc-${w}-${i}`},
            ${JSON.stringify({ w, i })})`
        })),
      khala: (w: number, i: number) =>
        sql.withTransaction(Effect.zipRight(
          authority(w, i),
          publisher.publish({
            topic: topicOf(w),
            docKey: `doc-${w}-${i}`,
            docVersion: 1,
            orgId: "org",
            payload: { w, i }
          })
        ))
    }
    // interleaved rounds, so that drift of the machine spreads over all three shapes alike
    const totals = { authority: 0, raw: 0, khala: 0 }
    const rounds = 3
    for (let round = 0; round < rounds; round++) {
      for (const shape of ["khala", "raw", "authority"] as const) {
        totals[shape] += (yield* rate(writers, seconds / rounds, shapes[shape])) / rounds
      }
    }
    const scenario = `caller transaction with a publish, ${writers} callers, ${
      topics === 1 ? "one topic" : `${topics} topics`
    }`
    const perTransaction = (perSecond: number) => 1000 / perSecond
    return [
      figure({
        scenario,
        figure: "time per transaction with Publisher.publish",
        unit: "ms (wall / concurrent tx)",
        value: perTransaction(totals.khala),
        baseline: "same transaction, raw SQL UPDATE…RETURNING + INSERT",
        baselineValue: perTransaction(totals.raw)
      }),
      figure({
        scenario,
        figure: "time per transaction with Publisher.publish",
        unit: "ms (wall / concurrent tx)",
        value: perTransaction(totals.khala),
        baseline: "authority write alone",
        baselineValue: perTransaction(totals.authority)
      })
    ]
  })

export const publishScenarios = (options: { readonly seconds: number; readonly writers: number }) =>
  Effect.scoped(Effect.gen(function*() {
    const { seconds, writers } = options
    const { url } = yield* benchDatabase
    const perCall = yield* publishLoop(writers, seconds, 1).pipe(Effect.provide(khalaLayer(url, writers + 2, false)))
    const raw = yield* rawPerCall(url, writers, seconds)
    // each publisher keeps many publishes in flight, as a busy runtime's request handlers do
    const grouped = yield* Effect.forEach([64, 256], (inFlight) =>
      Effect.map(
        publishLoop(writers, seconds, inFlight).pipe(Effect.provide(khalaLayer(url, writers + 2, true))),
        (perSecond) => ({ inFlight, perSecond })
      ))
    const inTransaction = yield* Effect.all([
      callerTransactions(writers, seconds, 1),
      callerTransactions(writers, seconds, writers)
    ]).pipe(Effect.provide(khalaLayer(url, writers + 2, true)))
    const figures: Array<Figure> = [
      ...inTransaction.flat(),
      figure({
        scenario: `publish, one topic, ${writers} concurrent writers`,
        figure: "Publisher.publish per call (group commit off)",
        unit: "publishes/s",
        value: perCall,
        baseline: "raw SQL UPDATE…RETURNING + INSERT per transaction",
        baselineValue: raw
      }),
      ...grouped.map(({ inFlight, perSecond }) =>
        figure({
          scenario: `publish, one topic, ${writers} writers × ${inFlight} in flight`,
          figure: "Publisher.publish with group commit",
          unit: "publishes/s",
          value: perSecond,
          baseline: "Publisher.publish per call",
          baselineValue: perCall
        })
      )
    ]
    return figures
  }))
