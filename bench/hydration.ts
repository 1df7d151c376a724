import { Effect, Fiber } from "effect"
import pg from "pg"
import { clientFleet, processesFor } from "./clients.js"
import { benchDatabase } from "./publish.js"
import type { Figure } from "./report.js"
import { figure } from "./report.js"
import { benchPublisher, publishBulk, publishPaced } from "./runtime.js"
import { khalaServe, socketUrl } from "./serve.js"
import { latencySummary } from "./stats.js"
import { benchToken } from "./token.js"
import { now, orgId, topic } from "./workload.js"

export interface HydrationOptions {
  /** Documents in the read model, listed from first to last. */
  readonly documents: number
  /** `limit` of each listing page, and rows of each raw keyset page. */
  readonly pageSize: number
  /** Subscribed sockets while the one-document GETs are timed. */
  readonly subscribers: number
  /** Appends per second delivered to those sockets meanwhile. */
  readonly publishRate: number
  /** How long the GETs are timed, each time. */
  readonly seconds: number
  /** GETs in flight at once. */
  readonly concurrency: number
}

/** The documents of the bench topic listed over HTTP, page after page: documents listed and milliseconds. */
const httpListing = (port: number, token: string, pageSize: number) =>
  Effect.promise(async () => {
    const startedAt = now()
    let cursor: string | null = null
    let documents = 0
    let snapshot: number | undefined
    do {
      const query = new URLSearchParams({ limit: String(pageSize) })
      if (cursor !== null) query.set("cursor", cursor)
      const response = await fetch(`http://127.0.0.1:${port}/sync/v1/topics/${topic}/documents?${query}`, {
        headers: { authorization: `Bearer ${token}` }
      })
      if (!response.ok) throw new Error(`listing answered ${response.status}: ${await response.text()}`)
      // parsed, as a client must: the raw read below gets its rows parsed by the driver too
      const page = (await response.json()) as {
        snapshot_watermark: number
        documents: Array<unknown>
        next_cursor: string | null
      }
      if (snapshot !== undefined && page.snapshot_watermark !== snapshot) throw new Error("the snapshot moved")
      snapshot = page.snapshot_watermark
      documents += page.documents.length
      cursor = page.next_cursor
    } while (cursor !== null)
    return { documents, ms: now() - startedAt }
  })

/** The same rows by plain keyset pagination over SQL, as a listing must at least do: rows read and milliseconds. */
const rawKeysetRead = (client: pg.Client, pageSize: number) =>
  Effect.promise(async () => {
    const startedAt = now()
    let after = ""
    let rows = 0
    while (true) {
      const page = await client.query(
        "select doc_key, doc_version, payload, payload_hash, watermark, deleted from khala.sync_documents " +
          "where topic = $1 and org_id = $2 and not deleted and doc_key > $3 order by doc_key limit $4",
        [topic, orgId, after, pageSize]
      )
      rows += page.rows.length
      if (page.rows.length < pageSize) break
      after = page.rows[page.rows.length - 1].doc_key
    }
    return { rows, ms: now() - startedAt }
  })

/** `concurrency` loops GETting random documents of `keys` for `seconds`: latency percentiles, in milliseconds. */
const timedGets = (
  port: number,
  token: string,
  options: { readonly keys: ReadonlyArray<string>; readonly seconds: number; readonly concurrency: number }
) =>
  Effect.promise(async () => {
    const samples: Array<number> = []
    let failures = 0
    const deadline = now() + options.seconds * 1000
    const loop = async () => {
      while (now() < deadline) {
        const key = options.keys[Math.floor(Math.random() * options.keys.length)]!
        const startedAt = now()
        const response = await fetch(`http://127.0.0.1:${port}/sync/v1/topics/${topic}/documents/${key}`, {
          headers: { authorization: `Bearer ${token}` }
        })
        await response.text()
        samples.push(now() - startedAt)
        if (!response.ok) failures++
      }
    }
    await Promise.all(Array.from({ length: options.concurrency }, loop))
    return { ...latencySummary(Float64Array.from(samples)), failures }
  })

