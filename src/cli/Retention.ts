import { Command, Options } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import * as Retention from "../engine/Retention.js"
import { Journal } from "../services/Journal.js"
import { nonNegative } from "./Arguments.js"
import { withProgress } from "./Progress.js"
import { layerKhala, topicName } from "./Runtime.js"

const prune = Command.make(
  "prune",
  {
    topic: Options.text("topic").pipe(Options.withDescription("Topic, dotted or enum name")),
    beforeWatermark: nonNegative("before-watermark").pipe(
      Options.withDescription("Delete the journal rows up to and including this watermark (capped at the head)")
    )
  },
  (args) =>
    Effect.gen(function*() {
      const topic = topicName(args.topic)
      const result = yield* withProgress(
        `pruning ${topic}`,
        (yield* Journal).prune(topic, args.beforeWatermark)
      )
      yield* Console.log(
        `pruned ${result.deleted} rows of ${result.topic}; retention floor is now ${result.retentionFloor}`
      )
    })
).pipe(
  Command.withDescription(
    "Prune a topic's journal: clients resuming below the new floor get stale_cursor and re-hydrate (never a partial " +
      "replay)"
  )
)

const run = Command.make("run", {}, () =>
  Effect.gen(function*() {
    const results = yield* withProgress("running retention", Retention.runOnce)
    if (Option.isNone(results)) return yield* Console.log("another node is running retention now; nothing was done")
    if (results.value.length === 0) return yield* Console.log("nothing is past its retention")
    for (const result of results.value) {
      yield* Console.log(
        `pruned ${result.deleted} rows of ${result.topic}; retention floor is now ${result.retentionFloor}`
      )
    }
  })).pipe(
    Command.withDescription(
      "Run retention now, as khala serve does on a schedule: prune every topic of the catalog past its retention"
    )
  )

export const command = Command.make("retention").pipe(
  Command.withDescription("Journal retention"),
  Command.withSubcommands([run, prune]),
  Command.provide(layerKhala)
)
