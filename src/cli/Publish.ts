import { Command, Options } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import { NodeStream } from "@effect/platform-node"
import { Console, Effect, Option, Schema } from "effect"
import { InvalidUpdate, Publisher } from "../services/Publisher.js"
import { nonNegative } from "./Arguments.js"
import { layerKhala, topicName } from "./Runtime.js"

const parseJson = Schema.decodeUnknown(Schema.parseJson())

/** Bound of a payload read from a file or stdin: far above any document a client should be sent. */
const maxPayloadInput = 64 * 1024 * 1024

/** The `--payload` text: inline JSON, `@path` for a file's contents, or `-` for stdin. */
const payloadText = (argument: string) => {
  if (argument === "-") {
    return NodeStream.toString(() => process.stdin, {
      maxBytes: maxPayloadInput,
      onFailure: (error) =>
        new InvalidUpdate({
          message: `--payload -: cannot read stdin: ${error instanceof Error ? error.message : String(error)}`
        })
    })
  }
  if (argument.startsWith("@")) {
    const path = argument.slice(1)
    return Effect.flatMap(FileSystem.FileSystem, (fs) =>
      fs.readFileString(path).pipe(
        Effect.mapError((error) => new InvalidUpdate({ message: `--payload @${path}: ${error.message}` }))
      ))
  }
  return Effect.succeed(argument)
}

export const command = Command.make(
  "publish",
  {
    topic: Options.text("topic").pipe(Options.withDescription("Topic, dotted (runtime.run_summaries) or enum name")),
    docKey: Options.text("doc-key").pipe(Options.withDescription("Document key")),
    docVersion: nonNegative("doc-version").pipe(
      Options.withDescription("Document version: written only if newer than the stored one")
    ),
    org: Options.text("org").pipe(Options.withDescription("Organization the document belongs to")),
    pointer: Options.boolean("pointer").pipe(
      Options.withDescription("Pointer mode: the journal row omits the payload; clients hydrate it")
    ),
    payload: Options.text("payload").pipe(
      Options.withDescription("The document, as JSON; @file reads it from a file, - from stdin"),
      Options.optional
    ),
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
            onSome: (argument) =>
              payloadText(argument).pipe(
                Effect.flatMap((text) =>
                  parseJson(text).pipe(
                    Effect.mapError(() => new InvalidUpdate({ message: "--payload is not valid JSON" }))
                  )
                )
              )
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
