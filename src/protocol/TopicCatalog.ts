/**
 * The topic catalog (protocol.md §4): every topic's dotted wire name, proto enum name and retention.
 *
 * The v1 catalog is read from the `SyncTopic` enum's `wire_name` / `retention_class` value options in
 * the generated descriptor, so `topics.proto` stays the single source of truth. A runtime extends the
 * catalog with its own topics, either declared in code or as an enum of its own carrying the same
 * options.
 *
 * Everything but the `TopicCatalog` tag and its layers is plain functions usable without Effect.
 *
 * @since 0.1.0
 */
import { type DescEnum, getOption, hasOption } from "@bufbuild/protobuf"
import * as Context from "effect/Context"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { retention_class, RetentionClass, SyncTopicSchema, wire_name } from "./gen/openagents/sync/v1/topics_pb.js"

const hour = 60 * 60 * 1000
const day = 24 * hour

/**
 * Default retention of each class (protocol.md §4).
 *
 * @since 0.1.0
 */
export const defaultRetentionMs: ReadonlyMap<RetentionClass, number> = new Map([
  [RetentionClass.RUN_SUMMARIES, 7 * day],
  [RetentionClass.WORKER_SUMMARIES, 3 * day],
  [RetentionClass.HIGH_CHURN_EVENTS, 1 * day],
  [RetentionClass.NOTIFICATIONS, 12 * hour]
])

/**
 * Retention of `UNSPECIFIED` and of classes this build does not know (protocol.md §4).
 *
 * @since 0.1.0
 */
export const unknownRetentionMs = 1 * day

/**
 * One topic of the catalog.
 *
 * @since 0.1.0
 */
export interface TopicInfo {
  /** Dotted name, e.g. `runtime.run_summaries`; the canonical key in storage. */
  readonly wireName: string
  /** Proto enum value name, e.g. `SYNC_TOPIC_RUNTIME_RUN_SUMMARIES`. */
  readonly enumName: string
  /** Number in the enum the topic was declared in; none for topics declared in code. */
  readonly enumValue: Option.Option<number>
  readonly retentionClass: RetentionClass
  /** Effective retention: the topic's own override, else its class's. */
  readonly retentionMs: number
  /**
   * Pointer mode (design.md §3, I5): journal rows of the topic never carry the payload. Absent: as registered in storage
   * (off for a new topic; an operator may have set it).
   */
  readonly pointerMode?: boolean | undefined
}

/**
 * A topic supplied by the runtime in code.
 *
 * @since 0.1.0
 */
export interface TopicDefinition {
  readonly wireName: string
  /** Defaults to `SYNC_TOPIC_` followed by the wire name upper-cased with dots as underscores. */
  readonly enumName?: string | undefined
  /** Defaults to `UNSPECIFIED`, i.e. the unknown-class retention. */
  readonly retentionClass?: RetentionClass | undefined
  /** Overrides the class retention for this topic. */
  readonly retentionMs?: number | undefined
  /** Pointer mode for every row of the topic: deliveries carry `hydration_required` and no payload (I5). */
  readonly pointerMode?: boolean | undefined
}

/**
 * What the catalog is built from besides the v1 topics.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Extra topics declared in code. */
  readonly topics?: ReadonlyArray<TopicDefinition> | undefined
  /** Extra topic enums whose values carry the `wire_name` / `retention_class` options. */
  readonly enums?: ReadonlyArray<DescEnum> | undefined
  /** Per-class retention overrides (retention is configurable, protocol.md §4). */
  readonly retentionMs?: Partial<Record<RetentionClass, number>> | undefined
}

/**
 * A catalog cannot be built from the given definitions.
 *
 * @since 0.1.0
 */
export class TopicCatalogError extends Schema.TaggedError<TopicCatalogError>()("TopicCatalogError", {
  reason: Schema.Literal("InvalidWireName", "InvalidEnumName", "MissingWireName", "DuplicateTopic", "InvalidRetention"),
  topic: Schema.String,
  message: Schema.String
}) {}

/**
 * A topic name that is in neither form in the catalog, or has no sequence in storage; answered with
 * `forbidden_topic` on the wire.
 *
 * @since 0.1.0
 */
