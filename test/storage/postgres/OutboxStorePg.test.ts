import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Option } from "effect"
import { OutboxStore } from "../../../src/services/OutboxStore.js"
import { migrate } from "../../../src/storage/postgres/Migrations.js"
import * as OutboxStorePg from "../../../src/storage/postgres/OutboxStorePg.js"
import { layerDatabase, postgresAvailable, testDatabase } from "../../support/Postgres.js"

/** An outbox store as one Khala process has it: its own pool on the shared database. */
const node = (url: string) =>
  Layer.build(OutboxStorePg.layer.pipe(Layer.provideMerge(layerDatabase(url, { maxConnections: 2 })))).pipe(
    Effect.map((context) => Effect.provide(context))
  )

describe.skipIf(!postgresAvailable)("outbox store on a shared Postgres", () => {
  it.live(
    "one process forwards for a sink at a time; another takes over when it stops",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { url } = yield* testDatabase
        const a = yield* node(url)
        const b = yield* node(url)
        yield* a(Effect.flatMap(OutboxStore, () => migrate))
        const holding = yield* Deferred.make<void>()
        const forwarding = yield* a(
          Effect.flatMap(
            OutboxStore,
            (store) => store.exclusive("webhook", Effect.zipRight(Deferred.succeed(holding, undefined), Effect.never))
          )
        ).pipe(Effect.fork)
        yield* Deferred.await(holding)
        // the other process is refused at once, for this sink only
        expect(yield* b(Effect.flatMap(OutboxStore, (store) => store.exclusive("webhook", Effect.succeed(1))))).toEqual(
          Option.none()
        )
        expect(yield* b(Effect.flatMap(OutboxStore, (store) => store.exclusive("other", Effect.succeed(2))))).toEqual(
          Option.some(2)
        )
        yield* Fiber.interrupt(forwarding)
        expect(yield* b(Effect.flatMap(OutboxStore, (store) => store.exclusive("webhook", Effect.succeed(3))))).toEqual(
          Option.some(3)
        )
      })),
    { timeout: 90_000 }
  )
})
