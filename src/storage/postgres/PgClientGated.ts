import * as Reactivity from "@effect/experimental/Reactivity"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import type { Connection } from "@effect/sql/SqlConnection"
import type { SqlError } from "@effect/sql/SqlError"
import * as Statement from "@effect/sql/Statement"
import type { Scope } from "effect"
import { Context, Effect, Layer } from "effect"
import * as FairGate from "../../services/FairGate.js"

/**
 * `PgClient.layer`, made safe to interrupt in bulk and to interrupt at all.
 *
 * - `@effect/sql-pg` 0.53 leaves a waiter that was interrupted in pg-pool's queue, and when a connection reaches it,
 *   releases it synchronously to the next waiter: one stack level per abandoned waiter, so interrupting a few
 *   thousand queued queries at once (a burst of sockets closing) overflows the stack and kills the process. Here a
 *   fiber first waits at a FIFO gate of `maxConnections` permits, and only then asks the pool, uninterruptibly:
 *   pg-pool never holds more requests than connections, and never an abandoned one.
 * - Interrupting a running statement makes the library run `pg_cancel_backend(pid)` on another pooled connection,
 *   whenever the pool gets to it, by which time that pid may be running somebody else's statement (a tail, the
 *   heads poll, another socket's replay). Here a statement, once sent, runs to its end: interruption waits for it
 *   (Khala's statements are small, bounded reads and writes), and nothing is ever cancelled.
 *
 * Every statement and every transaction runs on a connection reserved for it through the library's own `reserve`.
 */
export const make = (
  config: PgClient.PgClientConfig
): Effect.Effect<PgClient.PgClient, SqlError, Scope.Scope | Reactivity.Reactivity> =>
  Effect.gen(function*() {
    const inner = yield* PgClient.make(config)
    const gate = FairGate.make(config.maxConnections ?? 10)

    const acquirer: Effect.Effect<Connection, SqlError, Scope.Scope> = Effect.uninterruptible(
      Effect.gen(function*() {
        // only the wait for a permit is interruptible, even where the caller acquires uninterruptibly (a transaction)
        yield* gate.take(Effect.interruptible)
        // finalizers run in reverse: the connection goes back to pg-pool first, then the permit
        yield* Effect.addFinalizer(() => gate.release)
        // at most maxConnections of these are outstanding, so pg-pool hands out an idle or new connection at once
        return uninterruptibleStatements(yield* inner.reserve)
      })
    )

    const sql = yield* SqlClient.make({
      acquirer,
      transactionAcquirer: acquirer,
      compiler: PgClient.makeCompiler(config.transformQueryNames, config.transformJson),
      spanAttributes: [
        ...(config.spanAttributes ? Object.entries(config.spanAttributes) : []),
        ["db.system.name", "postgresql"],
        ["db.namespace", inner.config.database ?? inner.config.username ?? "postgres"],
        ["server.address", inner.config.host ?? "localhost"],
        ["server.port", inner.config.port ?? 5432]
      ],
      transformRows: config.transformResultNames
        ? Statement.defaultTransforms(config.transformResultNames, config.transformJson).array
        : undefined
    })

    return Object.assign(sql, {
      [PgClient.TypeId]: PgClient.TypeId as typeof PgClient.TypeId,
      config: inner.config,
      json: inner.json,
      // its own pg.Client, not the pool
      listen: inner.listen,
      // pool.query, which never abandons a waiter
      notify: inner.notify
    })
  })

/** `PgClient` and `SqlClient` over a pool that is safe to interrupt (see `make`). */
export const layer = (
  config: PgClient.PgClientConfig
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, SqlError> =>
  Layer.scopedContext(
    Effect.map(make(config), (client) =>
      Context.make(PgClient.PgClient, client).pipe(Context.add(SqlClient.SqlClient, client)))
  ).pipe(Layer.provide(Reactivity.layer))

/** A statement, once handed to the connection, runs to its end: the library's cancel path is never taken. */
const uninterruptibleStatements = (c: Connection): Connection => ({
  execute: (sql, params, transformRows) => Effect.uninterruptible(c.execute(sql, params, transformRows)),
  executeRaw: (sql, params) => Effect.uninterruptible(c.executeRaw(sql, params)),
  executeValues: (sql, params) => Effect.uninterruptible(c.executeValues(sql, params)),
  executeUnprepared: (sql, params, transformRows) =>
    Effect.uninterruptible(c.executeUnprepared(sql, params, transformRows)),
  // cursor reads have no canceler in the library: an interrupted pull is abandoned and the scope closes the cursor
  executeStream: (sql, params, transformRows) => c.executeStream(sql, params, transformRows)
})
