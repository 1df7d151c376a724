/**
 * `sync:v1` through the official phoenix client against `khala serve` on Postgres (protocol.md §5): join reply, subscribe
 * in both topic forms, replay then `replay_complete`, live updates, heartbeats and unsubscribe.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { range, sqlPublisher, startKhala, token } from "../support/Khala.js"
import { connectJoined, subscribeOk, waitUntil } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"

const runs = "runtime.run_summaries"
const notificationsEnum = "SYNC_TOPIC_RUNTIME_NOTIFICATIONS"

describe.skipIf(!postgresAvailable)("sync:v1 channel", () => {
  it.live(
    "join, subscribe in both forms, replay, live updates, heartbeats, unsubscribe",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { server } = yield* startKhala(db.url, { KHALA_HEARTBEAT_INTERVAL: "300 millis" })
        const sql = yield* sqlPublisher(db.url)
        // three rows before anyone subscribes: they come as replay
        expect(yield* sql.publishAll(range(1, 3).map((i) => ({ docKey: `r${i}`, payload: { i } })))).toEqual([1, 2, 3])

        const { client, joinReply } = yield* connectJoined({
          port: server.port,
          token: yield* token({ org: "org_a", scopes: [runs, "runtime.notifications"] })
        })
        expect(joinReply).toEqual({
          subscription_id: expect.any(String),
          allowed_topics: [runs, "runtime.notifications"],
          current_watermarks: []
        })
        expect(joinReply.subscription_id).not.toBe("")

        // dotted name: the reply reports the resume point (0), never the head (protocol.md §5)
        const subscribed = yield* subscribeOk(client, { topics: [runs] })
        expect(subscribed).toEqual({
          subscription_id: joinReply.subscription_id,
          topics: [runs],
          current_watermarks: [{ topic: runs, watermark: 0, epoch: expect.any(String) }]
        })
        const replayEnd = yield* client.waitForReplayComplete(runs)
        expect(client.watermarks(runs)).toEqual([1, 2, 3])
        expect(replayEnd.head_watermarks).toEqual([{ topic: runs, watermark: 3 }])
        // every batch before the last replay batch says replay_complete: false
        const index = client.batches.indexOf(replayEnd)
        expect(client.batches.slice(0, index).every((b) => !b.replay_complete)).toBe(true)
        const first = client.updates(runs)[0]!
        expect(first).toEqual({
          topic: runs,
          doc_key: "r1",
          doc_version: 1,
          payload: { i: 1 },
          payload_hash: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
          watermark: 1,
          hydration_required: false,
          deleted: false
        })

        // enum name with nothing to replay: an empty batch still completes the replay, in the client's form
        const byEnum = yield* subscribeOk(client, {
          topics: [notificationsEnum],
          resume_after: [{ topic: notificationsEnum, watermark: 0 }],
          request_id: "req-1"
        })
        expect(byEnum.topics).toEqual([notificationsEnum])
        expect(byEnum.current_watermarks).toEqual([{
          topic: notificationsEnum,
          watermark: 0,
          epoch: expect.any(String)
        }])
        const emptyEnd = yield* client.waitForReplayComplete(notificationsEnum)
        expect(emptyEnd.updates).toEqual([])
        expect(emptyEnd.head_watermarks).toEqual([{ topic: notificationsEnum, watermark: 0 }])

        // live: appends after the replay arrive with replay_complete true, in order, in the form each topic was used
        yield* sql.publishAll([
          { docKey: "r4", payload: { i: 4 } },
          { topic: "runtime.notifications", docKey: "n1", payload: { n: 1 } },
          { docKey: "r5", payload: { i: 5 } }
        ])
        yield* client.waitForWatermark(runs, 5)
        yield* client.waitForWatermark(notificationsEnum, 1)
        expect(client.watermarks(runs)).toEqual([1, 2, 3, 4, 5])
        expect(client.updates(notificationsEnum)).toEqual([expect.objectContaining({
          topic: notificationsEnum,
          doc_key: "n1",
          payload: { n: 1 },
          watermark: 1
        })])
        const live = client.batches.slice(index + 1).filter((b) => b.updates.length > 0)
        expect(live.every((b) => b.replay_complete)).toBe(true)

        // heartbeat: the reply and a push carry what this socket was sent through
        const pushesBefore = client.heartbeats.length
        const beat = yield* client.heartbeat
        expect(beat.status).toBe("ok")
        expect(beat.response.subscription_id).toBe(joinReply.subscription_id)
        const expected = [{ topic: runs, watermark: 5 }, { topic: notificationsEnum, watermark: 1 }]
        expect([...beat.response.watermarks].sort(byTopic)).toEqual([...expected].sort(byTopic))
        yield* waitUntil("a heartbeat push", () => client.heartbeats.length > pushesBefore)
        const pushed = client.heartbeats.at(-1)!
        expect([...pushed.watermarks].sort(byTopic)).toEqual([...expected].sort(byTopic))

        // periodic heartbeat pushes (KHALA_HEARTBEAT_INTERVAL) arrive without any request
        const count = client.heartbeats.length
        yield* waitUntil("periodic heartbeat pushes", () => client.heartbeats.length >= count + 2, {
          timeoutMs: 10_000
        })

        // unsubscribe: the reply lists what remains; the dropped topic is no longer delivered
        const left = yield* client.push("sync:unsubscribe", { topics: [notificationsEnum] })
        expect(left).toEqual({ status: "ok", response: { subscription_id: joinReply.subscription_id, topics: [runs] } })
        yield* sql.publishAll([
          { topic: "runtime.notifications", docKey: "n2", payload: { n: 2 } },
          { docKey: "r6", payload: { i: 6 } }
        ])
        yield* client.waitForWatermark(runs, 6)
        yield* Effect.sleep("300 millis")
        expect(client.watermarks(notificationsEnum)).toEqual([1])
        expect(client.errors).toEqual([])
        expect(server.process.exitCode).toBe(null)
      })),
    { timeout: 180_000 }
  )

  it.live(
    "a replay whose last page is full still ends with a replay_complete batch",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { server } = yield* startKhala(db.url)
        const sql = yield* sqlPublisher(db.url)
        const jwt = yield* token({ org: "org_a", scopes: [runs] })
        // 20 rows, pages of 10: the page that reaches the head ends the replay, full as it is; exactly one batch says so
        yield* sql.publishAll(range(1, 20).map((i) => ({ docKey: `k${i}`, payload: { i } })))
        const small = (yield* connectJoined({ port: server.port, token: jwt })).client
        yield* subscribeOk(small, { topics: [runs], replay_batch_size: 10 })
        yield* small.waitForWatermark(runs, 20)
        const end = yield* small.waitForReplayComplete(runs, 5_000)
        const replay = small.batches.slice(0, small.batches.indexOf(end) + 1)
        expect(replay.every((b) => b.updates.length <= 10)).toBe(true)
        expect(replay.map((b) => b.replay_complete)).toEqual([...replay.slice(1).map(() => false), true])
        expect(replay.flatMap((b) => b.updates.map((u) => u.watermark))).toEqual(range(1, 20))
        expect(end.watermarks).toEqual([{ topic: runs, watermark: 20 }])
        // the same with the default page of 200 rows
        yield* sql.publishAll(range(21, 200).map((i) => ({ docKey: `k${i}`, payload: { i } })))
        const byDefault = (yield* connectJoined({ port: server.port, token: jwt })).client
        yield* subscribeOk(byDefault, { topics: [runs] })
        yield* byDefault.waitForWatermark(runs, 200)
        yield* byDefault.waitForReplayComplete(runs, 5_000)
        expect(byDefault.watermarks(runs)).toEqual(range(1, 200))
      })),
    { timeout: 180_000 }
  )

  it.live(
    "replay in batches of replay_batch_size, then live without gap or duplicate while publishing",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { server } = yield* startKhala(db.url)
        const sql = yield* sqlPublisher(db.url)
        yield* sql.publishAll(range(1, 25).map((i) => ({ docKey: `k${i}`, payload: { i } })))
        const { client } = yield* connectJoined({
          port: server.port,
          token: yield* token({ org: "org_a", scopes: [runs] })
        })
        // a writer keeps appending while the replay runs: the hand-off to live must neither skip nor repeat
        const writer = yield* Effect.fork(
          sql.publishAll(range(26, 60).map((i) => ({ docKey: `k${i}`, payload: { i } })))
        )
        yield* subscribeOk(client, { topics: [runs], replay_batch_size: 10 })
        yield* client.waitForReplayComplete(runs, 10_000)
        yield* writer.await
        yield* client.waitForWatermark(runs, 60)
        expect(client.watermarks(runs)).toEqual(range(1, 60))
        const replay = client.batches.slice(0, client.batches.findIndex((b) => b.replay_complete) + 1)
        expect(replay.every((b) => b.updates.length <= 10)).toBe(true)
        expect(replay.slice(0, 2).map((b) => b.updates.length)).toEqual([10, 10])
      })),
    { timeout: 180_000 }
  )
})

const byTopic = (a: { topic: string }, b: { topic: string }) => a.topic.localeCompare(b.topic)
