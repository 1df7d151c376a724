import { SqlClient } from "@effect/sql"
import { SqlError } from "@effect/sql/SqlError"
import { Effect, Layer, Option, Schema } from "effect"
import type { PublishOutcome } from "../services/Publisher.js"
import { Appended, appendedHeads, NotNewer, Publisher } from "../services/Publisher.js"
import type { StorageError } from "../services/StorageError.js"
import { UnknownTopic } from "../services/Topic.js"
import { Wakeups } from "../services/Wakeups.js"
import { classify, toStorageError } from "./PgErrors.js"
import { hashToBytes, Int8 } from "./PgRows.js"
import { prepareAll, prepareUpdate } from "./PreparedUpdate.js"
import type { PreparedUpdate } from "./PreparedUpdate.js"
import { decodeRows } from "./SqlDecode.js"
import * as GroupCommit from "./GroupCommit.js"

const WatermarkRow = Schema.Struct({ watermark: Schema.NullOr(Int8) })
const WatermarksRow = Schema.Struct({ watermarks: Schema.Array(Schema.NullOr(Int8)) })

const outcome = (topic: string, watermark: number | null): PublishOutcome =>
  watermark === null ? NotNewer(topic) : Appended(topic, watermark)

/**
 * Publishing over `khala.try_publish_hashed` / `khala.publish_batch`: each call is one statement, so it is atomic on its
 * own and joins the caller's transaction when there is one. The payload is hashed here, once, instead of by the
 * database.
 */
export const make = Effect.gen(function*() {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const decodeWatermark = decodeRows(WatermarkRow)
  const decodeWatermarks = decodeRows(WatermarksRow)

  // The update was validated here, so its topic is all that can still be wrong, and that is answered rather than
  // raised: inside a caller's transaction no savepoint is needed to keep that transaction alive.
  const publishOne = (u: PreparedUpdate) =>
    sql`
      select khala.try_publish_hashed(${u.topic}, ${u.docKey}, ${u.docVersion}, ${u.orgId},
                                      ${u.canonicalPayload}::jsonb, ${u.pointer ?? false},
                                      ${hashToBytes(u.payloadHash)}) as watermark
    `.pipe(
      Effect.mapError(classify(u.topic)),
      Effect.flatMap(decodeWatermark),
      Effect.flatMap((rows) =>
        rows[0]!.watermark === -1 ? new UnknownTopic({ topic: u.topic }) : Effect.succeed(outcome(u.topic, rows[0]!.watermark))
      )
    )

  const publishBatch = (updates: ReadonlyArray<PreparedUpdate>) => {
    if (updates.length === 0) return Effect.succeed([])
    // Built by hand: the canonical payload is already JSON text, so it is spliced in rather than parsed again.
    const body = updates.map((u) =>
      `{"topic":${JSON.stringify(u.topic)},"doc_key":${JSON.stringify(u.docKey)},"doc_version":${u.docVersion},` +
      `"org_id":${JSON.stringify(u.orgId)},"pointer":${u.pointer === true},"payload_hash":"${u.payloadHash}",` +
      `"payload":${u.canonicalPayload}}`
    ).join(",")
    return sql`select khala.publish_batch(${`[${body}]`}::jsonb) as watermarks`.pipe(
      Effect.mapError(classify(updates[0]!.topic)),
      Effect.flatMap(decodeWatermarks),
      Effect.map((rows) => rows[0]!.watermarks.map((w, i) => outcome(updates[i]!.topic, w)))
    )
  }

  const wakeups = yield* Effect.serviceOption(Wakeups)
  // A statement outside a transaction has committed when it returns: wake the hub now. Inside a caller's
  // transaction the commit is the caller's; the hub's poll sees it.
  const signal = (outcomes: ReadonlyArray<PublishOutcome>) =>
    Option.match(wakeups, {
      onNone: () => Effect.void,
      onSome: (wakeups) =>
        Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (transaction) =>
          Option.isSome(transaction) ? Effect.void : wakeups.committed(appendedHeads(outcomes)))
    })

  // An error raised by the publish functions aborts the whole Postgres transaction, and a COMMIT of an aborted
  // transaction silently rolls back. Inside a caller's transaction the statement therefore runs in a savepoint, so
  // a caller that handles a typed publish error keeps its transaction (and its other writes) alive.
  const isolated = <A, E>(statement: Effect.Effect<A, E>): Effect.Effect<A, E | StorageError> =>
    Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (transaction) =>
      Option.isNone(transaction)
        ? statement
        : sql.withTransaction(statement).pipe(
          Effect.mapError((error) => error instanceof SqlError ? toStorageError(error) : error)
        ))

  const groupCommit = yield* GroupCommit.make({
    publishBatch: (updates) => isolated(publishBatch(updates)),
    publishOne: (update) => isolated(publishOne(update)),
    committed: signal
  })

  return Publisher.of({
    publish: (update) =>
      Effect.flatMap(prepareUpdate(update), (u) =>
        Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (transaction) =>
          Option.isSome(transaction)
            // the per-call path: the append belongs to the caller's commit
            ? publishOne(u)
            : groupCommit.enabled
            ? groupCommit.publish(u)
            : publishOne(u).pipe(Effect.tap((outcome) => signal([outcome]))))),
    publishAll: (updates) =>
      Effect.flatMap(prepareAll(updates), (us) => isolated(publishBatch(us))).pipe(Effect.tap(signal))
  })
})

export const layer = Layer.scoped(Publisher, make)
