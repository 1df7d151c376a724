import { describe, expect, it } from "@effect/vitest"
import { Either, Option } from "effect"
import * as fc from "fast-check"
import * as SyncChannel from "../../src/protocol/SyncChannel.js"
import * as TopicCatalog from "../../src/protocol/TopicCatalog.js"

const runSummaries = "runtime.run_summaries"
const runSummariesEnum = "SYNC_TOPIC_RUNTIME_RUN_SUMMARIES"
const notifications = "runtime.notifications"
const workerEvents = "runtime.codex_worker_events"

const subscribe = (payload: unknown) => Either.getOrThrow(SyncChannel.decodeSubscribe(payload))

const subscribeError = (payload: unknown) => Either.getOrThrow(Either.flip(SyncChannel.decodeSubscribe(payload)))

const utf8 = (text: string) => new TextEncoder().encode(text).length

describe("SyncChannel.decodeSubscribe", () => {
  it("decodes snake_case into camelCase with defaults", () => {
    expect(subscribe({ topics: [runSummaries] })).toStrictEqual({
      topics: [runSummaries],
      resumeAfter: [],
      replayBatchSize: SyncChannel.defaultReplayBatchSize
    })
    expect(subscribe({
      topics: [runSummaries, notifications],
      resume_after: [{ topic: notifications, watermark: 7 }],
      replay_batch_size: 50,
      request_id: "r1",
      extra: true
    })).toStrictEqual({
      topics: [runSummaries, notifications],
      resumeAfter: [{ topic: notifications, watermark: 7 }],
      replayBatchSize: 50,
      requestId: "r1"
    })
  })

  it("treats null optional fields as absent", () => {
    expect(subscribe({ topics: [runSummaries], resume_after: null, replay_batch_size: null, request_id: null }))
      .toStrictEqual({ topics: [runSummaries], resumeAfter: [], replayBatchSize: 200 })
  })

  it("de-duplicates topics keeping the first occurrence", () => {
    expect(subscribe({ topics: [notifications, runSummaries, notifications, runSummariesEnum, runSummaries] }).topics)
      .toStrictEqual([notifications, runSummaries, runSummariesEnum])
    const names = fc.array(fc.constantFrom("a.b", "c.d", "e.f", "g.h"), { minLength: 1, maxLength: 64 })
    fc.assert(fc.property(names, (t) => {
      const topics = subscribe({ topics: t }).topics
      expect(new Set(topics).size).toBe(topics.length)
      expect(topics).toStrictEqual(t.filter((name, i) => t.indexOf(name) === i))
    }))
  })

  it("reads resume_after as a list or as a map, to the same value", () => {
    const asList = subscribe({
      topics: [runSummaries, notifications],
      resume_after: [{ topic: runSummaries, watermark: 0 }, { topic: notifications, watermark: 2 ** 53 - 1 }]
    })
    const asMap = subscribe({
      topics: [runSummaries, notifications],
      resume_after: { [runSummaries]: 0, [notifications]: 2 ** 53 - 1 }
    })
    expect(asMap).toStrictEqual(asList)

    const cursors = fc.uniqueArray(
      fc.tuple(fc.stringMatching(/^[a-z]{1,8}\.[a-z]{1,8}$/), fc.maxSafeNat())
        .map(([topic, watermark]) => ({ topic, watermark })),
      { selector: (entry) => entry.topic, minLength: 1, maxLength: 20 }
    )
    fc.assert(fc.property(cursors, (entries) => {
      const topics = entries.map((entry) => entry.topic)
      const map = Object.fromEntries(entries.map((entry) => [entry.topic, entry.watermark]))
      const fromList = subscribe({ topics, resume_after: entries })
      const fromMap = subscribe({ topics, resume_after: map })
      expect(fromList.resumeAfter).toStrictEqual(entries)
      expect(fromMap).toStrictEqual(fromList)
    }))
  })

  it("caps replay_batch_size at 1000 instead of refusing it", () => {
    expect(subscribe({ topics: [runSummaries], replay_batch_size: 1 }).replayBatchSize).toBe(1)
    expect(subscribe({ topics: [runSummaries], replay_batch_size: 1000 }).replayBatchSize).toBe(1000)
    expect(subscribe({ topics: [runSummaries], replay_batch_size: 1001 }).replayBatchSize).toBe(1000)
    fc.assert(fc.property(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), (size) => {
      const decoded = subscribe({ topics: [runSummaries], replay_batch_size: size }).replayBatchSize
      expect(decoded).toBe(Math.min(size, SyncChannel.maxReplayBatchSize))
    }))
    for (const size of [0, -1, 1.5, "10", 2 ** 53, Number.NaN]) {
      expect(subscribeError({ topics: [runSummaries], replay_batch_size: size }).message).toMatch(/^replay_batch_size/)
    }
  })

  it("refuses malformed requests with a message pointing at the mistake", () => {
    const cursor = (watermark: unknown) => ({
      topics: [runSummaries],
      resume_after: [{ topic: runSummaries, watermark }]
    })
    const cases: Array<[unknown, RegExp]> = [
      [{}, /^topics: is missing/],
      [{ topics: [] }, /^topics/],
      [{ topics: "runtime.run_summaries" }, /^topics/],
      [{ topics: [runSummaries, 3] }, /^topics\[1\]: Expected string/],
      [{ topics: Array.from({ length: 65 }, (_, i) => `a.t${i}`) }, /^topics/],
      [cursor(-1), /^resume_after\[0\]\.watermark/],
      [cursor(1.5), /^resume_after\[0\]\.watermark/],
      [cursor(2 ** 53), /^resume_after\[0\]\.watermark/],
      [cursor("5"), /^resume_after\[0\]\.watermark/],
      [
        { topics: [runSummaries], resume_after: { [runSummaries]: -3 } },
        /^resume_after\["runtime\.run_summaries"\]: Expected a non-negative number/
      ],
      [{ topics: [runSummaries], resume_after: "x" }, /^resume_after/],
      [
        {
          topics: [runSummaries],
          resume_after: [{ topic: runSummaries, watermark: 1 }, { topic: runSummaries, watermark: 2 }]
        },
        /^resume_after\[1\]\.topic: topic runtime\.run_summaries is given twice/
      ],
      [
        { topics: [runSummaries], resume_after: { [notifications]: 1 } },
        /^resume_after: topic runtime\.notifications is not in topics/
      ],
      // Cursors must be spelled as in `topics`; the other form of the same topic is not enough.
      [{ topics: [runSummaries], resume_after: { [runSummariesEnum]: 1 } }, /not in topics/],
      [{ topics: [runSummaries], request_id: 5 }, /^request_id/]
    ]
    for (const [payload, message] of cases) {
      const error = subscribeError(payload)
      expect(error._tag).toBe("MalformedRequest")
      expect(error.event).toBe("sync:subscribe")
      expect(error.message).toMatch(message)
    }
  })

  it("refuses payloads that are not objects", () => {
    for (const payload of [null, [], "topics", 3, undefined]) {
      expect(subscribeError(payload).message).toBe("payload must be a JSON object")
    }
  })

  it("echoes a readable request_id and bounds the message length", () => {
    const error = subscribeError({ topics: ["x".repeat(10_000), 1], request_id: "r9" })
    expect(error.requestId).toBe("r9")
    expect(error.message.length).toBeLessThanOrEqual(300)
    expect(subscribeError({ topics: [] }).requestId).toBeUndefined()
  })
})

