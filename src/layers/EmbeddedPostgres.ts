import { PGlite } from "@electric-sql/pglite"
import { PGLiteSocketServer } from "@electric-sql/pglite-socket"
import { PgClient } from "@effect/sql-pg"
import type { SqlClient } from "@effect/sql"
import { Effect, Layer } from "effect"
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { resolve } from "node:path"
import { StorageError } from "../services/StorageError.js"

export interface EmbeddedOptions {
  readonly dataDir: string
  readonly maxConnections: number
}

/** Postgres clients find a server's Unix socket as `<directory>/.s.PGSQL.<port>`. */
const socketPort = 5432
const socketName = `.s.PGSQL.${socketPort}`
// sun_path holds 108 bytes on Linux, 104 on macOS.
const maxSocketPath = 100

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/**
 * One process owns a data directory: PGlite has a single backend and no locking of its own, so a second process on
 * the same files would corrupt them. A lock file left by a process that died is taken over.
 */
const lockDataDir = (dir: string) =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        mkdirSync(dir, { recursive: true, mode: 0o700 })
        const lockFile = resolve(dir, "khala.pid")
        try {
          writeFileSync(lockFile, String(process.pid), { flag: "wx" })
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
          const owner = Number(readFileSync(lockFile, "utf8").trim())
          if (Number.isInteger(owner) && owner !== process.pid && isAlive(owner)) {
            throw new Error(`the data directory ${dir} is in use by process ${owner}`)
          }
          writeFileSync(lockFile, String(process.pid))
        }
        return lockFile
      },
      catch: (cause) =>
        new StorageError({
          message: `cannot use data directory ${dir}: ${cause instanceof Error ? cause.message : String(cause)}`,
          cause
        })
    }),
    (lockFile) => Effect.sync(() => rmSync(lockFile, { force: true }))
  )

const openDatabase = (dir: string) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => PGlite.create(resolve(dir, "pgdata")),
      catch: (cause) => new StorageError({ message: `cannot open the embedded database in ${dir}: ${cause}`, cause })
    }),
    (db) => Effect.promise(() => db.close()).pipe(Effect.orElse(() => Effect.void))
  )

/**
 * Serves PGlite over the Postgres wire protocol on a Unix socket inside the (owner-only) data directory. The socket
 * server gives a connection that opened a transaction exclusive use of the database until it ends, so transactions
 * of the pool's connections are serialized, never interleaved.
 */
const serveSocket = (db: PGlite, dir: string, maxConnections: number) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const path = resolve(dir, socketName)
        // a socket file outlives a killed process; the data directory lock says no live process serves it
        rmSync(path, { force: true })
        const server = new PGLiteSocketServer({ db, path, maxConnections })
        await server.start()
        return server
      },
      catch: (cause) => new StorageError({ message: `cannot serve the embedded database: ${cause}`, cause })
    }),
    (server) => Effect.promise(() => server.stop())
  )

/**
 * The embedded default: a Postgres (PGlite) persisted in `dataDir`, reached through `@effect/sql-pg` like any other
 * Postgres, so the same SQL, migrations and functions run on it.
 */
export const layer = (
  options: EmbeddedOptions
): Layer.Layer<SqlClient.SqlClient | PgClient.PgClient, StorageError> =>
  Layer.unwrapScoped(Effect.gen(function*() {
    const dir = resolve(options.dataDir)
    if (resolve(dir, socketName).length > maxSocketPath) {
      return yield* new StorageError({
        message: `the data directory path ${dir} is too long for a Unix socket; choose a shorter KHALA_DATA_DIR`
      })
    }
    yield* lockDataDir(dir)
    const db = yield* openDatabase(dir)
    yield* serveSocket(db, dir, options.maxConnections)
    yield* Effect.logInfo(`embedded database in ${dir}`)
    return PgClient.layer({
      host: dir,
      port: socketPort,
      username: "postgres",
      database: "postgres",
      maxConnections: options.maxConnections,
      applicationName: "khala"
    }).pipe(
      Layer.mapError((error) =>
        new StorageError({ message: `cannot connect to the embedded database: ${error.message}`, cause: error })
      )
    )
  }))
