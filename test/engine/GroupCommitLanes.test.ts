/**
 * Group commit batches per topic: a publish only ever waits for its own topic, conflicts are retried, batches are
 * bounded in bytes, and an unknown topic fails only its own publishes. The engine is driven over a scripted
 * storage; the lock scenario runs on Postgres, where caller transactions hold topics.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Fiber, Layer, Ref } from "effect"
import pg from "pg"
import * as GroupCommit from "../../src/engine/GroupCommit.js"
import * as KhalaPg from "../../src/layers/KhalaPg.js"
import type { PreparedUpdate } from "../../src/services/Appender.js"
import { HeadSignals } from "../../src/services/HeadSignals.js"
import type { PublishError, PublishOutcome } from "../../src/services/Publisher.js"
import { Appended, Publisher } from "../../src/services/Publisher.js"
import { Sequencer } from "../../src/services/Sequencer.js"
import { StorageError } from "../../src/services/StorageError.js"
import { UnknownTopic } from "../../src/services/Topic.js"
import { layerDatabase, postgresAvailable, testDatabase } from "../support/Postgres.js"

const prepared = (topic: string, i: number, payloadBytes = 10): PreparedUpdate => ({
  topic,
  docKey: `d${i}`,
  docVersion: 1,
  orgId: "o",
  payload: { i },
  deleted: false,
  canonicalPayload: `{"i":${i}}`,
  payloadHash: "sha256:" + "0".repeat(64),
  payloadBytes
})

const settings = (entries: Record<string, string>) =>
  Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(entries))))

/** A group commit over a scripted `publish_batch`: `script` decides each batch's fate; batches are recorded. */
const scripted = (
  script: (batch: ReadonlyArray<PreparedUpdate>, call: number) => Effect.Effect<void, PublishError>
) =>
  Effect.gen(function*() {
    const batches = yield* Ref.make<Array<ReadonlyArray<PreparedUpdate>>>([])
    const singles = yield* Ref.make(0)
    let calls = 0
    const heads = new Map<string, number>()
    const groupCommit = yield* GroupCommit.make({
      publishBatch: (batch) =>
        Effect.gen(function*() {
          yield* Ref.update(batches, (all) => [...all, batch])
          yield* script(batch, calls++)
          return batch.map((u): PublishOutcome => {
            const head = (heads.get(u.topic) ?? 0) + 1
            heads.set(u.topic, head)
            return Appended(u.topic, head)
          })
        }),
      publishOne: (update) => Effect.as(Ref.update(singles, (n) => n + 1), Appended(update.topic, 0)),
      committed: () => Effect.void
    })
    return { groupCommit, batches, singles }
  })

describe("group commit lanes", () => {
  it.live("a batch holds one topic's publishes only, bounded in updates and in payload bytes", () =>
    Effect.gen(function*() {
      const { batches, groupCommit } = yield* scripted(() => Effect.sleep("5 millis"))
      const updates = [
        ...Array.from({ length: 12 }, (_, i) => prepared("a.topic", i, 1024 * 1024)),
        ...Array.from({ length: 7 }, (_, i) => prepared("b.topic", i))
      ]
      yield* Effect.forEach(updates, groupCommit.publish, { concurrency: "unbounded" })
      const written = yield* Ref.get(batches)
      expect(written.every((batch) => new Set(batch.map((u) => u.topic)).size === 1)).toBe(true)
      expect(written.every((batch) => batch.length <= 5)).toBe(true)
      const bytes = written.map((batch) => batch.reduce((sum, u) => sum + u.payloadBytes, 0))
      expect(Math.max(...bytes)).toBeLessThanOrEqual(3 * 1024 * 1024)
      expect(written.flat().length).toBe(19)
    }).pipe(
      Effect.scoped,
      Effect.provide(settings({
        KHALA_GROUP_COMMIT_MAX_BATCH: "5",
        KHALA_GROUP_COMMIT_MAX_BATCH_BYTES: String(3 * 1024 * 1024)
      }))
    ))

  it.scoped("a deadlock or serialization failure is retried; the callers only see the outcome", () =>
    Effect.gen(function*() {
      const { batches, groupCommit } = yield* scripted((_, call) =>
        call < 2 ? Effect.fail(new StorageError({ message: "deadlock detected", reason: "conflict" })) : Effect.void
      )
      const outcomes = yield* Effect.forEach([1, 2, 3], (i) => groupCommit.publish(prepared("a.topic", i)), {
        concurrency: "unbounded"
      })
      expect(outcomes.every((o) => o._tag === "Appended")).toBe(true)
      expect((yield* Ref.get(batches)).length).toBeGreaterThanOrEqual(3)
    }))

  it.scoped("an unknown topic fails its own publishes and no others, without redoing anything one by one", () =>
    Effect.gen(function*() {
      const { groupCommit, singles } = yield* scripted((batch) =>
        batch[0]!.topic === "no.such" ? Effect.fail(new UnknownTopic({ topic: "no.such" })) : Effect.void
      )
      const results = yield* Effect.forEach(
        Array.from({ length: 40 }, (_, i) => prepared(i % 10 === 3 ? "no.such" : "a.topic", i)),
        (update) => Effect.either(groupCommit.publish(update)),
        { concurrency: "unbounded" }
      )
      const failed = results.flatMap((r, i) => Either.isLeft(r) ? [i] : [])
      expect(failed).toEqual([3, 13, 23, 33])
      expect(yield* Ref.get(singles)).toBe(0)
    }))
})

