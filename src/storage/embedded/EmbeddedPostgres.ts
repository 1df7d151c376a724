import type { SqlClient } from "@effect/sql"
import { PGlite } from "@electric-sql/pglite"
import { Effect, Layer } from "effect"
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { resolve } from "node:path"
import { HeadSignals } from "../../services/HeadSignals.js"
import { StorageError } from "../../services/StorageError.js"
import * as PgliteClient from "./PgliteClient.js"

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

const storageError = (message: string) => (cause: unknown) =>
  new StorageError({ message: `${message}: ${cause instanceof Error ? cause.message : String(cause)}`, cause })

const claim = (lockFile: string) => {
  try {
    writeFileSync(lockFile, String(process.pid), { flag: "wx" })
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false
    throw error
  }
}

/**
 * One process owns a data directory: PGlite has no locking of its own, and a second process on the same files
 * loses or corrupts data. The lock file is created exclusively; one left by a process that died is removed and the
 * exclusive create retried, so of two processes taking over at once only one wins.
 */
const lockDataDir = (dir: string) =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        mkdirSync(dir, { recursive: true, mode: 0o700 })
        const lockFile = resolve(dir, "khala.pid")
        for (let attempt = 0; !claim(lockFile); attempt++) {
          const owner = Number(readFileSync(lockFile, "utf8").trim())
          // a lock without a pid yet is being written by a process that just created it
          const starting = !(Number.isInteger(owner) && owner > 0) && Date.now() - statSync(lockFile).mtimeMs < 5000
          if (attempt > 0 || starting || (owner > 0 && isAlive(owner))) {
            throw new Error(
              `it is in use by process ${owner} (a running khala serve?). The embedded database serves one process; ` +
                `stop that one, or run every process on a Postgres server with DATABASE_URL`
            )
          }
          rmSync(lockFile, { force: true })
        }
        return lockFile
      },
      catch: storageError(`cannot use the data directory ${dir}`)
    }),
    // remove the lock only while it is still ours
    (lockFile) =>
      Effect.sync(() => {
        try {
          if (readFileSync(lockFile, "utf8").trim() === String(process.pid)) rmSync(lockFile, { force: true })
        } catch {
          // already gone
        }
      })
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