describe("SyncChannel unsubscribe and heartbeat", () => {
  it("decodes sync:unsubscribe", () => {
    expect(Either.getOrThrow(SyncChannel.decodeUnsubscribe({ topics: [runSummaries, runSummaries] }))).toStrictEqual({
      topics: [runSummaries]
    })
    const error = Either.getOrThrow(Either.flip(SyncChannel.decodeUnsubscribe({ topics: [] })))
    expect(error.event).toBe("sync:unsubscribe")
  })

  it("decodes sync:heartbeat from any object, ignoring extra keys", () => {
    expect(Either.getOrThrow(SyncChannel.decodeHeartbeat({}))).toStrictEqual({})
    expect(Either.getOrThrow(SyncChannel.decodeHeartbeat({ anything: [1] }))).toStrictEqual({})
    for (const payload of [null, [], "x"]) {
      expect(Either.isLeft(SyncChannel.decodeHeartbeat(payload))).toBe(true)
    }
  })
})

describe("SyncChannel.resolveSubscribe", () => {
  const catalog = TopicCatalog.v1

  it("keeps the allowed topics under the name the client used and lists the rest as forbidden", () => {
    const request = subscribe({
      topics: [runSummariesEnum, "runtime.unknown", notifications, workerEvents, runSummaries],
      resume_after: { [runSummariesEnum]: 9, [runSummaries]: 4 }
    })
    // Scopes in either form; a wildcard is not a scope and an unknown scope grants nothing.
    const scopes = ["*", runSummaries, "SYNC_TOPIC_RUNTIME_NOTIFICATIONS"]
    const resolved = SyncChannel.resolveSubscribe(request, catalog, scopes)
    expect(resolved.forbidden).toStrictEqual(["runtime.unknown", workerEvents])
    expect(resolved.topics.map((t) => [t.topic.wireName, t.requestedAs, t.resumeAfter])).toStrictEqual([
      // Named in both forms: kept once, under the first name, with the lower cursor (I1).
      [runSummaries, runSummariesEnum, Option.some(4)],
      [notifications, notifications, Option.none()]
    ])
  })

  it("forbids everything without scopes", () => {
    const resolved = SyncChannel.resolveSubscribe({ topics: [runSummaries, "nope"] }, catalog, [])
    expect(resolved).toStrictEqual({ topics: [], forbidden: [runSummaries, "nope"] })
  })
})

