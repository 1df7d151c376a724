import * as Reactivity from "@effect/experimental/Reactivity"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import type { Connection } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import type { PGlite, Results } from "@electric-sql/pglite"
import { Deferred, Effect, Exit, FiberId, Layer, Stream } from "effect"

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
    const session = makeFairLock()
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
        if (this.transaction === undefined) return session.withLock(effect)
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
          yield* session.acquire(Effect.interruptible)
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

/**
 * A first-come, first-served lock. Effect's `Semaphore` lets a fiber that re-acquires at once overtake the fibers
 * already waiting, so a busy reader could starve transactions; here the lock passes to the longest waiter. The
 * bookkeeping runs uninterruptibly; only the wait itself can be interrupted, and an interrupted waiter that was
 * handed the lock meanwhile passes it on.
 */
const makeFairLock = () => {
  let held = false
  const line: Array<Deferred.Deferred<void>> = []
  const handOff = () => {
    const next = line.shift()
    if (next === undefined) held = false
    else Deferred.unsafeDone(next, Exit.void)
  }
  /**
   * Call uninterruptibly: `interruptible` is what makes the wait (and only the wait) interruptible, so between
   * getting the lock and registering its release no interruption can slip in.
   */
  const acquire = (interruptible: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>) =>
    Effect.suspend(() => {
      if (!held) {
        held = true
        return Effect.void
      }
      const turn = Deferred.unsafeMake<void>(FiberId.none)
      line.push(turn)
      return interruptible(Deferred.await(turn)).pipe(Effect.onInterrupt(() =>
        Effect.sync(() => {
          const waiting = line.indexOf(turn)
          if (waiting >= 0) line.splice(waiting, 1)
          else handOff()
        })
      ))
    })
  const release = Effect.sync(handOff)
  return {
    acquire,
    release,
    withLock: <A, E>(effect: Effect.Effect<A, E>) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.zipRight(acquire(restore), Effect.ensuring(restore(effect), release))
      )
  }
}

const lastRows = (results: Array<Results>): ReadonlyArray<any> => results[results.length - 1]?.rows ?? []

/** The `SqlClient` over a PGlite instance the caller opened (and closes). */
export const layer = (db: PGlite): Layer.Layer<SqlClient.SqlClient> =>
  Layer.effect(SqlClient.SqlClient, make(db)).pipe(Layer.provide(Reactivity.layer))
