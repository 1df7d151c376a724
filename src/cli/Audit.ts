import { Command, Options } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import { Console, Effect, Layer, Schema, Stream } from "effect"
import { AuditMismatches, auditTopic } from "../engine/Audit.js"
import { LegacyReader, LegacyReadError } from "../services/Audit.js"
import * as DocumentHashesPg from "../storage/postgres/DocumentHashesPg.js"
import { layerKhala, topicName } from "./Runtime.js"

/** One line of a legacy export: a document's hash, or its payload for Khala to hash. */
const LegacyLine = Schema.Struct({
  topic: Schema.optional(Schema.String),
  org_id: Schema.String,
  doc_key: Schema.String,
  payload_hash: Schema.optional(Schema.String),
  payload: Schema.optional(Schema.Unknown)
})
const decodeLine = Schema.decodeUnknownEither(Schema.parseJson(LegacyLine))

/**
 * A legacy projection exported as JSON lines (`{org_id, doc_key, payload_hash}` or `{org_id, doc_key, payload}`, and
 * `topic` when the file holds several topics): a line of another topic is skipped, a malformed one refused by number.
 */
export const layerLegacyFile = (path: string) =>
  Layer.effect(
    LegacyReader,
    Effect.map(FileSystem.FileSystem, (fs) =>
      LegacyReader.of({
        list: (topic) =>
          fs.stream(path).pipe(
            Stream.decodeText(),
            Stream.splitLines,
            Stream.zipWithIndex,
            Stream.filter(([line]) => line.trim() !== ""),
            Stream.mapEffect(([line, index]) =>
              Effect.mapError(
                decodeLine(line),
                () =>
                  new LegacyReadError({ message: `${path}:${index + 1}: not a {org_id, doc_key, payload_hash} line` })
              )
            ),
            Stream.filter((entry) => entry.topic === undefined || topicName(entry.topic) === topic),
            Stream.map((entry) => ({
              orgId: entry.org_id,
              docKey: entry.doc_key,
              hash: entry.payload_hash,
              payload: entry.payload
            })),
            Stream.mapError((error) =>
              error._tag === "LegacyReadError" ? error : new LegacyReadError({ message: `${path}: ${error.message}` })
            )
          )
      }))
  )

export const command = Command.make(
  "audit",
  {
    topic: Options.text("topic").pipe(Options.withDescription("Topic, dotted or enum name")),
    legacy: Options.file("legacy", { exists: "yes" }).pipe(
      Options.withDescription("The legacy projection as JSON lines: {org_id, doc_key, payload_hash or payload}")
    )
  },
  (args) =>
    Effect.gen(function*() {
      const topic = topicName(args.topic)
      const report = yield* auditTopic(topic).pipe(Effect.provide(layerLegacyFile(args.legacy)))
      for (const m of report.mismatches) {
        yield* Console.log(`${m.kind} ${m.orgId} ${m.docKey} khala=${m.khala ?? "-"} legacy=${m.legacy ?? "-"}`)
      }
      const counts = (kind: string) => report.mismatches.filter((m) => m.kind === kind).length
      yield* Console.log(
        `audit of ${topic}: ${report.khalaDocuments} documents in khala, ${report.legacyDocuments} in the legacy ` +
          `projection; ${counts("missing_in_khala")} missing in khala, ${counts("missing_in_legacy")} missing in ` +
          `the legacy projection, ${counts("hash_differs")} differ`
      )
      if (report.mismatches.length > 0) {
        return yield* new AuditMismatches({ topic, count: report.mismatches.length })
      }
    })
).pipe(
  Command.withDescription(
    "Compare the read model's document hashes with a legacy projection's; exits 1 when any document is missing on " +
      "either side or differs"
  ),
  Command.provide(DocumentHashesPg.layer),
  Command.provide(layerKhala)
)
