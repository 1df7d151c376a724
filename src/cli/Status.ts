import { Command, Options } from "@effect/cli"
import { HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { Console, Effect, Option } from "effect"
import { Journal } from "../services/Journal.js"
import { OutboxStore } from "../services/OutboxStore.js"
import { Sequencer } from "../services/Sequencer.js"
import * as Outbox from "./Outbox.js"
import { layerKhala } from "./Runtime.js"

/** The oldest row still in a topic's journal: the first above the floor (a hole from erased rows is stepped over). */
const oldestRetained = (topic: string, floor: number, head: number) =>
  Effect.gen(function*() {
    const journal = yield* Journal
    let after = floor
    while (after < head) {
      const page = yield* journal.read(topic, after, 1, { maxPayloadBytes: 0 })
      const row = page.rows[0]
      if (row !== undefined) return Option.some(row)
      if (page.through <= after) break
      after = page.through
    }
    return Option.none()
  })

/** What a running node answers on `/readyz`, in one line. */
const nodeReadiness = (url: string) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const base = url.replace(/\/+$/, "")
    return yield* client.get(`${base}/readyz`).pipe(
      Effect.flatMap((response) =>
        Effect.map(response.text, (body) =>
          response.status === 200 ? `node ${base}: ready` : `node ${base}: not ready (${response.status} ${body})`)
      ),
      Effect.scoped,
      Effect.timeout("5 seconds"),
      Effect.catchAll((error) =>
        Effect.succeed(`node ${base}: unreachable (${error.message})`)
      )
    )
  }).pipe(Effect.provide(NodeHttpClient.layerUndici))

export const command = Command.make(
  "status",
  {
    url: Options.text("url").pipe(
      Options.withDescription("A running node's base URL (http://host:port): its readiness too"),
      Options.optional
    )
  },
  (args) =>
    Effect.gen(function*() {
      const sequencer = yield* Sequencer
      const topics = (yield* sequencer.topics).map((t) => t.topic)
      const positions = yield* sequencer.positions(topics)
      const cursors = yield* (yield* OutboxStore).cursors
      for (const position of positions) {
        const oldest = yield* oldestRetained(position.topic, position.retentionFloor, position.head).pipe(
          Effect.catchTags({
            StaleCursor: () => Effect.succeed(Option.none()),
            UnknownTopic: () => Effect.succeed(Option.none())
          })
        )
        const outbox = cursors.filter((c) => c.topic === position.topic).map((c) => `${c.sink}:${c.watermark}`)
        yield* Console.log(
          [
            position.topic,
            `head=${position.head}`,
            `retention_floor=${position.retentionFloor}`,
            `oldest_retained=${
              Option.match(oldest, {
                onNone: () => "none",
                onSome: (row) => `${row.watermark}@${row.insertedAt.toISOString()}`
              })
            }`,
            `epoch=${position.epoch}`,
            ...(outbox.length === 0 ? [] : [`outbox=${outbox.join(",")}`])
          ].join(" ")
        )
      }
      if (Option.isSome(args.url)) {
        yield* Console.log(yield* nodeReadiness(args.url.value))
        yield* Console.log("sockets and subscribers: the node has no endpoint that reports them")
      }
    })
).pipe(
  Command.withDescription(
    "Print each topic's head, retention floor, oldest retained row, epoch and outbox cursors, from the database; " +
      "with --url, whether a running node is ready"
  ),
  Command.provide(Outbox.layerStore),
  Command.provide(layerKhala)
)
