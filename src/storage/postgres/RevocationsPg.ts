/**
 * Revocations in Postgres (`khala.sync_revocations`, protocol.md §8), held in memory by every node: loaded at start,
 * kept current by `LISTEN khala_revocations` (the revoke statement notifies) and, as a fallback that also carries
 * lifts and whatever a lost connection missed, by a re-read about once a second. Nothing is queried per socket or
 * per request. Rows that ended an hour ago are pruned.
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import type { ConfigError } from "effect"
import { Config, Context, Duration, Effect, Layer, Option, Schedule, Schema } from "effect"
import * as RevocationSet from "../../engine/RevocationSet.js"
import type { Revocation, RevocationTarget } from "../../services/Revocations.js"
import { Revocations, RevocationSignals } from "../../services/Revocations.js"
import { durationWithin } from "../../services/Settings.js"
import { StorageError } from "../../services/StorageError.js"
import { HeadSignalsConfig } from "./HeadSignalsPg.js"
import { mapStorageError } from "./PgErrors.js"
import * as PgListener from "./PgListener.js"
import { decodeRows } from "./SqlDecode.js"

/** The channel revocations are announced on, with a JSON `{kind, value, until}` (until in epoch ms) as payload. */
export const channel = "khala_revocations"

export const RevocationsConfig = Config.all({
  pollInterval: durationWithin("KHALA_REVOCATION_POLL_INTERVAL", "50 millis", "1 minute").pipe(
    Config.withDefault(Duration.seconds(1)),
    Config.withDescription("How often each node re-reads the revocations (LISTEN usually brings them sooner)")
  )
})

/** How long a row is kept after its revocation ended, so that every node learns of a lift before it goes. */
const keepEnded = "1 hour"
const pruneEvery = Duration.minutes(1)

const Row = Schema.Struct({
  kind: Schema.Literal("jti", "sub"),
  value: Schema.String,
  until_ms: Schema.Number
})
const decodeRow = decodeRows(Row)
const Payload = Schema.parseJson(Row)
const decodePayload = Schema.decodeUnknownOption(Payload)

const fromRow = (row: typeof Row.Type): Revocation => ({
  target: row.kind === "jti" ? { tokenId: row.value } : { subject: row.value },
  until: new Date(row.until_ms)
})

const kindOf = (target: RevocationTarget) =>
  "tokenId" in target ? { kind: "jti", value: target.tokenId } : { kind: "sub", value: target.subject }

/**
 * Records a revocation and announces it, in one autocommit statement on the pool: never inside a caller's
 * transaction (a notify there would hold every notifying commit of the database behind one lock, design.md §4).
 * For `khala revoke` and for the service.
 */
export const revoke = (
  target: RevocationTarget,
  until: Date
): Effect.Effect<void, StorageError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const { kind, value } = kindOf(target)
    if (value === "" || value.length > 1024) {
      return yield* new StorageError({ message: `a revoked ${kind} must have 1 to 1024 characters` })
    }
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    yield* sql`
      with revoked as (
        insert into khala.sync_revocations (kind, value, until)
        values (${kind}, ${value}, ${until.toISOString()}::timestamptz)
        on conflict (kind, value) do update set until = excluded.until, revoked_at = now()
        returning kind, value, until
      )
      select pg_notify(${channel}, json_build_object(
        'kind', kind, 'value', value, 'until_ms', (extract(epoch from until) * 1000)::float8
      )::text)
      from revoked`.pipe(
      mapStorageError,
      Effect.mapInputContext((context: Context.Context<never>) =>
        Context.omit(SqlClient.TransactionConnection)(context)
      )
    )
  })

/**
 * The `LISTEN` side: revocations announced by any process on the database, on a connection of its own; none with
 * `KHALA_NOTIFY=false`, when the poll alone carries them.
 */
export const layerSignals: Layer.Layer<RevocationSignals, ConfigError.ConfigError, PgClient.PgClient> = Layer
  .unwrapEffect(
    Effect.gen(function*() {
      const { notify } = yield* HeadSignalsConfig
      const pg = yield* PgClient.PgClient
      return notify
        ? Layer.succeed(RevocationSignals, {
          receive: ({ onConnected, onRevocation }) =>
            PgListener.listen({
              // named apart from the heads' listener, so that an operator tells the two apart in pg_stat_activity
              config: { ...PgListener.clientConfig(pg.config), application_name: "khala-listen-revocations" },
              channel,
              onPayload: (payload) =>
                Option.match(decodePayload(payload), {
                  onNone: () => undefined,
                  onSome: (row) => onRevocation(fromRow(row))
                }),
              onConnected
            })
        })
        : Layer.succeed(RevocationSignals, RevocationSignals.defaultValue())
    })
  )

/**
 * The service over a migrated database. Its start loads every revocation (a failure there fails the start); then
 * signals, the poll and the pruning run for as long as the layer does.
 */
export const make = Effect.gen(function*() {
  const client = yield* SqlClient.SqlClient
  const sql = client.withoutTransforms()
  const signals = yield* RevocationSignals
  const config = yield* RevocationsConfig
  const set = yield* RevocationSet.make

  const load = sql`
    select kind, value, (extract(epoch from until) * 1000)::float8 as until_ms from khala.sync_revocations`.pipe(
    mapStorageError,
    Effect.flatMap(decodeRow),
    Effect.flatMap((rows) => set.apply(rows.map(fromRow)))
  )
  yield* load

  // the fallback: each round re-reads everything (the table holds only recent revocations), so a lost notification,
  // a lift, or a row written while the listen connection was down is picked up within one interval
  const warn = (what: string) => (error: StorageError) => Effect.logWarning(`revocations: ${what} failed`, error)
  yield* load.pipe(
    Effect.catchAll(warn("re-reading")),
    Effect.schedule(Schedule.spaced(config.pollInterval)),
    Effect.forkScoped
  )
  const prune = sql`delete from khala.sync_revocations where until < now() - ${keepEnded}::interval`.pipe(
    mapStorageError,
    Effect.catchAll(warn("pruning"))
  )
  // at start too, so that a node that never lives a minute still tidies up
  yield* prune.pipe(Effect.zipRight(Effect.schedule(prune, Schedule.spaced(pruneEvery))), Effect.forkScoped)
  yield* signals.receive({
    // the listener hands payloads over synchronously, and applying one is a synchronous update of the set
    onRevocation: (revocation) => set.unsafeApply([revocation], Date.now()),
    onConnected: Effect.catchAll(load, warn("re-reading after (re)connecting"))
  }).pipe(Effect.forkScoped)

  return Revocations.of({
    revoke: (target, until) =>
      Effect.zipRight(
        Effect.provideService(revoke(target, until), SqlClient.SqlClient, client),
        set.apply([{ target, until }])
      ),
    isRevoked: set.isRevoked,
    awaitRevoked: set.awaitRevoked
  })
})

/** Revocations on a migrated database, with the signals the context offers (`layerSignals` over a `PgClient`). */
export const layer: Layer.Layer<Revocations, StorageError | ConfigError.ConfigError, SqlClient.SqlClient> = Layer
  .scoped(Revocations, make)
