import { describe, expect, it } from "@effect/vitest"
import * as Replies from "../../src/protocol/Replies.js"

const runSummaries = "runtime.run_summaries"

describe("Replies builders", () => {
  const watermarks = [{ topic: runSummaries, watermark: 3 }]

  it("builds snake_case replies and pushes", () => {
    expect(Replies.joinReply({ subscriptionId: "s", allowedTopics: [runSummaries], currentWatermarks: [] }))
      .toStrictEqual({ subscription_id: "s", allowed_topics: [runSummaries], current_watermarks: [] })
    expect(Replies.subscribeReply({ subscriptionId: "s", topics: [runSummaries], currentWatermarks: watermarks }))
      .toStrictEqual({ subscription_id: "s", topics: [runSummaries], current_watermarks: watermarks })
    expect(Replies.unsubscribeReply({ subscriptionId: "s", topics: [] })).toStrictEqual({
      subscription_id: "s",
      topics: []
    })
    // Stray properties of the caller's objects stay out of the JSON.
    const withExtra = [{ topic: runSummaries, watermark: 3, head: 10 }]
    expect(Replies.heartbeatReply({ subscriptionId: "s", watermarks: withExtra })).toStrictEqual({
      subscription_id: "s",
      watermarks
    })
    expect(Replies.heartbeatPush({ watermarks })).toStrictEqual({ watermarks })
  })

  it("builds error payloads with only the fields given", () => {
    expect(Replies.errorPayload({ code: "internal", message: "oops", retryAfterMs: undefined })).toStrictEqual({
      code: "internal",
      message: "oops"
    })
    expect(Replies.errorPayload({
      code: "forbidden_topic",
      message: "no",
      forbiddenTopics: ["a.b"],
      requestId: "r1"
    })).toStrictEqual({ code: "forbidden_topic", message: "no", forbidden_topics: ["a.b"], request_id: "r1" })
    expect(Replies.errorPayload({ code: "rate_limited", message: "slow down", retryAfterMs: 500 }))
      .toStrictEqual({ code: "rate_limited", message: "slow down", retry_after_ms: 500 })
    expect(Replies.errorPayload({
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