describe("SyncChannel reply builders", () => {
  const watermarks = [{ topic: runSummaries, watermark: 3 }]

  it("builds snake_case replies and pushes", () => {
    expect(SyncChannel.joinReply({ subscriptionId: "s", allowedTopics: [runSummaries], currentWatermarks: [] }))
      .toStrictEqual({ subscription_id: "s", allowed_topics: [runSummaries], current_watermarks: [] })
    expect(SyncChannel.subscribeReply({ subscriptionId: "s", topics: [runSummaries], currentWatermarks: watermarks }))
      .toStrictEqual({ subscription_id: "s", topics: [runSummaries], current_watermarks: watermarks })
    expect(SyncChannel.unsubscribeReply({ subscriptionId: "s", topics: [] })).toStrictEqual({
      subscription_id: "s",
      topics: []
    })
    // Stray properties of the caller's objects stay out of the JSON.
    const withExtra = [{ topic: runSummaries, watermark: 3, head: 10 }]
    expect(SyncChannel.heartbeatReply({ subscriptionId: "s", watermarks: withExtra })).toStrictEqual({
      subscription_id: "s",
      watermarks
    })
    expect(SyncChannel.heartbeatPush({ watermarks })).toStrictEqual({ watermarks })
  })

  it("builds error payloads with only the fields given", () => {
    expect(SyncChannel.errorPayload({ code: "internal", message: "oops", retryAfterMs: undefined })).toStrictEqual({
      code: "internal",
      message: "oops"
    })
    expect(SyncChannel.errorPayload({
      code: "forbidden_topic",
      message: "no",
      forbiddenTopics: ["a.b"],
      requestId: "r1"
    })).toStrictEqual({ code: "forbidden_topic", message: "no", forbidden_topics: ["a.b"], request_id: "r1" })
    expect(SyncChannel.errorPayload({ code: "rate_limited", message: "slow down", retryAfterMs: 500 }))
      .toStrictEqual({ code: "rate_limited", message: "slow down", retry_after_ms: 500 })
    expect(SyncChannel.errorPayload({
      code: "stale_cursor",
      message: "stale",
      staleTopics: [{ topic: runSummaries, resumeAfter: 3, retentionFloor: 10 }]
    })).toStrictEqual({
      code: "stale_cursor",
      message: "stale",
      full_resync_required: true,
      stale_topics: [{ topic: runSummaries, resume_after: 3, retention_floor: 10 }]
    })
  })
})

