import { Command, Options } from "@effect/cli"
import { Console, Effect } from "effect"
import { Sequencer } from "../services/Sequencer.js"
import { layerKhala, topicName } from "./Runtime.js"

const reset = Command.make(
  "reset",
  { topic: Options.text("topic").pipe(Options.withDescription("Topic, dotted or enum name")) },
  (args) =>
    Effect.gen(function*() {
      const topic = topicName(args.topic)
      const epoch = yield* (yield* Sequencer).resetTopic(topic)
      yield* Console.log(
        `reset ${topic}: its journal is empty and its epoch is now ${epoch}; clients re-hydrate and resubscribe`
      )
    })
).pipe(
  Command.withDescription(
    "Reset a topic's journal and epoch, as after restoring a backup: every client resume point becomes stale " +
      "(stale_cursor, reason epoch_changed when the client sent its epoch) and clients re-hydrate from the read model"
  )
)

export const command = Command.make("topic").pipe(
  Command.withDescription("Topic operations"),
  Command.withSubcommands([reset]),
  Command.provide(layerKhala)
)
