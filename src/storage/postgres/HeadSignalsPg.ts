import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import type { ConfigError } from "effect"
import { Config, Context, Effect, Layer, Option, Schema } from "effect"
import { HeadSignals } from "../../services/HeadSignals.js"
import * as Metrics from "../../services/Metrics.js"
import type { TopicHead } from "../../services/Wakeups.js"
import * as PgListener from "./PgListener.js"

export const HeadSignalsConfig = Config.all({
  notify: Config.boolean("KHALA_NOTIFY").pipe(
    Config.withDefault(true),
    Config.withDescription("Send and listen for NOTIFY hints between processes (polling alone still delivers all)")
  )
})

/** The channel Khala processes hint each other on, with a JSON object of topic heads as payload. */
export const channel = "khala_heads"

// pg_notify payloads are limited to 8000 bytes; split well below it.
const maxPayloadBytes = 7000

const Heads = Schema.parseJson(Schema.Record({ key: Schema.String, value: Schema.Number }))
const decodeHeads = Schema.decodeUnknownOption(Heads)

/** Encodes heads as `pg_notify` payloads, each under the size limit. */
export const encodeHeads = (heads: ReadonlyArray<TopicHead>): Array<string> => {
  const payloads: Array<string> = []
  let current: Record<string, number> = {}
  let size = 2
  for (const { head, topic } of heads) {
    const entry = JSON.stringify(topic).length + String(head).length + 2
    if (size + entry > maxPayloadBytes && size > 2) {
      payloads.push(JSON.stringify(current))
      current = {}
      size = 2
    }
    current[topic] = head
    size += entry
  }
  if (size > 2) payloads.push(JSON.stringify(current))
  return payloads
}

/**
 * Hints over `NOTIFY` / `LISTEN` on the channel `khala_heads`: sent on the pool, never in a caller's transaction
 * (a NOTIFY there would serialize every notifying commit of the database behind one lock, design.md §4), and received on a
 * connection of its own.
 */
export const make = Effect.gen(function*() {
  const pg = yield* PgClient.PgClient
  return HeadSignals.of({
    send: (heads) =>
      Effect.forEach(
        encodeHeads(heads),
        (payload) =>
          Effect.zipLeft(pg`select pg_notify(${channel}, ${payload})`, Metrics.increment(Metrics.notifySent)),
        { discard: true }
      ).pipe(
        // even were this called inside a transaction, the hint must not join it
        Effect.mapInputContext((context: Context.Context<never>) =>
          Context.omit(SqlClient.TransactionConnection)(context)
        ),
        Effect.catchAll((error) => Effect.logWarning("sending head hints failed", error))
      ),
    receive: ({ onConnected, onHeads }) =>
      PgListener.listen({
        config: PgListener.clientConfig(pg.config),
        channel,
        onPayload: (payload) => {
          // this process's own hints come back too: a LISTEN hears every NOTIFY on its channel
          Metrics.add(Metrics.notifyReceived)
          return Option.match(decodeHeads(payload), {
            onNone: () => undefined,
            onSome: (heads) => onHeads(Object.entries(heads).map(([topic, head]) => ({ topic, head })))
          })
        },
        onConnected
      })
  })
})

/** Head hints between processes on a Postgres server; none with `KHALA_NOTIFY=false`. */
export const layer: Layer.Layer<HeadSignals, ConfigError.ConfigError, PgClient.PgClient> = Layer.unwrapEffect(
  Effect.map(HeadSignalsConfig, (config) => config.notify ? Layer.effect(HeadSignals, make) : HeadSignals.none)
)