const jsonPayload = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.string({ unit: "binary", maxLength: 200 }).map((text) => ({ text }))
)

const updateArb = fc.record({
  topic: fc.constantFrom(runSummaries, runSummariesEnum, "a.b"),
  docKey: fc.string({ unit: "binary", maxLength: 20 }),
  docVersion: fc.maxSafeNat(),
  payload: jsonPayload,
  payloadHash: fc.option(fc.constant("sha256:" + "ab".repeat(32)), { nil: null }),
  watermark: fc.maxSafeNat(),
  hydrationRequired: fc.boolean()
})

const serialize = ({ payload, ...rest }: SyncChannel.Update): SyncChannel.SerializedUpdate => ({
  ...rest,
  payloadJson: JSON.stringify(payload)
})

const deserialize = ({ payloadJson, ...rest }: SyncChannel.SerializedUpdate): SyncChannel.Update => ({
  ...rest,
  payload: payloadJson === null ? null : JSON.parse(payloadJson)
})

const watermarkArb = fc.array(fc.record({ topic: fc.string(), watermark: fc.maxSafeNat() }), { maxLength: 3 })

describe("SyncChannel update batches", () => {
  it("encodeUpdateBatchJson is the JSON text of updateBatch", () => {
    const batch = fc.record({
      updates: fc.array(updateArb, { maxLength: 10 }),
      replayComplete: fc.boolean(),
      headWatermarks: watermarkArb,
      watermarks: watermarkArb
    })
    fc.assert(fc.property(batch, fc.boolean(), (options, mixed) => {
      const expected = JSON.stringify(SyncChannel.updateBatch(options))
      // Either all payloads pre-serialized, or a mix of values and serialized payloads.
      const updates = options.updates.map((update, i) => (mixed && i % 2 === 0 ? update : serialize(update)))
      const text = SyncChannel.encodeUpdateBatchJson({ ...options, updates })
      expect(JSON.parse(text)).toStrictEqual(JSON.parse(expected))
      expect(text).toBe(expected)
    }))
  })

  it("writes the SPEC field names", () => {
    const update: SyncChannel.SerializedUpdate = {
      topic: runSummaries,
      docKey: "run:1",
      docVersion: 2,
      payloadJson: "{\"status\":\"done\"}",
      payloadHash: null,
      watermark: 5,
      hydrationRequired: false
    }
    const text = SyncChannel.encodeUpdateBatchJson({
      updates: [update, { ...update, payloadJson: null, hydrationRequired: true }],
      replayComplete: true,
      headWatermarks: [{ topic: runSummaries, watermark: 9 }],
      watermarks: [{ topic: runSummaries, watermark: 5 }]
    })
    expect(JSON.parse(text)).toStrictEqual({
      updates: [
        {
          topic: runSummaries,
          doc_key: "run:1",
          doc_version: 2,
          payload: { status: "done" },
          payload_hash: null,
          watermark: 5,
          hydration_required: false
        },
        {
          topic: runSummaries,
          doc_key: "run:1",
          doc_version: 2,
          payload: null,
          payload_hash: null,
          watermark: 5,
          hydration_required: true
        }
      ],
      replay_complete: true,
      head_watermarks: [{ topic: runSummaries, watermark: 9 }],
      watermarks: [{ topic: runSummaries, watermark: 5 }]
    })
  })

  it("utf8ByteLength agrees with TextEncoder", () => {
    fc.assert(fc.property(fc.string({ unit: "binary" }), (text) => {
      expect(SyncChannel.utf8ByteLength(text)).toBe(utf8(text))
    }))
    expect(SyncChannel.utf8ByteLength("\ud800x\udc00")).toBe(utf8("\ud800x\udc00"))
  })
})

