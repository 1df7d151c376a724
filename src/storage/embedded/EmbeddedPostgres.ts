import type { SqlClient } from "@effect/sql"
import { PGlite } from "@electric-sql/pglite"
import { Effect, Layer } from "effect"
import { resolve } from "node:path"
import { HeadSignals } from "../../services/HeadSignals.js"
import { StorageError } from "../../services/StorageError.js"
import * as DataDirLock from "./DataDirLock.js"
import * as PgliteClient from "./PgliteClient.js"

const storageError = (message: string) => (cause: unknown) =>
  new StorageError({ message: `${message}: ${cause instanceof Error ? cause.message : String(cause)}`, cause })

/**
 * One process owns a data directory: PGlite has no locking of its own, and a second process on the same files
 * loses or corrupts data (see `DataDirLock`).
 */
const lockDataDir = (dir: string) =>
  DataDirLock.scoped(dir).pipe(
    Effect.mapError((cause) =>
      storageError(`cannot use the data directory ${dir}`)(
        cause instanceof DataDirLock.InUse
          ? new Error(
            `${cause.message} (a running khala serve?). The embedded database serves one process; stop that one, ` +
              `or run every process on a Postgres server with DATABASE_URL`
          )
          : cause
      )
    )
  )

const openDatabase = (dataDir: string) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => PGlite.create(dataDir),
      catch: storageError(`cannot open the embedded database in ${dataDir}`)
    }),
    (db) => Effect.promise(() => db.close()).pipe(Effect.ignore)
  )

// One process serves the embedded database, so there is no other process to hint: its commits and the poll suffice.
const clientLayer = (db: PGlite) => Layer.merge(PgliteClient.layer(db), HeadSignals.none)

/**
 * The embedded default: Postgres (PGlite) persisted in `dataDir`, through the same SQL, migrations and functions as
 * a Postgres server. One process owns it; several Khala processes need a Postgres server (`DATABASE_URL`).
 */
export const layer = (dataDir: string): Layer.Layer<SqlClient.SqlClient | HeadSignals, StorageError> =>
  Layer.unwrapScoped(Effect.gen(function*() {
    const dir = resolve(dataDir)
    yield* lockDataDir(dir)
    const db = yield* openDatabase(resolve(dir, "pgdata"))
    yield* Effect.logInfo(`embedded database in ${dir}`)
    return clientLayer(db)
  }))

/** An embedded database in memory, gone when the scope closes: for tests. */
export const layerInMemory: Layer.Layer<SqlClient.SqlClient | HeadSignals, StorageError> = Layer.unwrapScoped(
  Effect.map(
    Effect.acquireRelease(
      Effect.tryPromise({ try: () => PGlite.create(), catch: storageError("cannot start an in-memory database") }),
      (db) => Effect.promise(() => db.close()).pipe(Effect.ignore)
    ),
    clientLayer
  )
)
