/**
 * Resume after a disconnect (I4): a client that persisted its watermarks from the batches it received resumes
 * with `resume_after` (list or map form) and gets exactly the journal suffix, while a writer keeps appending
 * throughout: the two sessions' watermark sequences together are 1..head, no duplicate, no gap.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { range, sqlPublisher, startKhala, token } from "../support/Khala.js"
import { connectJoined, subscribeOk } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import { openRaw } from "../support/RawSocket.js"

const runs = "runtime.run_summaries"
const notes = "runtime.notifications"
const notesEnum = "SYNC_TOPIC_RUNTIME_NOTIFICATIONS"

describe.skipIf(!postgresAvailable)("resume after a disconnect", () => {
  for (const form of ["list", "map"] as const) {
    it.live(`resume_after in ${form} form replays exactly the suffix`, () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { server } = yield* startKhala(db.url)
        const sql = yield* sqlPublisher(db.url)
        const jwt = yield* token({ org: "org_a", scopes: [runs, notes] })
        yield* sql.publishAll(range(1, 5).map((i) => ({ docKey: `r${i}`, payload: { i } })))
        yield* sql.publishAll(range(1, 5).map((i) => ({ topic: notes, docKey: `n${i}`, payload: { i } })))

        const first = yield* connectJoined({ port: server.port, token: jwt })
        yield* subscribeOk(first.client, { topics: [runs, notes] })
        // a writer appends to both topics during the first session, the disconnect and the resume
        const writer = yield* Effect.fork(sql.publishAll(
          range(6, 80).flatMap((i) => [
            { docKey: `r${i}`, payload: { i } },
            { topic: notes, docKey: `n${i}`, payload: { i } }
          ])
        ))
        yield* first.client.waitForWatermark(runs, 12)
        // the client crashes: what it persisted is what it had received at this instant
        const seen = [...first.client.batches]
        yield* first.client.disconnect
        const persistedRuns = first.client.persisted(runs, seen) ?? 0
        const persistedNotes = first.client.persisted(notes, seen) ?? 0
        const firstRuns = seen.flatMap((b) => b.updates).filter((u) => u.topic === runs).map((u) => u.watermark)
        const firstNotes = seen.flatMap((b) => b.updates).filter((u) => u.topic === notes).map((u) => u.watermark)
        expect(firstRuns).toEqual(range(1, persistedRuns))
        expect(firstNotes).toEqual(range(1, persistedNotes))

        const second = yield* connectJoined({ port: server.port, token: jwt })
        // the map form names the notifications topic by its enum name: replies and updates then use that form
        const notesName = form === "map" ? notesEnum : notes
        const resumeAfter = form === "list"
          ? [{ topic: runs, watermark: persistedRuns }, { topic: notes, watermark: persistedNotes }]
          : { [runs]: persistedRuns, [notesEnum]: persistedNotes }
        const reply = yield* subscribeOk(second.client, { topics: [runs, notesName], resume_after: resumeAfter })
        expect(reply.topics).toEqual([runs, notesName])
        // the reply goes out before the replay: it reports the resume points, never the heads
        expect(reply.current_watermarks).toEqual([
          { topic: runs, watermark: persistedRuns, epoch: expect.any(String) },
          { topic: notesName, watermark: persistedNotes, epoch: expect.any(String) }
        ])
        yield* Fiber.join(writer)
        const headRuns = yield* sql.head(runs)
        const headNotes = yield* sql.head(notes)
        expect([headRuns, headNotes]).toEqual([80, 80])
        yield* second.client.waitForWatermark(runs, headRuns)
        yield* second.client.waitForWatermark(notesName, headNotes)

        expect(second.client.watermarks(runs)).toEqual(range(persistedRuns + 1, headRuns))
        expect(second.client.watermarks(notesName)).toEqual(range(persistedNotes + 1, headNotes))
        expect([...firstRuns, ...second.client.watermarks(runs)]).toEqual(range(1, headRuns))
        expect([...firstNotes, ...second.client.watermarks(notesName)]).toEqual(range(1, headNotes))
        // contents follow the watermarks: r<i> is watermark i
        expect(second.client.updates(runs).every((u) => u.doc_key === `r${u.watermark}`)).toBe(true)
        expect(second.client.errors).toEqual([])
      })), { timeout: 180_000 })
  }

  it.live(
    "resuming at the head replays nothing and completes the replay at once",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { server } = yield* startKhala(db.url)
        const sql = yield* sqlPublisher(db.url)
        yield* sql.publishAll(range(1, 4).map((i) => ({ docKey: `r${i}`, payload: { i } })))
        const { client } = yield* connectJoined({
          port: server.port,
          token: yield* token({ org: "org_a", scopes: [runs] })
        })
        yield* subscribeOk(client, { topics: [runs], resume_after: { [runs]: 4 } })
        const end = yield* client.waitForReplayComplete(runs)
        expect(end.updates).toEqual([])
        yield* sql.publish({ docKey: "r5", payload: { i: 5 } })
        yield* client.waitForWatermark(runs, 5)
        expect(client.watermarks(runs)).toEqual([5])
      })),
    { timeout: 180_000 }
  )

  it.live(
    "resubscribing a live topic restarts it at the new resume point: after each reply, exactly the suffix",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { server } = yield* startKhala(db.url)
        const sql = yield* sqlPublisher(db.url)
        const raw = yield* openRaw({ port: server.port, token: yield* token({ org: "org_a", scopes: [runs] }) })
        yield* raw.request("j", "j", "sync:v1", "phx_join", {})
        yield* raw.request("j", "s0", "sync:v1", "sync:subscribe", { topics: [runs] })
        const total = 300
        const writer = yield* Effect.fork(
          sql.publishAll(range(1, total).map((i) => ({ docKey: `r${i}`, payload: { i } })))
        )
        const received = () =>
          raw.frames.filter((f) => f[3] === "sync:update_batch").flatMap((f) =>
            f[4].updates.map((u: any) => u.watermark)
          )
        const resumes: Array<number> = []
        for (const i of range(1, 8)) {
          yield* Effect.sleep(`${20 + Math.floor(Math.random() * 40)} millis`)
          // the client goes back a little (as after a local rollback) or stays where it is
          const at = Math.max(0, Math.max(0, ...received()) - (i % 2 === 0 ? 5 : 0))
          resumes.push(at)
          const reply = yield* raw.request("j", `s${i}`, "sync:v1", "sync:subscribe", {
            topics: [runs],
            resume_after: { [runs]: at }
          })
          expect(reply[4].status).toBe("ok")
        }
        yield* Fiber.join(writer)
        yield* raw.waitForFrame("the last row", (f) =>
          f[3] === "sync:update_batch" && f[4].updates.some((u: any) => u.watermark === total) &&
          raw.frames.indexOf(f) > raw.frames.findIndex((g) => g[1] === "s8"))
        // after the reply to resubscribe i, and until the next reply, updates continue from its resume point
        const replyAt = range(1, 8).map((i) => raw.frames.findIndex((f) => f[3] === "phx_reply" && f[1] === `s${i}`))
        for (const [k, start] of replyAt.entries()) {
          const end = k + 1 < replyAt.length ? replyAt[k + 1]! : raw.frames.length
          const segment = raw.frames.slice(start, end).filter((f) => f[3] === "sync:update_batch")
            .flatMap((f) => f[4].updates.map((u: any) => u.watermark))
          const expected = range(resumes[k]! + 1, resumes[k]! + segment.length)
          expect({ resubscribe: k + 1, segment }).toEqual({ resubscribe: k + 1, segment: expected })
        }
        const last = raw.frames.slice(replyAt[7]).filter((f) => f[3] === "sync:update_batch")
          .flatMap((f) => f[4].updates.map((u: any) => u.watermark))
        expect(last.at(-1)).toBe(total)
      })),
    { timeout: 180_000 }
  )
})
