import { SqlClient } from "@effect/sql"
import { SqlError } from "@effect/sql/SqlError"
import { Effect, Layer, Option, Schema } from "effect"
import type { PreparedUpdate } from "../../services/Appender.js"
import { Appender } from "../../services/Appender.js"
import type { PublishOutcome } from "../../services/Publisher.js"
import { Appended, NotNewer } from "../../services/Publisher.js"
import type { StorageError } from "../../services/StorageError.js"
import { UnknownTopic } from "../../services/Topic.js"
import { classify, toStorageError } from "./PgErrors.js"
import { hashToBytes, Int8 } from "./PgRows.js"
import { decodeRows } from "./SqlDecode.js"

const WatermarkRow = Schema.Struct({ watermark: Schema.NullOr(Int8) })
const WatermarksRow = Schema.Struct({ watermarks: Schema.Array(Schema.NullOr(Int8)) })

const outcome = (topic: string, watermark: number | null): PublishOutcome =>
  watermark === null ? NotNewer(topic) : Appended(topic, watermark)

/**
 * Appends over `khala.append` / `khala.publish_batch`: each call is one statement, so it is atomic on its
 * own and joins the caller's transaction when there is one. Payloads arrive hashed and in canonical form.
 */
export const make = Effect.gen(function*() {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const decodeWatermark = decodeRows(WatermarkRow)
  const decodeWatermarks = decodeRows(WatermarksRow)

  // A traced append sets the trace context its journal rows take by default (migration 6), in the same statement: the
  // materialized CTE runs before the publish function, and the setting is local to the transaction (the statement's
  // own, or the caller's, where it lasts until that transaction ends).
  const traceCte = (traceContext: string | undefined) =>
    traceContext === undefined
      ? sql``
      : sql`with trace as materialized (select set_config('khala.trace_context', ${traceContext}, true)) `
  const fromTrace = (traceContext: string | undefined) => traceContext === undefined ? sql`` : sql` from trace`

  // The update was validated here, so its topic is all that can still be wrong, and that is answered rather than
  // raised: inside a caller's transaction no savepoint is needed to keep that transaction alive.
  const publishOne = (u: PreparedUpdate) =>
    sql`${traceCte(u.traceContext)}
      select khala.append(${u.topic}, ${u.docKey}, ${u.docVersion}, ${u.orgId},
                          ${u.deleted ? null : u.canonicalPayload}::jsonb, ${u.pointer ?? false},
                          ${u.payloadHash === null ? null : hashToBytes(u.payloadHash)}, ${u.payloadBytes},
                          ${u.deleted}) as watermark${fromTrace(u.traceContext)}
    `.pipe(
      Effect.mapError(classify(u.topic)),
      Effect.flatMap(decodeWatermark),
      Effect.flatMap((rows) =>
        rows[0]!.watermark === -1
          ? new UnknownTopic({ topic: u.topic })
          : Effect.succeed(outcome(u.topic, rows[0]!.watermark))
      )
    )

  const publishBatch = (
    updates: ReadonlyArray<PreparedUpdate>,
    lockWaitMs: number | undefined,
    traceContext: string | undefined
  ) => {
    if (updates.length === 0) return Effect.succeed([])
    // Built by hand: the canonical payload is already JSON text, so it is spliced in rather than parsed again.
    const body = updates.map((u) =>
      `{"topic":${JSON.stringify(u.topic)},"doc_key":${JSON.stringify(u.docKey)},"doc_version":${u.docVersion},` +
      `"org_id":${JSON.stringify(u.orgId)},` +
      (u.deleted
        ? `"deleted":true}`
        : `"pointer":${u.pointer === true},"payload_hash":"${u.payloadHash}","payload_bytes":${u.payloadBytes},` +
          `"payload":${u.canonicalPayload}}`)
    ).join(",")
    return sql`${traceCte(traceContext)}select khala.publish_batch(${`[${body}]`}::jsonb, ${
      lockWaitMs ?? null
    }::integer) as watermarks${fromTrace(traceContext)}`.pipe(
      Effect.mapError(classify(updates[0]!.topic)),
      Effect.flatMap(decodeWatermarks),
      Effect.map((rows) => rows[0]!.watermarks.map((w, i) => outcome(updates[i]!.topic, w)))
    )
  }

  const inTransaction = Effect.map(Effect.serviceOption(SqlClient.TransactionConnection), Option.isSome)

  // An error raised by the publish functions aborts the whole Postgres transaction, and a COMMIT of an aborted
  // transaction silently rolls back. Inside a caller's transaction the batch therefore runs in a savepoint, so a
  // caller that handles a typed publish error keeps its transaction (and its other writes) alive.
  const isolated = <A, E>(statement: Effect.Effect<A, E>): Effect.Effect<A, E | StorageError> =>
    Effect.flatMap(inTransaction, (inside) =>
      inside
        ? sql.withTransaction(statement).pipe(
          Effect.mapError((error) => error instanceof SqlError ? toStorageError(error) : error)
        )
        : statement)

  return Appender.of({
    inTransaction,
    appendOne: publishOne,
    appendAll: (updates, options) =>
      isolated(publishBatch(updates, options?.lockWaitMs, options?.traceContext ?? updates[0]?.traceContext))
  })
})

export const layer: Layer.Layer<Appender, never, SqlClient.SqlClient> = Layer.effect(Appender, make)
