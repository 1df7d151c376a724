import { create, createFileRegistry, type DescEnum, setExtension } from "@bufbuild/protobuf"
import { EnumValueOptionsSchema, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option } from "effect"
import {
  file_openagents_sync_v1_topics,
  retention_class,
  RetentionClass,
  SyncTopic,
  wire_name
} from "../../src/protocol/gen/openagents/sync/v1/topics_pb.js"
import * as TopicCatalog from "../../src/protocol/TopicCatalog.js"

const hour = 3_600_000
const day = 24 * hour

const v1Topics = [
  ["runtime.run_summaries", "SYNC_TOPIC_RUNTIME_RUN_SUMMARIES", SyncTopic.RUNTIME_RUN_SUMMARIES, 7 * day],
  [
    "runtime.codex_worker_summaries",
    "SYNC_TOPIC_RUNTIME_CODEX_WORKER_SUMMARIES",
    SyncTopic.RUNTIME_CODEX_WORKER_SUMMARIES,
    3 * day
  ],
  ["runtime.codex_worker_events", "SYNC_TOPIC_RUNTIME_CODEX_WORKER_EVENTS", SyncTopic.RUNTIME_CODEX_WORKER_EVENTS, day],
  ["runtime.notifications", "SYNC_TOPIC_RUNTIME_NOTIFICATIONS", SyncTopic.RUNTIME_NOTIFICATIONS, 12 * hour]
] as const

const make = (options: TopicCatalog.Options) => Either.getOrThrow(TopicCatalog.make(options))

const failure = (options: TopicCatalog.Options) => Either.flip(TopicCatalog.make(options)).pipe(Either.getOrThrow)

// A runtime-owned topic enum, built the way a runtime's own generated code would describe it.
const runtimeEnum = (values: ReadonlyArray<{ name: string; number: number; wireName?: string }>): DescEnum => {
  const file = create(FileDescriptorProtoSchema, {
    name: "acme/topics.proto",
    package: "acme.v1",
    syntax: "proto3",
    dependency: ["openagents/sync/v1/topics.proto"],
    enumType: [{
      name: "AcmeTopic",
      value: values.map(({ name, number, wireName }) => {
        const options = create(EnumValueOptionsSchema)
        if (wireName !== undefined) {
          setExtension(options, wire_name, wireName)
          setExtension(options, retention_class, RetentionClass.NOTIFICATIONS)
        }
        return { name, number, options }
      })
    }]
  })
  const registry = createFileRegistry(
    file,
    (name) => name === file_openagents_sync_v1_topics.proto.name ? file_openagents_sync_v1_topics : undefined
  )
  return registry.getEnum("acme.v1.AcmeTopic")!
}

describe("TopicCatalog v1", () => {
  it("holds exactly the four topics of protocol.md §4, read from the descriptor", () => {
    expect(TopicCatalog.v1.topics.map((topic) => [topic.wireName, topic.enumName, topic.enumValue, topic.retentionMs]))
      .toStrictEqual(v1Topics.map(([wire, name, value, ms]) => [wire, name, Option.some(value), ms]))
  })

  it.each(v1Topics)("%s round-trips between its two name forms", (wireName, enumName) => {
    const byWire = Option.getOrThrow(TopicCatalog.v1.byWireName(wireName))
    const byEnum = Option.getOrThrow(TopicCatalog.v1.byEnumName(enumName))
    expect(byWire).toBe(byEnum)
    expect(byWire.enumName).toBe(enumName)
    expect(byEnum.wireName).toBe(wireName)
    expect(TopicCatalog.resolveTopic(wireName)).toStrictEqual(Either.right(byWire))
    expect(TopicCatalog.resolveTopic(enumName)).toStrictEqual(Either.right(byWire))
    expect(TopicCatalog.nameIn(byWire, TopicCatalog.nameForm(enumName))).toBe(enumName)
    expect(TopicCatalog.nameIn(byWire, TopicCatalog.nameForm(wireName))).toBe(wireName)
  })

  it("assigns each topic its retention class", () => {
    const classOf = (name: string) => Option.getOrThrow(TopicCatalog.v1.get(name)).retentionClass
    expect(classOf("runtime.run_summaries")).toBe(RetentionClass.RUN_SUMMARIES)
    expect(classOf("runtime.codex_worker_summaries")).toBe(RetentionClass.WORKER_SUMMARIES)
    expect(classOf("runtime.codex_worker_events")).toBe(RetentionClass.HIGH_CHURN_EVENTS)
    expect(classOf("runtime.notifications")).toBe(RetentionClass.NOTIFICATIONS)
    expect(TopicCatalog.v1.byRetentionClass(RetentionClass.NOTIFICATIONS).map((topic) => topic.wireName))
      .toStrictEqual(["runtime.notifications"])
  })

  it("gives class durations of 7d, 3d, 1d, 12h, and 1d for unknown classes", () => {
    const ms = TopicCatalog.v1.classRetentionMs
    expect(ms(RetentionClass.RUN_SUMMARIES)).toBe(7 * day)
    expect(ms(RetentionClass.WORKER_SUMMARIES)).toBe(3 * day)
    expect(ms(RetentionClass.HIGH_CHURN_EVENTS)).toBe(day)
    expect(ms(RetentionClass.NOTIFICATIONS)).toBe(12 * hour)
    expect(ms(RetentionClass.UNSPECIFIED)).toBe(day)
    expect(ms(42 as RetentionClass)).toBe(day)
  })

  it.each([
    "runtime.unknown",
    "",
    "SYNC_TOPIC_UNSPECIFIED",
    "RUNTIME_RUN_SUMMARIES",
    "Runtime.Run_Summaries",
    "runtime_run_summaries",
    "sync_topic_runtime_run_summaries",
    " runtime.run_summaries"
  ])("rejects %j", (name) => {
    expect(TopicCatalog.v1.get(name)).toStrictEqual(Option.none())
    expect(TopicCatalog.resolveTopic(name)).toStrictEqual(Either.left(new TopicCatalog.UnknownTopic({ topic: name })))
  })
})

