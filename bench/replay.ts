import { Effect } from "effect"
import pg from "pg"
import { clientFleet } from "./clients.js"
import { benchDatabase } from "./publish.js"
import type { Figure } from "./report.js"
import { figure } from "./report.js"
import { benchPublisher, publishBulk } from "./runtime.js"
import { khalaServe, socketUrl } from "./serve.js"
import { benchToken } from "./token.js"
import { now, topic } from "./workload.js"

export interface ReplayOptions {
  readonly updates: number
  readonly batchSize: number
}

/** The journal read page by page with plain SQL, as a replay must at least do; rows read and milliseconds. */
const rawPagedRead = (url: string, batchSize: number) =>
  Effect.acquireUseRelease(
    Effect.promise(async () => {
      const client = new pg.Client({ connectionString: url })
      await client.connect()
      return client
    }),
    (client) =>
      Effect.promise(async () => {
        const startedAt = now()
        let after = 0
        let rows = 0
        while (true) {
          // bounded as Khala bounds it (watermarks are dense), so both read by an index range scan
          const page = await client.query(
            "select * from khala.sync_stream_events where topic = $1 and watermark > $2 and watermark <= $2 + $3 " +
              "order by watermark limit $3",
            [topic, after, batchSize]
          )
          rows += page.rows.length
          if (page.rows.length < batchSize) break
          after = Number(page.rows[page.rows.length - 1].watermark)
        }
        return { rows, ms: now() - startedAt }
      }),
    (client) => Effect.promise(() => client.end())
  )

/**
 * Replay catch-up: `updates` appended, then one client in a client process subscribes from 0; from sending the
 * subscribe to the batch marked replay_complete, checking every watermark arrives once and in order. Against the
 * same journal rows read with paged raw SQL.
 */
export const replayScenario = (options: ReplayOptions) =>
  Effect.gen(function*() {
    const { url } = yield* benchDatabase
    const publisher = yield* benchPublisher(url)
    const appended = yield* publishBulk(publisher, { count: options.updates, batch: 1000, concurrency: 2 })
    const serve = yield* khalaServe(url)
    const fleet = yield* clientFleet(1)
    const socket = socketUrl(serve.port, yield* benchToken)
    const replay = yield* fleet.replay({ url: socket, replayBatchSize: options.batchSize })
    const raw = yield* rawPagedRead(url, options.batchSize)
    const scenario = `replay catch-up, ${appended.appended} updates, replay_batch_size ${options.batchSize}`
    const figures: Array<Figure> = [
      figure({
        scenario,
        figure: "subscribe → replay_complete",
        unit: "ms",
        value: replay.ms,
        baseline: `raw SQL: paged select of the same rows, ${options.batchSize} a page`,
        baselineValue: raw.ms
      }),
      figure({
        scenario,
        figure: "updates received",
        unit: "updates",
        value: replay.updates,
        baseline: "journal rows read by raw SQL",
        baselineValue: raw.rows
      }),
      {
        scenario,
        figure: "watermark gaps, duplicates or reorderings",
        unit: "updates",
        value: replay.violations,
        baseline: "",
        baselineValue: NaN,
        ratio: NaN
      }
    ]
    return figures
  }).pipe(Effect.scoped)