/**
 * Hydration over HTTP (protocol.md §6) on a real `khala serve`: the whole listing of `documents` documents paged
 * through, against the same rows read by a raw keyset `select` in the same run; and the latency of a one-document
 * GET on an idle server, then with `subscribers` sockets (in client processes) subscribed and receiving
 * `publishRate` appends per second.
 */
export const hydrationScenario = (options: HydrationOptions) =>
  Effect.gen(function*() {
    const { url } = yield* benchDatabase
    const publisher = yield* benchPublisher(url)
    const appended = yield* publishBulk(publisher, { count: options.documents, batch: 1000, concurrency: 2 })
    const serve = yield* khalaServe(url)
    const token = yield* benchToken
    const sql = yield* Effect.acquireRelease(
      Effect.promise(async () => {
        const client = new pg.Client({ connectionString: url })
        await client.connect()
        return client
      }),
      (client) => Effect.promise(() => client.end())
    )

    // one pass of each first, so that both read warm pages and run warm code
    yield* httpListing(serve.port, token, options.pageSize)
    yield* rawKeysetRead(sql, options.pageSize)
    const listing = yield* httpListing(serve.port, token, options.pageSize)
    const raw = yield* rawKeysetRead(sql, options.pageSize)
    if (listing.documents !== appended.appended) {
      return yield* Effect.dieMessage(`listed ${listing.documents} of ${appended.appended} documents`)
    }

    // the keys the bulk publish gave its documents (other scenarios of the run may have numbered theirs before)
    const keys = yield* Effect.promise(() =>
      sql.query<{ doc_key: string }>(
        "select doc_key from khala.sync_documents where topic = $1 and org_id = $2",
        [topic, orgId]
      )
    ).pipe(Effect.map((result) => result.rows.map((row) => row.doc_key)))
    const gets = { keys, seconds: options.seconds, concurrency: options.concurrency }
    const idle = yield* timedGets(serve.port, token, gets)
    const fleet = yield* clientFleet(processesFor(options.subscribers))
    yield* fleet.open({
      url: socketUrl(serve.port, token),
      sockets: options.subscribers,
      resumeAfter: appended.head,
      mode: "count"
    })
    yield* fleet.reset
    const publishing = yield* Effect.fork(
      publishPaced(publisher, { rate: options.publishRate, seconds: options.seconds })
    )
    const loaded = yield* timedGets(serve.port, token, gets)
    const published = yield* Fiber.join(publishing)
    const { delivered } = yield* fleet.collect(published.appended * options.subscribers, {
      quietMs: 2000,
      maxMs: 20_000
    })

    const listed = `hydration listing, ${listing.documents} documents, ${options.pageSize} a page`
    const loadedScenario = `hydration GET one document, ${options.subscribers} subscribers × ` +
      `${options.publishRate} appends/s, ${options.concurrency} GETs in flight, ${options.seconds} s`
    const idleBaseline = `the same GETs, no subscribers (${idle.count} GETs)`
    const figures: Array<Figure> = [
      figure({
        scenario: listed,
        figure: "documents/s listed over HTTP",
        unit: "documents/s",
        value: listing.documents / (listing.ms / 1000),
        baseline: `raw SQL: keyset select of the same rows, ${options.pageSize} a page`,
        baselineValue: raw.rows / (raw.ms / 1000)
      }),
      ...(["p50", "p99"] as const).map((p) =>
        figure({
          scenario: loadedScenario,
          figure: `GET ${p}`,
          unit: "ms",
          value: loaded[p],
          baseline: idleBaseline,
          baselineValue: idle[p]
        })
      ),
      figure({
        scenario: loadedScenario,
        figure: "GETs",
        unit: "GETs",
        value: loaded.count,
        baseline: idleBaseline,
        baselineValue: idle.count
      }),
      {
        scenario: loadedScenario,
        figure: "GETs not answered 200",
        unit: "GETs",
        value: loaded.failures + idle.failures,
        baseline: "",
        baselineValue: NaN,
        ratio: NaN
      },
      {
        scenario: loadedScenario,
        figure: "updates delivered meanwhile",
        unit: "% of appends × subscribers",
        value: 100 * delivered,
        baseline: "",
        baselineValue: NaN,
        ratio: NaN
      }
    ]
    return figures
  }).pipe(Effect.scoped)
