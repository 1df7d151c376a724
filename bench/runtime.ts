/**
 * The bench process plays the runtime that composes Khala: it publishes through `KhalaPg.layer()` and `Publisher`
 * on its own connections, and the `khala serve` under test learns of the appends as it would of a runtime's (its
 * NOTIFY hints and its polling).
 */
import { ConfigProvider, Context, Effect, Layer, Redacted } from "effect"
import * as KhalaPg from "../src/layers/KhalaPg.js"
import type { PublishOutcome, PublishUpdate } from "../src/services/Publisher.js"
import { Publisher } from "../src/services/Publisher.js"
import { benchPayload, now, orgId, topic } from "./workload.js"

type PublisherService = Context.Tag.Service<typeof Publisher>

/** A `Publisher` over `url`, for as long as the current scope. */
export const benchPublisher = (url: string, connections = 10, settings: Record<string, string> = {}) =>
  Layer.build(
    KhalaPg.layer().pipe(
      Layer.provideMerge(KhalaPg.layerPgClient({ url: Redacted.make(url), maxConnections: connections })),
      // settings over the environment's
      Layer.provide(Layer.setConfigProvider(
        ConfigProvider.fromMap(new Map(Object.entries(settings))).pipe(
          ConfigProvider.orElse(() => ConfigProvider.fromEnv())
        )
      ))
    )
  ).pipe(Effect.map((context) => Context.get(context, Publisher)), Effect.orDie)

// doc keys are never reused within a run, so that every publish appends (a stored version 1 would refuse another)
let documents = 0

/** A new document appended at `t`. */
const newUpdate = (t: number): PublishUpdate => {
  const i = ++documents
  return { topic, docKey: `doc-${i}`, docVersion: 1, orgId, payload: benchPayload(i, t) }
}

/** What a publishing loop appended: how many, and the topic's head after it. */
class Appends {
  count = 0
  head = 0
  add(outcomes: ReadonlyArray<PublishOutcome>) {
    for (const outcome of outcomes) {
      if (outcome._tag !== "Appended") continue
      this.count++
      this.head = Math.max(this.head, outcome.watermark)
    }
  }
}

/** `concurrency` loops publishing batches of `batch` new updates with `publishAll`, as fast as they can. */
export const publishFlood = (
  publisher: PublisherService,
  options: { readonly seconds: number; readonly batch: number; readonly concurrency: number }
) =>
  Effect.gen(function*() {
    const appends = new Appends()
    const startedAt = now()
    const deadline = startedAt + options.seconds * 1000
    yield* Effect.forEach(Array.from({ length: options.concurrency }), () =>
      Effect.gen(function*() {
        while (now() < deadline) {
          const t = now()
          appends.add(yield* publisher.publishAll(Array.from({ length: options.batch }, () => newUpdate(t))))
        }
      }), { concurrency: "unbounded", discard: true })
    return { appended: appends.count, head: appends.head, startedAt }
  }).pipe(Effect.orDie)

/**
 * `rate` single `publish` calls per second for `seconds`, each started at its scheduled time; enough of them in flight
 * that a slow commit does not hold the next ones back.
 */
export const publishPaced = (
  publisher: PublisherService,
  options: { readonly rate: number; readonly seconds: number }
) =>
  Effect.gen(function*() {
    const appends = new Appends()
    const startedAt = now()
    const total = Math.round(options.rate * options.seconds)
    // how long each publish took to be durable: part of every append→receive time, and absent from the raw floor
    const durable: Array<number> = []
    yield* Effect.forEach(Array.from({ length: total }, (_, i) => i), (i) =>
      Effect.gen(function*() {
        const wait = startedAt + (i * 1000) / options.rate - now()
        if (wait > 0) yield* Effect.sleep(wait)
        const t = now()
        appends.add([yield* publisher.publish(newUpdate(t))])
        durable.push(now() - t)
      }), { concurrency: 256, discard: true })
    return { appended: appends.count, head: appends.head, seconds: (now() - startedAt) / 1000, durable }
  }).pipe(Effect.orDie)

/** Appends `count` new updates in `publishAll` batches of `batch`, `concurrency` batches at a time. */
export const publishBulk = (
  publisher: PublisherService,
  options: { readonly count: number; readonly batch: number; readonly concurrency: number }
) =>
  Effect.gen(function*() {
    const appends = new Appends()
    const batches = Math.ceil(options.count / options.batch)
    yield* Effect.forEach(Array.from({ length: batches }, (_, b) => b), (b) => {
      const size = Math.min(options.batch, options.count - b * options.batch)
      const t = now()
      return Effect.map(publisher.publishAll(Array.from({ length: size }, () => newUpdate(t))), (o) => appends.add(o))
    }, { concurrency: options.concurrency, discard: true })
    return { appended: appends.count, head: appends.head }
  }).pipe(Effect.orDie)