/** A caller's transaction on its own connection that publishes to `topic` and holds it until `release`. */
const holdTopic = (url: string, topic: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new pg.Client({ connectionString: url })
      await client.connect()
      await client.query("begin")
      await client.query("select khala.publish($1, 'held', 1, 'o', '{}'::jsonb)", [topic])
      return client
    }),
    (client) => Effect.promise(() => client.query("commit").then(() => client.end()))
  )

describe.skipIf(!postgresAvailable)("group commit on Postgres", () => {
  it.live(
    "caller transactions holding some topics delay those topics' publishes only, not the pool for others",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { url } = yield* testDatabase
        // a pool of 3 connections and six held topics: batches waiting on a held topic must not keep connections
        const khala = yield* Layer.build(
          KhalaPg.layerWith().pipe(
            Layer.provide(HeadSignals.none),
            Layer.provideMerge(layerDatabase(url, { maxConnections: 3 })),
            Layer.orDie
          )
        )
        const run = <A, E>(effect: Effect.Effect<A, E, Publisher | Sequencer>) => Effect.provide(effect, khala)
        const held = Array.from({ length: 6 }, (_, i) => `gc.held_${i}`)
        yield* run(
          Effect.flatMap(Sequencer, (s) =>
            s.register([...held, "gc.free"].map((topic) => ({ topic, retentionClass: "unspecified" }))))
        )
        const holders = yield* Effect.forEach(held, (topic) =>
          Effect.forkScoped(Effect.scoped(Effect.zipRight(
            holdTopic(url, topic),
            Effect.never
          ))))
        yield* Effect.sleep("300 millis")
        const publish = (topic: string, i: number) =>
          run(
            Effect.flatMap(Publisher, (p) =>
              p.publish({ topic, docKey: `k${i}`, docVersion: 1, orgId: "o", payload: {} }))
          )
        const waiting = yield* Effect.forkScoped(Effect.forEach(held, (topic, i) =>
          publish(topic, i), {
          concurrency: "unbounded"
        }))
        yield* Effect.sleep("200 millis")
        // the free topic's publishes go through while every held topic's wait
        const free = yield* Effect.forEach(
          Array.from({ length: 20 }, (_, i) =>
            i),
          (i) =>
            publish("gc.free", i),
          {
            concurrency: "unbounded"
          }
        ).pipe(Effect.timeout("10 seconds"))
        expect(free.every((o) => o._tag === "Appended")).toBe(true)
        expect(waiting.unsafePoll()).toBeNull()
        // once the caller transactions commit, the held topics' publishes complete
        yield* Fiber.interruptAll(holders)
        const done = yield* Fiber.join(waiting).pipe(Effect.timeout("10 seconds"))
        expect(done.every((o) => o._tag === "Appended")).toBe(true)
      })),
    { timeout: 180_000 }
  )
})
