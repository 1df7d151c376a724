import { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import { createHash } from "node:crypto"
import { StorageError } from "../../services/StorageError.js"
import * as Journal0001 from "./migrations/0001_journal.js"
import * as FasterPublishing0002 from "./migrations/0002_faster_publishing.js"
import * as OrgsDeletesEpochs0003 from "./migrations/0003_orgs_deletes_epochs.js"
import * as Revocations0004 from "./migrations/0004_revocations.js"
import * as Outbox0005 from "./migrations/0005_outbox.js"
import * as TraceContext0006 from "./migrations/0006_trace_context.js"
import { mapStorageError } from "./PgErrors.js"
import { decodeRows } from "./SqlDecode.js"

/** A versioned schema change. Applied migrations are never edited: a new one is added instead. */
export interface Migration {
  readonly id: number
  readonly name: string
  readonly sql: string
}

export const migrations: ReadonlyArray<Migration> = [
  { id: 1, name: "journal", sql: Journal0001.sql },
  { id: 2, name: "faster_publishing", sql: FasterPublishing0002.sql },
  { id: 3, name: "orgs_deletes_epochs", sql: OrgsDeletesEpochs0003.sql },
  { id: 4, name: "revocations", sql: Revocations0004.sql },
  { id: 5, name: "outbox", sql: Outbox0005.sql },
  { id: 6, name: "trace_context", sql: TraceContext0006.sql }
]

const checksum = (migration: Migration) => createHash("sha256").update(migration.sql).digest("hex")

const AppliedRow = Schema.Struct({ id: Schema.Number, name: Schema.String, checksum: Schema.String })

// Any constant works: it only has to be the same in every Khala process.
const migrationLockKey = 0x6b68616c61 // "khala"

/** Where a migration run is, as it reports it. */
export type MigrationProgress =
  /** Waiting for the migration lock: another process is migrating. */
  | { readonly _tag: "Locking" }
  /** Running the `index`-th (from 1) of the `count` pending migrations. */
  | { readonly _tag: "Applying"; readonly index: number; readonly count: number; readonly migration: Migration }

export interface MigrateOptions {
  /** Runs at each step: before the lock is taken, and before each pending migration runs. */
  readonly onProgress?: ((progress: MigrationProgress) => Effect.Effect<void>) | undefined
}

/**
 * Brings the `khala` schema up to date in one transaction. A transaction-scoped advisory lock taken before anything
 * else makes concurrent starts safe: the second process waits, then finds nothing left to do. An applied migration
 * whose text changed since is refused rather than silently skipped.
 */
export const migrateWith = (
  options: MigrateOptions = {}
): Effect.Effect<ReadonlyArray<Migration>, StorageError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const decodeApplied = decodeRows(AppliedRow)
    const report = options.onProgress ?? (() => Effect.void)
    return yield* sql.withTransaction(Effect.gen(function*() {
      yield* report({ _tag: "Locking" })
      yield* sql`select pg_advisory_xact_lock(${migrationLockKey})`
      yield* sql`create schema if not exists khala`
      yield* sql`
        create table if not exists khala.schema_migrations (
          id integer primary key,
          name text not null,
          checksum text not null,
          applied_at timestamptz not null default now()
        )`
      const applied = yield* sql`select id, name, checksum from khala.schema_migrations order by id`.pipe(
        mapStorageError,
        Effect.flatMap(decodeApplied)
      )
      const appliedById = new Map(applied.map((row) => [row.id, row]))
      for (const row of applied) {
        const known = migrations.find((m) => m.id === row.id)
        if (known === undefined) {
          return yield* new StorageError({
            message: `the database has migration ${row.id} (${row.name}), which this version of Khala does not ` +
              `know: it was migrated by a newer version`
          })
        }
        if (checksum(known) !== row.checksum) {
          return yield* new StorageError({
            message: `migration ${row.id} (${row.name}) differs from the one applied to this database`
          })
        }
      }
      const pending = migrations.filter((m) => !appliedById.has(m.id))
      for (const [index, migration] of pending.entries()) {
        yield* report({ _tag: "Applying", index: index + 1, count: pending.length, migration })
        yield* sql.unsafe(migration.sql).pipe(Effect.withSpan(`khala.migrate.${migration.id}_${migration.name}`))
        yield* sql`
          insert into khala.schema_migrations (id, name, checksum)
          values (${migration.id}, ${migration.name}, ${checksum(migration)})`
      }
      return pending
    })).pipe(Effect.catchTag("SqlError", (error) =>
      Effect.fail(
        new StorageError({
          message: `migration failed: ${(error.cause as Error | undefined)?.message ?? error.message}`,
          cause: error
        })
      )))
  })

/** `migrateWith`, unobserved. */
export const migrate: Effect.Effect<ReadonlyArray<Migration>, StorageError, SqlClient.SqlClient> = migrateWith()
