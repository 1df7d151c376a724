import * as Reactivity from "@effect/experimental/Reactivity"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import type { Connection } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import type { PGlite, Results } from "@electric-sql/pglite"
import { Effect, Layer, Stream } from "effect"
import * as FairGate from "../../services/FairGate.js"

/**
 * An `@effect/sql` client over PGlite's own API, in process.
 *
 * PGlite is one Postgres backend: one session, one transaction at a time. A transaction therefore takes the
 * database for itself until it ends (other statements wait), and a statement outside a transaction takes it for that
 * statement only. This is why the embedded default does not multiplex `pg` wire connections onto PGlite through
 * pglite-socket: that server schedules single protocol messages, so outside a transaction the Parse/Bind/Execute of
 * two connections interleave on the one session and return each other's rows (measured: all wrong under load).
 */
export const make = (db: PGlite) =>
  Effect.gen(function*() {
    // first come, first served: a busy reader must not starve transactions
    const session = FairGate.make(1)
    const compiler = PgClient.makeCompiler()

    const run = <A>(f: () => Promise<A>) =>
      Effect.tryPromise({
        try: f,
        catch: (cause) => new SqlError({ cause, message: "Failed to execute statement" })
      })

    // Statements without parameters may hold several commands (migrations): the simple protocol runs them all.
    const query = (sql: string, params: ReadonlyArray<unknown>, rowMode: "object" | "array" = "object") =>
      params.length === 0 && rowMode === "object"
        ? Effect.map(run(() => db.exec(sql)), lastRows)
        : Effect.map(run(() => db.query<any>(sql, params as Array<unknown>, { rowMode })), (r) => r.rows)

    class PgliteConnection implements Connection {
      /**
       * `transaction`: set when this connection belongs to a transaction that holds the session; it is marked
       * ended when the transaction releases the session, after which a fiber that kept the connection must not run
       * statements in somebody else's transaction.
       */
      constructor(readonly transaction?: { ended: boolean }) {}

      private guard<A>(effect: Effect.Effect<A, SqlError>): Effect.Effect<A, SqlError> {
        if (this.transaction === undefined) return session.withPermit(effect)
        return this.transaction.ended
          ? Effect.fail(new SqlError({ message: "the transaction of this connection has ended" }))
          : effect
      }

      execute(
        sql: string,
        params: ReadonlyArray<unknown>,
        transformRows: (<A extends object>(row: ReadonlyArray<A>) => ReadonlyArray<A>) | undefined
      ) {
        const rows = this.guard(query(sql, params))
        return transformRows ? Effect.map(rows, transformRows) : rows
      }
      executeRaw(sql: string, params: ReadonlyArray<unknown>) {
        return this.guard(run(() => db.query(sql, params as Array<unknown>)))
      }
      executeWithoutTransform(sql: string, params: ReadonlyArray<unknown>) {
        return this.guard(query(sql, params))
      }
      executeValues(sql: string, params: ReadonlyArray<unknown>) {
        return this.guard(query(sql, params, "array"))
      }
      executeUnprepared(
        sql: string,
        params: ReadonlyArray<unknown>,
        transformRows: (<A extends object>(row: ReadonlyArray<A>) => ReadonlyArray<A>) | undefined
      ) {
        return this.execute(sql, params, transformRows)
      }
      executeStream(
        sql: string,
        params: ReadonlyArray<unknown>,
        transformRows: (<A extends object>(row: ReadonlyArray<A>) => ReadonlyArray<A>) | undefined
      ) {
        // PGlite materializes results anyway; a cursor would hold the session between pulls.
        return Stream.fromIterableEffect(this.execute(sql, params, transformRows))
      }
    }

    return yield* SqlClient.make({
      acquirer: Effect.succeed(new PgliteConnection()),
      // @effect/sql acquires a transaction's connection uninterruptibly; the wait for the session stays interruptible
      transactionAcquirer: Effect.uninterruptibleMask(() =>
        Effect.gen(function*() {
          yield* session.take(Effect.interruptible)
          const transaction = { ended: false }
          yield* Effect.addFinalizer(() =>
            Effect.zipRight(Effect.sync(() => (transaction.ended = true)), session.release)
          )
          return new PgliteConnection(transaction)
        })
      ),
      compiler,
      spanAttributes: [["db.system.name", "postgresql"], ["db.namespace", "pglite"]]
    })
  })

const lastRows = (results: Array<Results>): ReadonlyArray<any> => results[results.length - 1]?.rows ?? []

/** The `SqlClient` over a PGlite instance the caller opened (and closes). */
export const layer = (db: PGlite): Layer.Layer<SqlClient.SqlClient> =>
  Layer.effect(SqlClient.SqlClient, make(db)).pipe(Layer.provide(Reactivity.layer))
