import { Command, Options } from "@effect/cli"
import { Console, Effect, Option, Stream } from "effect"
import { Audience, Hub } from "../services/Hub.js"
import { Journal, rowJson } from "../services/Journal.js"
import { nonNegative, positive } from "./Arguments.js"
import { layerKhala, topicName } from "./Runtime.js"

const pageSize = 500

export const command = Command.make(
  "tail",
  {
    topic: Options.text("topic").pipe(Options.withDescription("Topic, dotted or enum name")),
    after: nonNegative("after").pipe(
      Options.withDescription("Print rows after this watermark (default 0: from the start)"),
      Options.withDefault(0)
    ),
    limit: positive("limit").pipe(
      Options.withDescription("Print at most this many rows"),
      Options.optional
    ),
    follow: Options.boolean("follow").pipe(
      Options.withAlias("f"),
      Options.withDescription("Keep printing rows as they are appended (through the hub, as clients receive them)")
    )
  },
  (args) =>
    Effect.gen(function*() {
      const topic = topicName(args.topic)
      if (args.follow) {
        const stream = (yield* Hub).subscribe({
          topic,
          after: args.after,
          audience: Audience.allOrgs,
          batchSize: pageSize
        }).pipe(
          Stream.flatMap((batch) => Stream.fromIterable(batch.updates))
        )
        return yield* Option.match(args.limit, { onNone: () => stream, onSome: (n) => Stream.take(stream, n) }).pipe(
          Stream.runForEach((row) => Console.log(JSON.stringify(rowJson(row))))
        )
      }
      const journal = yield* Journal
      let after = args.after
      let remaining = Option.getOrElse(args.limit, () => Number.POSITIVE_INFINITY)
      while (remaining > 0) {
        const page = yield* journal.read(topic, after, Math.min(pageSize, remaining))
        for (const row of page.rows) yield* Console.log(JSON.stringify(rowJson(row)))
        if (page.rows.length === 0) break
        after = page.rows[page.rows.length - 1]!.watermark
        remaining -= page.rows.length
      }
    })
).pipe(
  Command.withDescription("Print a topic's journal rows after a watermark, one JSON object per line"),
  Command.provide(layerKhala)
)