export class UnknownTopic extends Schema.TaggedError<UnknownTopic>()("UnknownTopic", {
  topic: Schema.String
}) {
  override get message(): string {
    return `unknown topic ${JSON.stringify(this.topic)}`
  }
}

/**
 * The catalog: lookups in both name forms and by retention class.
 *
 * @since 0.1.0
 */
export interface Catalog {
  readonly topics: ReadonlyArray<TopicInfo>
  /** Looks a topic up by dotted name or enum name. */
  readonly get: (nameOrEnumName: string) => Option.Option<TopicInfo>
  /** Like `get`, failing with `UnknownTopic`. */
  readonly resolve: (nameOrEnumName: string) => Either.Either<TopicInfo, UnknownTopic>
  readonly byWireName: (wireName: string) => Option.Option<TopicInfo>
  readonly byEnumName: (enumName: string) => Option.Option<TopicInfo>
  readonly byRetentionClass: (retentionClass: RetentionClass) => ReadonlyArray<TopicInfo>
  /** Effective retention of a class, with the catalog's overrides applied. */
  readonly classRetentionMs: (retentionClass: RetentionClass) => number
}

const wireNamePattern = /^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+$/
const enumNamePattern = /^[A-Z][A-Z0-9_]*$/

/**
 * Which of the two accepted forms a topic name is in; replies use the form the client used (protocol.md §4).
 *
 * @since 0.1.0
 */
export type TopicNameForm = "wire_name" | "enum_name"

/**
 * @since 0.1.0
 */
export const nameForm = (name: string): TopicNameForm => (enumNamePattern.test(name) ? "enum_name" : "wire_name")

/**
 * The topic's name in the given form.
 *
 * @since 0.1.0
 */
export const nameIn = (topic: TopicInfo, form: TopicNameForm): string =>
  form === "enum_name" ? topic.enumName : topic.wireName

/**
 * The enum name a code-declared topic gets when none is given.
 *
 * @since 0.1.0
 */
export const defaultEnumName = (wireName: string): string => "SYNC_TOPIC_" + wireName.toUpperCase().replace(/\./g, "_")

const isRetention = (ms: number): boolean => Number.isSafeInteger(ms) && ms > 0

const invalid = (reason: TopicCatalogError["reason"], topic: string, message: string) =>
  Either.left(new TopicCatalogError({ reason, topic, message }))

interface Declared {
  readonly wireName: string
  readonly enumName: string
  readonly enumValue: Option.Option<number>
  readonly retentionClass: RetentionClass
  readonly retentionMs: Option.Option<number>
  readonly pointerMode?: boolean | undefined
}

const fromEnumValues = (desc: DescEnum): Either.Either<ReadonlyArray<Declared>, TopicCatalogError> => {
  const declared: Array<Declared> = []
  for (const value of desc.values) {
    // By proto3 convention (and buf lint) the zero value is UNSPECIFIED, not a topic.
    if (value.number === 0) continue
    if (!hasOption(value, wire_name)) {
      return invalid("MissingWireName", value.name, `${desc.typeName}.${value.name} has no (wire_name) option`)
    }
    declared.push({
      wireName: getOption(value, wire_name),
      enumName: value.name,
      enumValue: Option.some(value.number),
      retentionClass: getOption(value, retention_class),
      retentionMs: Option.none()
    })
  }
  return Either.right(declared)
}

const fromDefinition = (definition: TopicDefinition): Declared => ({
  wireName: definition.wireName,
  enumName: definition.enumName ?? defaultEnumName(definition.wireName),
  enumValue: Option.none(),
  retentionClass: definition.retentionClass ?? RetentionClass.UNSPECIFIED,
  retentionMs: Option.fromNullable(definition.retentionMs),
  pointerMode: definition.pointerMode
})

/**
 * Builds a catalog holding the v1 topics plus the runtime's extra topics.
 *
 * @since 0.1.0
 */