describe("TopicCatalog.make", () => {
  it("adds topics declared in code, with a default enum name and class", () => {
    const catalog = make({
      topics: [
        { wireName: "runtime.billing_events", retentionClass: RetentionClass.HIGH_CHURN_EVENTS },
        { wireName: "acme.audit_log", enumName: "ACME_AUDIT_LOG", retentionMs: 30 * day },
        { wireName: "acme.misc" }
      ]
    })
    expect(catalog.topics).toHaveLength(7)
    const billing = Option.getOrThrow(catalog.get("SYNC_TOPIC_RUNTIME_BILLING_EVENTS"))
    expect(billing).toStrictEqual({
      wireName: "runtime.billing_events",
      enumName: "SYNC_TOPIC_RUNTIME_BILLING_EVENTS",
      enumValue: Option.none(),
      retentionClass: RetentionClass.HIGH_CHURN_EVENTS,
      retentionMs: day
    })
    expect(Option.getOrThrow(catalog.get("ACME_AUDIT_LOG")).retentionMs).toBe(30 * day)
    expect(Option.getOrThrow(catalog.get("acme.misc")).retentionClass).toBe(RetentionClass.UNSPECIFIED)
    expect(Option.getOrThrow(catalog.get("acme.misc")).retentionMs).toBe(day)
    expect(TopicCatalog.v1.get("acme.misc")).toStrictEqual(Option.none())
  })

  it("adds topics from a runtime enum carrying the wire_name and retention_class options", () => {
    const catalog = make({
      enums: [runtimeEnum([{ name: "ACME_TOPIC_UNSPECIFIED", number: 0 }, {
        name: "ACME_TOPIC_JOBS",
        number: 1,
        wireName: "acme.jobs"
      }])]
    })
    const jobs = Option.getOrThrow(catalog.get("ACME_TOPIC_JOBS"))
    expect(jobs.wireName).toBe("acme.jobs")
    expect(jobs.enumValue).toStrictEqual(Option.some(1))
    expect(jobs.retentionClass).toBe(RetentionClass.NOTIFICATIONS)
    expect(jobs.retentionMs).toBe(12 * hour)
  })

  it("applies per-class retention overrides", () => {
    const catalog = make({ retentionMs: { [RetentionClass.NOTIFICATIONS]: hour } })
    expect(catalog.classRetentionMs(RetentionClass.NOTIFICATIONS)).toBe(hour)
    expect(Option.getOrThrow(catalog.get("runtime.notifications")).retentionMs).toBe(hour)
    expect(Option.getOrThrow(catalog.get("runtime.run_summaries")).retentionMs).toBe(7 * day)
  })

  it.each<[string, TopicCatalog.Options, TopicCatalog.TopicCatalogError["reason"]]>([
    ["a v1 wire name", { topics: [{ wireName: "runtime.notifications" }] }, "DuplicateTopic"],
    [
      "a v1 enum name",
      { topics: [{ wireName: "acme.x", enumName: "SYNC_TOPIC_RUNTIME_NOTIFICATIONS" }] },
      "DuplicateTopic"
    ],
    ["colliding default enum names", { topics: [{ wireName: "a.b_c" }, { wireName: "a_b.c" }] }, "DuplicateTopic"],
    ["a name without a dot", { topics: [{ wireName: "audit" }] }, "InvalidWireName"],
    ["an upper-case wire name", { topics: [{ wireName: "Acme.Audit" }] }, "InvalidWireName"],
    ["a bad enum name", { topics: [{ wireName: "acme.audit", enumName: "acme-audit" }] }, "InvalidEnumName"],
    ["a zero retention", { topics: [{ wireName: "acme.audit", retentionMs: 0 }] }, "InvalidRetention"],
    ["a negative class retention", { retentionMs: { [RetentionClass.RUN_SUMMARIES]: -1 } }, "InvalidRetention"],
    ["an enum value without wire_name", {
      enums: [runtimeEnum([{ name: "ACME_TOPIC_UNSPECIFIED", number: 0 }, { name: "ACME_TOPIC_X", number: 1 }])]
    }, "MissingWireName"]
  ])("rejects %s", (_, options, reason) => {
    expect(failure(options).reason).toBe(reason)
  })
})

describe("TopicCatalog tag", () => {
  it.effect("Default provides the v1 catalog", () =>
    Effect.gen(function*() {
      const catalog = yield* TopicCatalog.TopicCatalog
      expect(catalog).toBe(TopicCatalog.v1)
    }).pipe(Effect.provide(TopicCatalog.TopicCatalog.Default)))

  it.effect("layer provides an extended catalog", () =>
    Effect.gen(function*() {
      const catalog = yield* TopicCatalog.TopicCatalog
      expect(Option.isSome(catalog.get("acme.audit"))).toBe(true)
    }).pipe(Effect.provide(TopicCatalog.layer({ topics: [{ wireName: "acme.audit" }] }))))

  it.effect("layer fails with TopicCatalogError on bad definitions", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Effect.provide(TopicCatalog.TopicCatalog, TopicCatalog.layer({ topics: [{ wireName: "bad" }] }))
      )
      expect(error._tag).toBe("TopicCatalogError")
    }))
})
