import { describe, expect, it } from "@effect/vitest"
import { Either, Option } from "effect"
import * as Requests from "../../src/protocol/Requests.js"
import * as TopicCatalog from "../../src/protocol/TopicCatalog.js"
import * as TopicAccess from "../../src/server/TopicAccess.js"

const runSummaries = "runtime.run_summaries"
const runSummariesEnum = "SYNC_TOPIC_RUNTIME_RUN_SUMMARIES"
const notifications = "runtime.notifications"
const workerEvents = "runtime.codex_worker_events"

const subscribe = (payload: unknown) => Either.getOrThrow(Requests.decodeSubscribe(payload))

describe("TopicAccess.resolveSubscribe", () => {
  const catalog = TopicCatalog.v1

  it("keeps the allowed topics under the name the client used and lists the rest as forbidden", () => {
    const request = subscribe({
      topics: [runSummariesEnum, "runtime.unknown", notifications, workerEvents, runSummaries],
      resume_after: { [runSummariesEnum]: 9, [runSummaries]: 4 }
    })
    // Scopes in either form; a wildcard is not a scope and an unknown scope grants nothing.
    const scopes = ["*", runSummaries, "SYNC_TOPIC_RUNTIME_NOTIFICATIONS"]
    const resolved = TopicAccess.resolveSubscribe(request, catalog, scopes)
    expect(resolved.forbidden).toStrictEqual(["runtime.unknown", workerEvents])
    expect(resolved.topics.map((t) => [t.topic.wireName, t.requestedAs, t.resumeAfter])).toStrictEqual([
      // Named in both forms: kept once, under the first name, with the lower cursor (I1).
      [runSummaries, runSummariesEnum, Option.some(4)],
      [notifications, notifications, Option.none()]
    ])
  })

  it("forbids everything without scopes", () => {
    const resolved = TopicAccess.resolveSubscribe({ topics: [runSummaries, "nope"] }, catalog, [])
    expect(resolved).toStrictEqual({ topics: [], forbidden: [runSummaries, "nope"] })
  })
})