export const make = (options: Options = {}): Either.Either<Catalog, TopicCatalogError> =>
  Either.gen(function*() {
    const overrides = options.retentionMs ?? {}
    for (const [retentionClass, ms] of Object.entries(overrides)) {
      if (ms !== undefined && !isRetention(ms)) {
        return yield* invalid("InvalidRetention", retentionClass, `retention ${ms} ms is not a positive integer`)
      }
    }
    const classRetentionMs = (retentionClass: RetentionClass): number =>
      overrides[retentionClass] ?? defaultRetentionMs.get(retentionClass) ?? unknownRetentionMs

    const declared: Array<Declared> = []
    for (const desc of [SyncTopicSchema, ...(options.enums ?? [])]) {
      for (const topic of yield* fromEnumValues(desc)) declared.push(topic)
    }
    for (const definition of options.topics ?? []) declared.push(fromDefinition(definition))

    const topics: Array<TopicInfo> = []
    const byWire = new Map<string, TopicInfo>()
    const byEnum = new Map<string, TopicInfo>()
    for (const topic of declared) {
      if (!wireNamePattern.test(topic.wireName)) {
        return yield* invalid("InvalidWireName", topic.wireName, "a wire name is lower-case dotted segments")
      }
      if (!enumNamePattern.test(topic.enumName)) {
        const message = `enum name ${topic.enumName} is not SCREAMING_SNAKE_CASE`
        return yield* invalid("InvalidEnumName", topic.wireName, message)
      }
      // Either collision would make a name resolve to a different topic depending on the form used.
      if (byWire.has(topic.wireName) || byEnum.has(topic.enumName)) {
        const message = `${topic.wireName} / ${topic.enumName} is declared twice`
        return yield* invalid("DuplicateTopic", topic.wireName, message)
      }
      if (Option.isSome(topic.retentionMs) && !isRetention(topic.retentionMs.value)) {
        return yield* invalid("InvalidRetention", topic.wireName, "retention must be a positive integer of ms")
      }
      const info: TopicInfo = {
        wireName: topic.wireName,
        enumName: topic.enumName,
        enumValue: topic.enumValue,
        retentionClass: topic.retentionClass,
        retentionMs: Option.getOrElse(topic.retentionMs, () => classRetentionMs(topic.retentionClass)),
        ...(topic.pointerMode === undefined ? {} : { pointerMode: topic.pointerMode })
      }
      topics.push(info)
      byWire.set(info.wireName, info)
      byEnum.set(info.enumName, info)
    }

    const byWireName = (wireName: string) => Option.fromNullable(byWire.get(wireName))
    const byEnumName = (enumName: string) => Option.fromNullable(byEnum.get(enumName))
    const get = (name: string) => Option.orElse(byWireName(name), () => byEnumName(name))
    const catalog: Catalog = {
      topics,
      get,
      resolve: (name) => Either.fromOption(get(name), () => new UnknownTopic({ topic: name })),
      byWireName,
      byEnumName,
      byRetentionClass: (retentionClass) => topics.filter((topic) => topic.retentionClass === retentionClass),
      classRetentionMs
    }
    return catalog
  })

/**
 * The v1 catalog with default retention.
 *
 * @since 0.1.0
 */
export const v1: Catalog = Either.getOrThrowWith(
  make(),
  // Only a broken topics.proto gets here: a defect of the build, not a runtime condition.
  (error) => new Error(`invalid SyncTopic descriptor: ${error.message}`)
)

/**
 * Resolves a topic given in either name form against the v1 catalog.
 *
 * @since 0.1.0
 */
export const resolveTopic = (nameOrEnumName: string): Either.Either<TopicInfo, UnknownTopic> =>
  v1.resolve(nameOrEnumName)

/**
 * The dotted name of a topic given in either form; a name the catalog does not know is returned as given (the
 * database then decides whether such a topic is registered).
 *
 * @since 0.1.0
 */
export const wireNameOf = (catalog: Catalog, name: string): string =>
  Option.match(catalog.get(name), { onNone: () => name, onSome: (topic) => topic.wireName })

/**
 * The catalog in use by a Khala instance.
 *
 * @since 0.1.0
 */
export class TopicCatalog extends Context.Tag("khala/TopicCatalog")<TopicCatalog, Catalog>() {
  /** The v1 catalog with default retention. */
  static readonly Default: Layer.Layer<TopicCatalog> = Layer.succeed(this, v1)
}

/**
 * A catalog extended with the runtime's topics and retention overrides.
 *
 * @since 0.1.0
 */
export const layer = (options: Options): Layer.Layer<TopicCatalog, TopicCatalogError> =>
  Layer.effect(TopicCatalog, make(options))
