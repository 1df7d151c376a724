import { Effect } from "effect"
import pg from "pg"
import type { Fleet } from "./clients.js"
import { clientFleet, processesFor } from "./clients.js"
import { benchDatabase } from "./publish.js"
import { rawServer } from "./rawServer.js"
import type { Figure } from "./report.js"
import { figure } from "./report.js"
import { benchPublisher, publishPaced } from "./runtime.js"
import { khalaServe, socketUrl } from "./serve.js"
import { latencySummary } from "./stats.js"
import { benchToken } from "./token.js"

export interface Load {
  readonly subscribers: number
  readonly rate: number
}

export interface LatencyOptions {
  readonly loads: ReadonlyArray<Load>
  readonly seconds: number
}

/** The raw server's broadcast tick: Khala's default poll interval, the wake-up any server on a timer would have. */
const tickMs = 10
const drain = { quietMs: 2000, maxMs: 20_000 }

/**
 * A backend reports its table statistics when it goes idle, at most once a second; one left idle with unreported
 * ones reports them 10 s later (PGSTAT_IDLE_INTERVAL). After the sockets subscribed, the server's connections still
 * hold scans of theirs that long, which a shorter wait would charge to the appends. After the appends, stopping the
 * server makes its backends exit, which reports everything at once.
 */
const statsSettleMs = 11_000
const backendExitMs = 1000

/** Index and sequential scans of the journal table so far: every journal read is one, no append is. */
const journalScans = (pool: pg.Pool) =>
  Effect.promise(() =>
    pool.query("select idx_scan + seq_scan as n from pg_stat_user_tables where relname = 'sync_stream_events'")
      .then((r) => Number(r.rows[0].n))
  )

/** Khala: paced single publishes from the bench process; the server is stopped when this returns. */
const khalaRun = (
  fleet: Fleet,
  url: string,
  pool: pg.Pool,
  load: Load,
  options: { readonly seconds: number; readonly head: number; readonly countReads: boolean }
) =>
  Effect.gen(function*() {
    const publisher = yield* benchPublisher(url)
    const serve = yield* khalaServe(url)
    const socket = socketUrl(serve.port, yield* benchToken)
    yield* fleet.open({ url: socket, sockets: load.subscribers, resumeAfter: options.head, mode: "latency" })
    if (options.countReads) yield* Effect.sleep(statsSettleMs)
    const scansBefore = yield* journalScans(pool)
    yield* fleet.reset
    const published = yield* publishPaced(publisher, { rate: load.rate, seconds: options.seconds })
    const { delivered, perFrame, report } = yield* fleet.collect(published.appended * load.subscribers, drain)
    return {
      ...latencySummary(report.latencies),
      delivered,
      perFrame,
      durableP99: latencySummary(Float64Array.from(published.durable)).p99,
      head: published.head,
      appended: published.appended,
      scansBefore
    }
  }).pipe(Effect.scoped)

/** Journal reads per append of a Khala run, once its server has stopped. */
const readsPerAppend = (pool: pg.Pool, run: { readonly scansBefore: number; readonly appended: number }) =>
  Effect.gen(function*() {
    yield* Effect.sleep(backendExitMs)
    return ((yield* journalScans(pool)) - run.scansBefore) / run.appended
  })

const rawRun = (fleet: Fleet, load: Load, seconds: number) =>
  Effect.gen(function*() {
    const server = yield* rawServer
    const url = socketUrl(server.port, yield* benchToken)
    yield* fleet.open({ url, sockets: load.subscribers, resumeAfter: 0, mode: "latency" })
    yield* fleet.reset
    const { generated } = yield* server.coalesce({ rate: load.rate, seconds, tickMs })
    const { delivered, perFrame, report } = yield* fleet.collect(generated * load.subscribers, drain)
    return { ...latencySummary(report.latencies), delivered, perFrame }
  }).pipe(Effect.scoped)

/**
 * Live delivery latency: `subscribers` sockets in client processes, `rate` single publishes per second from the
 * bench process; from just before each publish call to each socket's receipt. The floor: a raw server that
 * generates the same updates itself and broadcasts what is pending every 10 ms. The first load also counts the
 * journal reads per append.
 */
export const latencyScenario = (options: LatencyOptions) =>
  Effect.gen(function*() {
    const { url } = yield* benchDatabase
    const fleet = yield* clientFleet(processesFor(Math.max(...options.loads.map((l) => l.subscribers))))
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const pool = new pg.Pool({ connectionString: url, max: 2 })
        // pool.end() resolves before its idle clients have closed: the database drop that follows may kill them
        pool.on("error", () => {})
        return pool
      }),
      (pool) => Effect.promise(() => pool.end())
    )
    const figures: Array<Figure> = []
    let head = 0
    for (const [i, load] of options.loads.entries()) {
      const countReads = i === 0
      const khala = yield* khalaRun(fleet, url, pool, load, { seconds: options.seconds, head, countReads })
      const reads = countReads ? yield* readsPerAppend(pool, khala) : NaN
      head = khala.head
      const raw = yield* rawRun(fleet, load, options.seconds)
      const scenario = `live delivery, ${load.subscribers} subscribers × ${load.rate} appends/s, ${options.seconds} s`
      const baseline = `raw ws, same updates broadcast every ${tickMs} ms`
      for (const p of ["p50", "p95", "p99"] as const) {
        const label = `append→receive ${p}`
        figures.push(figure({ scenario, figure: label, unit: "ms", value: khala[p], baseline, baselineValue: raw[p] }))
      }
      figures.push(figure({
        scenario,
        figure: "updates delivered",
        unit: "% of appends × subscribers",
        value: 100 * khala.delivered,
        baseline,
        baselineValue: 100 * raw.delivered
      }))
      figures.push({
        scenario,
        figure: "publish → durable p99 (included above)",
        unit: "ms",
        value: khala.durableP99,
        baseline: "the raw floor has no database",
        baselineValue: NaN,
        ratio: NaN
      })
      figures.push(figure({
        scenario,
        figure: "updates per frame received",
        unit: "updates",
        value: khala.perFrame,
        baseline,
        baselineValue: raw.perFrame
      }))
      if (countReads) {
        figures.push({
          scenario,
          figure: "journal reads per append",
          unit: "reads",
          value: reads,
          baseline: "",
          baselineValue: NaN,
          ratio: NaN
        })
      }
    }
    return figures
  }).pipe(Effect.scoped)
