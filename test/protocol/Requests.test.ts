import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import * as fc from "fast-check"
import * as Requests from "../../src/protocol/Requests.js"
import * as SyncChannel from "../../src/protocol/SyncChannel.js"

const runSummaries = "runtime.run_summaries"
const runSummariesEnum = "SYNC_TOPIC_RUNTIME_RUN_SUMMARIES"
const notifications = "runtime.notifications"
const workerEvents = "runtime.codex_worker_events"

const subscribe = (payload: unknown) => Either.getOrThrow(Requests.decodeSubscribe(payload))

const subscribeError = (payload: unknown) => Either.getOrThrow(Either.flip(Requests.decodeSubscribe(payload)))

describe("Requests.decodeSubscribe", () => {
  it("decodes snake_case into camelCase with defaults", () => {
    expect(subscribe({ topics: [runSummaries] })).toStrictEqual({
      topics: [runSummaries],
      resumeAfter: [],
      replayBatchSize: SyncChannel.defaultReplayBatchSize,
      filters: {}
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
      requestId: "r1",
      filters: {}
    })
  })

  it("reads resume points with their epochs and filters by keys or prefix, refusing them for other topics", () => {
    expect(subscribe({
      topics: [runSummaries, notifications],
      resume_after: [{ topic: notifications, watermark: 7, epoch: "e1" }],
      filters: { [runSummaries]: { doc_key_prefix: "org_a:" }, [notifications]: { doc_keys: ["n1", "n2"] } }
    })).toMatchObject({
      resumeAfter: [{ topic: notifications, watermark: 7, epoch: "e1" }],
      filters: { [runSummaries]: { docKeyPrefix: "org_a:" }, [notifications]: { docKeys: ["n1", "n2"] } }
    })
    for (
      const filters of [
        { [workerEvents]: { doc_keys: ["a"] } },
        { [runSummaries]: { doc_keys: [] } },
        { [runSummaries]: { doc_key_prefix: "" } },
        { [runSummaries]: { doc_keys: Array.from({ length: 1001 }, (_, i) => `k${i}`) } },
        { [runSummaries]: { nope: 1 } }
      ]
    ) {
      expect(Either.isLeft(Requests.decodeSubscribe({ topics: [runSummaries], filters }))).toBe(true)
    }
  })

  it("treats null optional fields as absent", () => {
    expect(subscribe({ topics: [runSummaries], resume_after: null, replay_batch_size: null, request_id: null }))
      .toStrictEqual({ topics: [runSummaries], resumeAfter: [], replayBatchSize: 200, filters: {} })
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

describe("Requests unsubscribe and heartbeat", () => {
  it("decodes sync:unsubscribe", () => {
    expect(Either.getOrThrow(Requests.decodeUnsubscribe({ topics: [runSummaries, runSummaries] }))).toStrictEqual({
      topics: [runSummaries]
    })
    const error = Either.getOrThrow(Either.flip(Requests.decodeUnsubscribe({ topics: [] })))
    expect(error.event).toBe("sync:unsubscribe")
  })

  it("decodes sync:heartbeat from any object, ignoring extra keys", () => {
    expect(Either.getOrThrow(Requests.decodeHeartbeat({}))).toStrictEqual({})
    expect(Either.getOrThrow(Requests.decodeHeartbeat({ anything: [1] }))).toStrictEqual({})
    for (const payload of [null, [], "x"]) {
      expect(Either.isLeft(Requests.decodeHeartbeat(payload))).toBe(true)
    }
  })
})
