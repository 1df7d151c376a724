import { Command, Options } from "@effect/cli"
import { Console, Effect, Option, Schema } from "effect"
import { InvalidUpdate, Publisher } from "../services/Publisher.js"
import { layerKhala, topicName } from "./Runtime.js"

const parseJson = Schema.decodeUnknown(Schema.parseJson())

export const command = Command.make(
  "publish",
  {
    topic: Options.text("topic").pipe(Options.withDescription("Topic, dotted (runtime.run_summaries) or enum name")),
    docKey: Options.text("doc-key").pipe(Options.withDescription("Document key")),
    docVersion: Options.integer("doc-version").pipe(
      Options.withDescription("Document version: written only if newer than the stored one")
    ),
    org: Options.text("org").pipe(Options.withDescription("Organization the document belongs to")),
    pointer: Options.boolean("pointer").pipe(
      Options.withDescription("Pointer mode: the journal row omits the payload; clients hydrate it")
    ),
    payload: Options.text("payload").pipe(Options.withDescription("The document, as JSON"), Options.optional),
    delete: Options.boolean("delete").pipe(
      Options.withDescription("Delete the document instead: clients drop it; a tombstone keeps its version")
    )
  },
  (args) =>
    Effect.gen(function*() {
      const publisher = yield* Publisher
      const document = {
        topic: topicName(args.topic),
        docKey: args.docKey,
        docVersion: args.docVersion,
        orgId: args.org
      }
      if (args.delete && Option.isSome(args.payload)) {
        return yield* new InvalidUpdate({ message: "--delete takes no --payload" })
      }
      const outcome = args.delete
        ? yield* publisher.remove(document)
        : yield* publisher.publish({
          ...document,
          payload: yield* Option.match(args.payload, {
            onNone: () => new InvalidUpdate({ message: "--payload is required (or --delete)" }),
            onSome: (text) =>
              parseJson(text).pipe(Effect.mapError(() => new InvalidUpdate({ message: "--payload is not valid JSON" })))
          }),
          pointer: args.pointer
        })
      yield* outcome._tag === "Appended"
        ? Console.log(String(outcome.watermark))
        : Console.log(`not published: ${args.docKey} already has version ${args.docVersion} or newer`)
    })
).pipe(
  Command.withDescription("Publish (or --delete) one document; prints the watermark it was appended at"),
  Command.provide(layerKhala)
)
