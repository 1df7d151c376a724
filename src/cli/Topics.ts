/**
 * The extra topics of `khala serve` and the other commands (protocol.md §4: the runtime may extend the catalog), read from
 * the environment and checked at start: `KHALA_TOPICS` (JSON) and/or `KHALA_TOPICS_FILE` (a JSON file), each a list of
 * `{wire_name, enum_name?, retention_class?, retention_ms?, pointer_mode?}`.
 */
import { Config, ConfigError, Effect, Either, Option, ParseResult, Schema } from "effect"
import { readFileSync } from "node:fs"
import { resolve } from "node:path"
import { RetentionClass } from "../protocol/gen/openagents/sync/v1/topics_pb.js"
import type { TopicDefinition } from "../protocol/TopicCatalog.js"
import * as TopicCatalog from "../protocol/TopicCatalog.js"

const classNames = Object.keys(RetentionClass).filter((name) => Number.isNaN(Number(name)))

/** A retention class by its name, in any case, with or without the `RETENTION_CLASS_` prefix. */
const RetentionClassName = Schema.transformOrFail(Schema.String, Schema.Enums(RetentionClass), {
  strict: true,
  decode: (name, _, ast) => {
    const key = name.trim().toUpperCase().replace(/^RETENTION_CLASS_/, "")
    const value = (RetentionClass as unknown as Record<string, RetentionClass | undefined>)[key]
    return value === undefined
      ? ParseResult.fail(
        new ParseResult.Type(ast, name, `unknown retention class; one of ${classNames.join(", ").toLowerCase()}`)
      )
      : ParseResult.succeed(value)
  },
  encode: (value) => ParseResult.succeed(RetentionClass[value].toLowerCase())
})

const TopicEntry = Schema.Struct({
  wire_name: Schema.String,
  enum_name: Schema.optional(Schema.String),
  retention_class: Schema.optional(RetentionClassName),
  retention_ms: Schema.optional(Schema.Int.pipe(Schema.positive())),
  pointer_mode: Schema.optional(Schema.Boolean)
})

const decodeTopics = Schema.decodeUnknownEither(Schema.parseJson(Schema.Array(TopicEntry)), {
  onExcessProperty: "error"
})

const firstIssue = (error: ParseResult.ParseError) => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  if (issue === undefined) return "not a list of topics"
  const path = issue.path.map((key) => (typeof key === "number" ? `[${key}]` : `.${String(key)}`)).join("")
  return path === "" ? issue.message : `${path.replace(/^\./, "")}: ${issue.message}`
}

/** The definitions a JSON text gives, or the reason it gives none. */
export const parseTopics = (text: string): Either.Either<ReadonlyArray<TopicDefinition>, string> =>
  Either.map(
    Either.mapLeft(decodeTopics(text), firstIssue),
    (entries) =>
      entries.map((entry): TopicDefinition => ({
        wireName: entry.wire_name,
        enumName: entry.enum_name,
        retentionClass: entry.retention_class,
        retentionMs: entry.retention_ms,
        pointerMode: entry.pointer_mode
      }))
  )

const optionalText = (name: string) =>
  Config.string(name).pipe(Config.option, Config.map(Option.filter((value) => value.trim() !== "")))

/** Where the extra topics come from. */
export const TopicsConfig = Config.all({
  inline: optionalText("KHALA_TOPICS").pipe(
    Config.withDescription("Extra topics as JSON: [{wire_name, retention_class?, retention_ms?, pointer_mode?}]")
  ),
  file: optionalText("KHALA_TOPICS_FILE").pipe(Config.withDescription("A JSON file of extra topics, as KHALA_TOPICS"))
})

const invalid = (setting: string, message: string) => ConfigError.InvalidData([setting], message)

/**
 * The extra topics, from `KHALA_TOPICS` and `KHALA_TOPICS_FILE` together, checked as the catalog will hold them:
 * a bad entry, an unreadable file or a topic that clashes with another is one `ConfigError` naming the setting.
 */
export const extraTopics: Effect.Effect<ReadonlyArray<TopicDefinition>, ConfigError.ConfigError> = Effect.gen(
  function*() {
    const config = yield* TopicsConfig
    const fromInline = yield* Option.match(config.inline, {
      onNone: () => Either.right([]),
      onSome: (text) => Either.mapLeft(parseTopics(text), (message) => invalid("KHALA_TOPICS", message))
    })
    const fromFile = yield* Option.match(config.file, {
      onNone: () => Either.right([]),
      onSome: (name) => {
        const path = resolve(name)
        return Either.try({
          try: () => readFileSync(path, "utf8"),
          catch: (error) => invalid("KHALA_TOPICS_FILE", `${path}: ${error instanceof Error ? error.message : error}`)
        }).pipe(
          Either.flatMap((text) =>
            Either.mapLeft(parseTopics(text), (message) => invalid("KHALA_TOPICS_FILE", `${path}: ${message}`))
          )
        )
      }
    })
    const topics = [...fromInline, ...fromFile]
    const setting = Option.isSome(config.file) ? "KHALA_TOPICS_FILE" : "KHALA_TOPICS"
    yield* Either.mapLeft(
      TopicCatalog.make({ topics }),
      (error) => invalid(setting, `${error.topic}: ${error.message}`)
    )
    return topics
  }
)
