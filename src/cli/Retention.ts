import { Command, Options } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import * as Retention from "../engine/Retention.js"
import { Journal } from "../services/Journal.js"
import { nonNegative } from "./Arguments.js"
import { withProgress } from "./Progress.js"
import { layerKhala, topicName } from "./Runtime.js"

const count = (n: number) => n.toLocaleString("en-US")

/** A retention run's progress line: rows and batches deleted so far, topics done, and the topic being pruned. */
export const describeRetention = (progress: Retention.RetentionProgress): string =>
  [
    `${count(progress.rowsRemoved)} rows removed in ${count(progress.batches)} batches`,
    ...(progress.topics > 1 ? [`${progress.topicsDone} of ${progress.topics} topics done`] : []),
    ...Option.match(progress.pruning, { onNone: () => [], onSome: (topic) => [`pruning ${topic}`] })
  ].join(", ")

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
      const journal = yield* Journal
      const result = yield* withProgress(
        { label: `pruning ${topic}`, initial: { ...Retention.noProgress, topics: 1 }, describe: describeRetention },
        (report) => {
          let progress: Retention.RetentionProgress = { ...Retention.noProgress, topics: 1 }
          return journal.prune(topic, args.beforeWatermark, {
            onBatch: (deleted) => {
              progress = { ...progress, rowsRemoved: progress.rowsRemoved + deleted, batches: progress.batches + 1 }
              return report(progress)
            }
          })
        }
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
    const results = yield* withProgress(
      { label: "running retention", initial: Retention.noProgress, describe: describeRetention },
      (report) => Retention.run({ onProgress: report })
    )
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
