/**
 * A reconnect storm (I9, protocol.md §10): many sockets resuming at once each start a replay, and the hub's read gate
 * (`KHALA_HUB_READ_CONCURRENCY`) lets only so many journal reads run at a time in the process; the others queue
 * instead of piling onto the database, and every socket still gets every row after its resume point, in order.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import { engine, registerCatalog } from "../../src/layers/Core.js"
import * as TopicCatalogModule from "../../src/protocol/TopicCatalog.js"
import { TopicCatalog } from "../../src/protocol/TopicCatalog.js"
import { HeadSignals } from "../../src/services/HeadSignals.js"
import { Journal } from "../../src/services/Journal.js"
import * as AppenderMemory from "../../src/storage/memory/AppenderMemory.js"
import * as DocumentsMemory from "../../src/storage/memory/DocumentsMemory.js"
import * as JournalMemory from "../../src/storage/memory/JournalMemory.js"
import * as MemoryStore from "../../src/storage/memory/MemoryStore.js"
import * as RetentionStoreMemory from "../../src/storage/memory/RetentionStoreMemory.js"
import * as RevocationsMemory from "../../src/storage/memory/RevocationsMemory.js"
import * as SequencerMemory from "../../src/storage/memory/SequencerMemory.js"
import { serveInProcess } from "../support/InProcess.js"
import { range, token } from "../support/Khala.js"
import { waitUntil } from "../support/PhoenixClient.js"
import { openRaw } from "../support/RawSocket.js"

const runs = "runtime.run_summaries"
const readConcurrency = 2
const sockets = 40
const rows = 300

/** Journal reads in flight now and at most, each held a few ms so that unbounded reads would overlap. */
const gauge = { now: 0, max: 0, total: 0 }

const countingJournal = Layer.effect(
  Journal,
  Effect.map(Journal, (journal) =>
    Journal.of({
      ...journal,
      read: (...args) =>
        Effect.acquireUseRelease(
          Effect.sync(() => {
            gauge.total++
            gauge.max = Math.max(gauge.max, ++gauge.now)
          }),
          () => Effect.zipRight(Effect.sleep("3 millis"), journal.read(...args)),
          () => Effect.sync(() => void gauge.now--)
        )
    }))
).pipe(Layer.provide(JournalMemory.layerMemory))

const core = Layer.effectDiscard(registerCatalog).pipe(
  Layer.provideMerge(engine(Layer.mergeAll(
    SequencerMemory.layerMemory,
    countingJournal,
    DocumentsMemory.layerMemory,
    RetentionStoreMemory.layerMemory,
    AppenderMemory.layerMemory
  ))),
  Layer.provide(HeadSignals.none),
  Layer.provide(MemoryStore.layer),
  Layer.provideMerge(Layer.effect(TopicCatalog, TopicCatalogModule.make({}))),
  Layer.provideMerge(RevocationsMemory.layerMemory),
  Layer.provide(Layer.setConfigProvider(
    ConfigProvider.fromMap(new Map([["KHALA_HUB_READ_CONCURRENCY", String(readConcurrency)]]))
  )),
  Layer.orDie
)

describe("reconnect storm", () => {
  it.live(`${sockets} sockets resuming at once: at most ${readConcurrency} replay reads at a time, every row delivered`, () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveInProcess({ core })
      for (const i of range(1, rows)) yield* server.publish({ docKey: `org_a:r${i}`, payload: { i } })
      const jwt = yield* token({ org: "org_a", scopes: [runs] })
      const clients = yield* Effect.forEach(range(0, sockets - 1), () => openRaw({ port: server.port, token: jwt }), {
        concurrency: 8
      })
      yield* Effect.forEach(clients, (raw) => raw.request("j", "j", "sync:v1", "phx_join", {}), {
        concurrency: "unbounded"
      })
      gauge.max = 0
      gauge.total = 0
      // every socket resumes from its own point, in small pages: many reads each, all requested at once
      yield* Effect.forEach(clients, (raw, i) =>
        raw.send(["j", "s", "sync:v1", "sync:subscribe", {
          topics: [runs],
          resume_after: { [runs]: i * 5 },
          replay_batch_size: 25
        }]))
      const received = (i: number) =>
        clients[i]!.pushes("sync:update_batch").flatMap((b) => b.updates.map((u: any) => u.watermark))
      yield* waitUntil(
        "every socket to reach the head",
        () => clients.every((_, i) => received(i).at(-1) === rows),
        { timeoutMs: 30_000, detail: () => clients.map((_, i) => received(i).at(-1)) }
      )
      for (const [i] of clients.entries()) expect(received(i)).toEqual(range(i * 5 + 1, rows))
      console.log(`reconnect storm: ${sockets} sockets, ${gauge.total} journal reads, at most ${gauge.max} at once`)
      // the replays needed many reads; the topic's tail reads beside the gated ones
      expect(gauge.total).toBeGreaterThan(sockets * 2)
      expect(gauge.max).toBeLessThanOrEqual(readConcurrency + 1)
      expect(gauge.max).toBeGreaterThanOrEqual(readConcurrency)
    })))
})
