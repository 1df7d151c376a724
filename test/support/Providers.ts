import { SqlClient } from "@effect/sql"
import { SqlError } from "@effect/sql/SqlError"
import { Context, Effect, Layer } from "effect"
import type { KhalaServices } from "../../src/layers/Core.js"
import * as KhalaMemory from "../../src/layers/KhalaMemory.js"
import * as KhalaPg from "../../src/layers/KhalaPg.js"
import { TopicCatalog } from "../../src/protocol/TopicCatalog.js"
import { HeadSignals } from "../../src/services/HeadSignals.js"
import type { StorageError } from "../../src/services/StorageError.js"
import * as EmbeddedPostgres from "../../src/storage/embedded/EmbeddedPostgres.js"
import { MemoryStore } from "../../src/storage/memory/MemoryStore.js"
import { toStorageError } from "../../src/storage/postgres/PgErrors.js"
import { layerTestDatabase, postgresAvailable } from "./Postgres.js"

/** Runs an effect as one transaction of the layer under test: `SqlClient.withTransaction` or its memory twin. */
export class Transactions extends Context.Tag("test/Transactions")<Transactions, {
  readonly run: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | StorageError, R>
}>() {}

/**
 * Deletes journal rows behind Khala's back, leaving a hole, as an operator's manual delete (an erasure of one
 * tenant's rows, a repair) would: the watermarks `from < w <= through` of `topic`.
 */
export class Erasure extends Context.Tag("test/Erasure")<Erasure, {
  readonly erase: (topic: string, from: number, through: number) => Effect.Effect<void>
}>() {}

export type Services = KhalaServices | Transactions | Erasure

/** One implementation of the durable core, for the contract suite. */
export interface Provider {
  readonly name: string
  readonly available: boolean
  /** A fresh, empty store per build. */
  readonly layer: Layer.Layer<Services, StorageError>
}

const memory: Provider = {
  name: "memory",
  available: true,
  layer: Layer.mergeAll(
    Layer.effect(Transactions, Effect.map(MemoryStore, (store) => Transactions.of({ run: store.withTransaction }))),
    Layer.effect(
      Erasure,
      Effect.map(MemoryStore, (store) =>
        Erasure.of({
          erase: (topic, from, through) =>
            store.eraseRows(topic, (row) => row.watermark > from && row.watermark <= through)
        }))
    )
  ).pipe(Layer.provideMerge(KhalaMemory.layer()), Layer.orDie)
}

const sqlTransactions = Layer.effect(
  Transactions,
  Effect.map(SqlClient.SqlClient, (sql) =>
    Transactions.of({
      run: <A, E, R>(effect: Effect.Effect<A, E, R>) =>
        sql.withTransaction(effect).pipe(
          Effect.mapError((error): E | StorageError => error instanceof SqlError ? toStorageError(error) : error)
        )
    }))
)

const sqlErasure = Layer.effect(
  Erasure,
  Effect.map(SqlClient.SqlClient, (sql) =>
    Erasure.of({
      erase: (topic, from, through) =>
        sql`delete from khala.sync_stream_events where topic = ${topic} and watermark > ${from}
              and watermark <= ${through}`.pipe(Effect.orDie, Effect.asVoid)
    }))
)

/** The Postgres layers with their transactions, on the given database. */
const overSql = <E>(database: Layer.Layer<SqlClient.SqlClient, E>) =>
  Layer.merge(sqlTransactions, sqlErasure).pipe(
    Layer.provideMerge(KhalaPg.layerCore),
    Layer.provide(TopicCatalog.Default),
    // one process per test: the poll and its own commits wake its hub (cross-process hints have their own tests)
    Layer.provide(HeadSignals.none),
    Layer.provide(database),
    Layer.orDie
  )

const postgres: Provider = {
  name: "postgres",
  available: postgresAvailable,
  layer: overSql(layerTestDatabase({ maxConnections: 12 }))
}

/** The embedded default (PGlite in process), in memory. */
const embedded: Provider = { name: "embedded", available: true, layer: overSql(EmbeddedPostgres.layerInMemory) }

export const providers: ReadonlyArray<Provider> = [memory, postgres, embedded]
