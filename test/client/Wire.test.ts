import { describe, expect, it } from "@effect/vitest"
import { reconnectDelay } from "../../src/client/Backoff.js"
import { decodeBatch, decodeError, decodeFrame, decodePositions, tokenExpiry } from "../../src/client/Wire.js"
import { encodeUpdateBatchJson } from "../../src/protocol/UpdateBatch.js"

describe("client wire decoding", () => {
  it("reads the batches the server encodes, deletes and epochs included", () => {
    const text = encodeUpdateBatchJson({
      updates: [
        {
          topic: "t",
          docKey: "a",
          docVersion: 2,
          payload: { x: 1 },
          payloadHash: "sha256:00",
          watermark: 7,
          hydrationRequired: false,
          deleted: false
        },
        {
          topic: "t",
          docKey: "b",
          docVersion: 1,
          payload: null,
          payloadHash: null,
          watermark: 8,
          hydrationRequired: true,
          deleted: false
        }
      ],
      replayComplete: true,
      headWatermarks: [{ topic: "t", watermark: 9 }],
      watermarks: [{ topic: "t", watermark: 9 }]
    })
    const batch = decodeBatch(JSON.parse(text))!
    expect(batch.replayComplete).toBe(true)
    expect(batch.through).toEqual([{ topic: "t", watermark: 9, epoch: undefined }])
    expect(batch.updates.map((u) => [u.docKey, u.watermark, u.hydrationRequired, u.deleted])).toEqual([
      ["a", 7, false, false],
      ["b", 8, true, false]
    ])
    const withDelete = decodeBatch({
      updates: [{ topic: "t", doc_key: "a", doc_version: 3, payload: null, watermark: 10, deleted: true }],
      replay_complete: true,
      watermarks: [{ topic: "t", watermark: 10, epoch: "e1" }]
    })!
    expect(withDelete.updates[0]).toMatchObject({ deleted: true, payloadHash: null })
    expect(withDelete.through[0]?.epoch).toBe("e1")
  })

  it("refuses a batch with one malformed update, since skipping it would open a gap", () => {
    expect(decodeBatch({ updates: [{ topic: "t", doc_key: "a", doc_version: 1, watermark: "7" }] })).toBeUndefined()
    expect(decodeBatch({ updates: {} })).toBeUndefined()
  })

  it("reads frames, and nothing that is not a five-element frame", () => {
    expect(decodeFrame("[null,\"1\",\"phoenix\",\"phx_reply\",{}]")).toMatchObject({ ref: "1", topic: "phoenix" })
    expect(decodeFrame("[1,\"1\",\"phoenix\",\"phx_reply\",{}]")).toBeUndefined()
    expect(decodeFrame("[null,\"1\",\"phoenix\",\"phx_reply\"]")).toBeUndefined()
    expect(decodeFrame("{")).toBeUndefined()
  })

  it("reads errors with the fields the client acts on", () => {
    expect(decodeError({
      code: "stale_cursor",
      message: "m",
      full_resync_required: true,
      stale_topics: [{ topic: "t", resume_after: 3, retention_floor: 40 }]
    })).toMatchObject({ code: "stale_cursor", staleTopics: [{ topic: "t", retentionFloor: 40 }] })
    expect(decodeError({ code: "rate_limited", message: "m", retry_after_ms: 1000 }).retryAfterMs).toBe(1000)
    expect(decodeError("nonsense").code).toBe("internal")
  })

  it("takes epochs from the positions or from an epochs list beside them", () => {
    expect(decodePositions([{ topic: "t", watermark: 1 }], [{ topic: "t", epoch: "e9" }])).toEqual([
      { topic: "t", watermark: 1, epoch: "e9" }
    ])
    expect(decodePositions([{ topic: "t", watermark: -1 }])).toEqual([])
  })

  it("reads a JWT's expiry", () => {
    const claims = btoa(JSON.stringify({ exp: 1_900_000_000 })).replace(/=+$/, "")
    expect(tokenExpiry(`h.${claims}.s`)).toBe(1_900_000_000_000)
    expect(tokenExpiry("opaque")).toBeUndefined()
  })
})

describe("reconnect delay", () => {
  it("is uniform below a cap that doubles per attempt, over the server's floor", () => {
    const options = { baseMs: 100, maxMs: 1000 }
    expect(reconnectDelay(0, options, {}, () => 0.999)).toBeLessThanOrEqual(100)
    expect(reconnectDelay(3, options, {}, () => 0.5)).toBe(400)
    expect(reconnectDelay(20, options, {}, () => 0.5)).toBe(500)
    expect(reconnectDelay(0, options, { retryAfterMs: 3000 }, () => 0)).toBe(3000)
    expect(reconnectDelay(0, options, { closeCode: 1013 }, () => 0)).toBeGreaterThan(0)
    const delays = new Set(Array.from({ length: 50 }, () => reconnectDelay(2, options, {}, Math.random)))
    expect(delays.size).toBeGreaterThan(25)
  })
})
