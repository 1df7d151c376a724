import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import * as UpdateBatch from "../../src/protocol/UpdateBatch.js"

const runSummaries = "runtime.run_summaries"
const runSummariesEnum = "SYNC_TOPIC_RUNTIME_RUN_SUMMARIES"

const utf8 = (text: string) => new TextEncoder().encode(text).length

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
  hydrationRequired: fc.boolean(),
  deleted: fc.boolean()
})

const serialize = ({ payload, ...rest }: UpdateBatch.Update): UpdateBatch.SerializedUpdate => ({
  ...rest,
  payloadJson: JSON.stringify(payload)
})

const deserialize = ({ payloadJson, ...rest }: UpdateBatch.SerializedUpdate): UpdateBatch.Update => ({
  ...rest,
  payload: payloadJson === null ? null : JSON.parse(payloadJson)
})

const watermarkArb = fc.array(fc.record({ topic: fc.string(), watermark: fc.maxSafeNat() }), { maxLength: 3 })

describe("UpdateBatch encoding", () => {
  it("encodeUpdateBatchJson is the JSON text of updateBatch", () => {
    const batch = fc.record({
      updates: fc.array(updateArb, { maxLength: 10 }),
      replayComplete: fc.boolean(),
      headWatermarks: watermarkArb,
      watermarks: watermarkArb
    })
    fc.assert(fc.property(batch, fc.boolean(), (options, mixed) => {
      const expected = JSON.stringify(UpdateBatch.updateBatch(options))
      // Either all payloads pre-serialized, or a mix of values and serialized payloads.
      const updates = options.updates.map((update, i) => (mixed && i % 2 === 0 ? update : serialize(update)))
      const text = UpdateBatch.encodeUpdateBatchJson({ ...options, updates })
      expect(JSON.parse(text)).toStrictEqual(JSON.parse(expected))
      expect(text).toBe(expected)
    }))
  })

  it("writes the SPEC field names", () => {
    const update: UpdateBatch.SerializedUpdate = {
      topic: runSummaries,
      docKey: "run:1",
      docVersion: 2,
      payloadJson: "{\"status\":\"done\"}",
      payloadHash: null,
      watermark: 5,
      hydrationRequired: false,
      deleted: false
    }
    const text = UpdateBatch.encodeUpdateBatchJson({
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
          hydration_required: false,
          deleted: false
        },
        {
          topic: runSummaries,
          doc_key: "run:1",
          doc_version: 2,
          payload: null,
          payload_hash: null,
          watermark: 5,
          hydration_required: true,
          deleted: false
        }
      ],
      replay_complete: true,
      head_watermarks: [{ topic: runSummaries, watermark: 9 }],
      watermarks: [{ topic: runSummaries, watermark: 5 }]
    })
  })

  it("utf8ByteLength agrees with TextEncoder", () => {
    fc.assert(fc.property(fc.string({ unit: "binary" }), (text) => {
      expect(UpdateBatch.utf8ByteLength(text)).toBe(utf8(text))
    }))
    expect(UpdateBatch.utf8ByteLength("\ud800x\udc00")).toBe(utf8("\ud800x\udc00"))
  })
})

// Bytes of a batch as `SplitOptions` counts them: the `updates` array's JSON text.
const batchBytes = (batch: ReadonlyArray<UpdateBatch.SerializedUpdate>) =>
  utf8(JSON.stringify(
    UpdateBatch.updateBatch({
      updates: batch.map(deserialize),
      replayComplete: false,
      headWatermarks: [],
      watermarks: []
    }).updates
  ))

describe("UpdateBatch.splitUpdates", () => {
  it("keeps every update once and in order, within the limits, hydrating oversize payloads", () => {
    const rows = fc.array(updateArb.map(serialize), { maxLength: 40 })
    const limits = fc.record({
      maxUpdates: fc.integer({ min: 1, max: 8 }),
      maxBatchBytes: fc.integer({ min: 100, max: 3000 }),
      maxPayloadBytes: fc.integer({ min: 0, max: 400 })
    })
    fc.assert(fc.property(rows, limits, (rows, limits) => {
      const batches = UpdateBatch.splitUpdates(rows, limits)
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
    const row = (payloadJson: string): UpdateBatch.SerializedUpdate => ({
      topic: "a.b",
      docKey: "k",
      docVersion: 1,
      payloadJson,
      payloadHash: "sha256:00",
      watermark: 1,
      hydrationRequired: false,
      deleted: false
    })
    const atLimit = JSON.stringify("é".repeat(4)) // 2 quotes + 4 × 2 bytes = 10 bytes, 6 code units
    const overLimit = JSON.stringify("é".repeat(4) + "x")
    const [batch] = UpdateBatch.splitUpdates([row(atLimit), row(overLimit)], { maxUpdates: 10, maxPayloadBytes: 10 })
    expect(batch).toStrictEqual([row(atLimit), { ...row(overLimit), payloadJson: null, hydrationRequired: true }])
  })

  it("applies the SPEC defaults: 256 KiB per payload, 2 MiB per batch", () => {
    const row = (i: number, bytes: number): UpdateBatch.SerializedUpdate => ({
      topic: "a.b",
      docKey: `k${i}`,
      docVersion: 1,
      payloadJson: JSON.stringify("x".repeat(bytes - 2)),
      payloadHash: null,
      watermark: i,
      hydrationRequired: false,
      deleted: false
    })
    const big = UpdateBatch.splitUpdates([row(1, 256 * 1024 + 1), row(2, 256 * 1024)], { maxUpdates: 200 })
    expect(big).toHaveLength(1)
    expect(big[0]!.map((update) => update.hydrationRequired)).toStrictEqual([true, false])

    const rows = Array.from({ length: 25 }, (_, i) => row(i, 200 * 1024))
    const batches = UpdateBatch.splitUpdates(rows, { maxUpdates: 200 })
    expect(batches.map((batch) => batch.length)).toStrictEqual([10, 10, 5])
    for (const batch of batches) expect(batchBytes(batch)).toBeLessThanOrEqual(2 * 1024 * 1024)
  })

  it("returns no batches for no rows", () => {
    expect(UpdateBatch.splitUpdates([], { maxUpdates: 10 })).toStrictEqual([])
  })
})