// Bytes of a batch as `SplitOptions` counts them: the `updates` array's JSON text.
const batchBytes = (batch: ReadonlyArray<SyncChannel.SerializedUpdate>) =>
  utf8(JSON.stringify(SyncChannel.updateBatch({
    updates: batch.map(deserialize),
    replayComplete: false,
    headWatermarks: [],
    watermarks: []
  }).updates))

describe("SyncChannel.splitUpdates", () => {
  it("keeps every update once and in order, within the limits, hydrating oversize payloads", () => {
    const rows = fc.array(updateArb.map(serialize), { maxLength: 40 })
    const limits = fc.record({
      maxUpdates: fc.integer({ min: 1, max: 8 }),
      maxBatchBytes: fc.integer({ min: 100, max: 3000 }),
      maxPayloadBytes: fc.integer({ min: 0, max: 400 })
    })
    fc.assert(fc.property(rows, limits, (rows, limits) => {
      const batches = SyncChannel.splitUpdates(rows, limits)
      const flat = batches.flat()
      expect(flat).toHaveLength(rows.length)
      for (const [i, row] of rows.entries()) {
        const out = flat[i]!
        const oversize = row.payloadJson !== null && utf8(row.payloadJson) > limits.maxPayloadBytes
        expect(out).toStrictEqual(oversize ? { ...row, payloadJson: null, hydrationRequired: true } : row)
      }
      for (const [i, batch] of batches.entries()) {
        expect(batch.length).toBeGreaterThan(0)
        expect(batch.length).toBeLessThanOrEqual(limits.maxUpdates)
        if (batch.length > 1) expect(batchBytes(batch)).toBeLessThanOrEqual(limits.maxBatchBytes)
        // Greedy: a batch is closed only when the next update would not fit into it.
        const next = batches[i + 1]
        if (next !== undefined) {
          const full = batch.length === limits.maxUpdates || batchBytes([...batch, next[0]!]) > limits.maxBatchBytes
          expect(full).toBe(true)
        }
      }
    }))
  })

  it("hydrates a payload one byte over the limit, counting UTF-8 bytes", () => {
    const row = (payloadJson: string): SyncChannel.SerializedUpdate => ({
      topic: "a.b",
      docKey: "k",
      docVersion: 1,
      payloadJson,
      payloadHash: "sha256:00",
      watermark: 1,
      hydrationRequired: false
    })
    const atLimit = JSON.stringify("é".repeat(4)) // 2 quotes + 4 × 2 bytes = 10 bytes, 6 code units
    const overLimit = JSON.stringify("é".repeat(4) + "x")
    const [batch] = SyncChannel.splitUpdates([row(atLimit), row(overLimit)], { maxUpdates: 10, maxPayloadBytes: 10 })
    expect(batch).toStrictEqual([row(atLimit), { ...row(overLimit), payloadJson: null, hydrationRequired: true }])
  })

  it("applies the SPEC defaults: 256 KiB per payload, 2 MiB per batch", () => {
    const row = (i: number, bytes: number): SyncChannel.SerializedUpdate => ({
      topic: "a.b",
      docKey: `k${i}`,
      docVersion: 1,
      payloadJson: JSON.stringify("x".repeat(bytes - 2)),
      payloadHash: null,
      watermark: i,
      hydrationRequired: false
    })
    const big = SyncChannel.splitUpdates([row(1, 256 * 1024 + 1), row(2, 256 * 1024)], { maxUpdates: 200 })
    expect(big).toHaveLength(1)
    expect(big[0]!.map((update) => update.hydrationRequired)).toStrictEqual([true, false])

    const rows = Array.from({ length: 25 }, (_, i) => row(i, 200 * 1024))
    const batches = SyncChannel.splitUpdates(rows, { maxUpdates: 200 })
    expect(batches.map((batch) => batch.length)).toStrictEqual([10, 10, 5])
    for (const batch of batches) expect(batchBytes(batch)).toBeLessThanOrEqual(2 * 1024 * 1024)
  })

  it("returns no batches for no rows", () => {
    expect(SyncChannel.splitUpdates([], { maxUpdates: 10 })).toStrictEqual([])
  })
})
