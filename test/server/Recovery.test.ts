/**
 * The recovery loop end to end, with a real `khala serve`, the official `phoenix` client and `fetch`: a prune past a
 * client's watermark, `stale_cursor`, hydration by pages, a subscription from the snapshot, and exactly the read
 * model; a journal reset told as `epoch_changed`; deletes on the wire and in hydration; and a filtered subscription.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { sqlPublisher, startKhala, token } from "../support/Khala.js"
import type { UpdateJson } from "../support/PhoenixClient.js"
import { connectJoined, subscribeOk, waitUntil } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import { runCli } from "../support/Processes.js"

const runs = "runtime.run_summaries"

interface Held {
  version: number
  payload: unknown
}

/** A client's cache: documents by key, applied only when newer, dropped when deleted. */
const cache = () => {
  const documents = new Map<string, Held>()
  return {
    documents,
    apply: (d: { doc_key: string; doc_version: number; payload: unknown; deleted: boolean }) => {
      const held = documents.get(d.doc_key)
      if (held !== undefined && held.version >= d.doc_version) return
      if (d.deleted) documents.delete(d.doc_key)
      else documents.set(d.doc_key, { version: d.doc_version, payload: d.payload })
    }
  }
}

describe.skipIf(!postgresAvailable)("recovery", () => {
  it.live(
    "a prune past a client's watermark: stale_cursor, hydrate by pages, resume from the snapshot, exact",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { env, server } = yield* startKhala(db.url)
        const sql = yield* sqlPublisher(db.url)
        for (let i = 1; i <= 20; i++) yield* sql.publish({ docKey: `org_a:run_${i}`, payload: { i } })
        yield* sql.publish({ docKey: "org_b:run_1", orgId: "org_b", payload: { secret: true } })
        const jwt = yield* token({ org: "org_a", scopes: [runs] })

        // a client follows the topic for a while, then goes away with its watermark
        const client = cache()
        const first = yield* Effect.scoped(Effect.gen(function*() {
          const { client: socket } = yield* connectJoined({ port: server.port, token: jwt })
          yield* subscribeOk(socket, { topics: [runs] })
          yield* socket.waitForReplayComplete(runs)
          for (const u of socket.updates(runs)) client.apply(u)
          return socket.persisted(runs)!
        }))
        // meanwhile: updates, a new document, a delete, and retention prunes past the client's watermark
        for (let i = 1; i <= 5; i++) {
          yield* sql.publish({ docKey: `org_a:run_${i}`, docVersion: 2, payload: { i, v: 2 } })
        }
        yield* sql.publish({ docKey: "org_a:run_21", payload: { i: 21 } })
        yield* Effect.promise(() => sql.client.query("select khala.remove($1, 'org_a:run_7', 5, 'org_a')", [runs]))
        expect((yield* runCli(["retention", "prune", "--topic", runs, "--before-watermark", "26"], env)).code).toBe(0)

        const { client: socket } = yield* connectJoined({ port: server.port, token: jwt })
        const refused = yield* socket.subscribe({ topics: [runs], resume_after: [{ topic: runs, watermark: first }] })
        expect(refused.status).toBe("error")
        expect(refused.response).toMatchObject({
          code: "stale_cursor",
          full_resync_required: true,
          stale_topics: [{ topic: runs, resume_after: first, retention_floor: 26 }]
        })

        // a full resync: the cache is rebuilt from hydration by pages of 7, then the client resumes from the snapshot
        client.documents.clear()
        let cursor: string | null = null
        let snapshot = -1
        do {
          const response: Response = yield* Effect.promise(() =>
            fetch(
              server.url(`/sync/v1/topics/${runs}/documents?limit=7${cursor === null ? "" : `&cursor=${cursor}`}`),
              {
                headers: { authorization: `Bearer ${jwt}` }
              }
            )
          )
          expect(response.status).toBe(200)
          const page: any = yield* Effect.promise(() => response.json())
          snapshot = page.snapshot_watermark
          for (const d of page.documents) client.apply(d)
          cursor = page.next_cursor
        } while (cursor !== null)
        yield* sql.publish({ docKey: "org_a:run_22", payload: { i: 22 } })
        yield* subscribeOk(socket, { topics: [runs], resume_after: [{ topic: runs, watermark: snapshot }] })
        const head = yield* sql.head(runs)
        yield* waitUntil("caught up", () => (socket.persisted(runs) ?? 0) >= head)
        for (const u of socket.updates(runs)) client.apply(u)

        const model = yield* Effect.promise(() =>
          sql.client.query<{ doc_key: string; doc_version: string; payload: unknown }>(
            "select doc_key, doc_version, payload from khala.sync_documents where topic = $1 and org_id = 'org_a' and not deleted",
            [runs]
          )
        )
        const expected = new Map(
          model.rows.map((r) => [r.doc_key, { version: Number(r.doc_version), payload: r.payload }])
        )
        expect(new Map([...client.documents].sort())).toEqual(new Map([...expected].sort()))
        expect(client.documents.has("org_a:run_7")).toBe(false)
        expect(client.documents.has("org_b:run_1")).toBe(false)
      })),
    { timeout: 270_000 }
  )

  it.live("deletes, filters and a journal reset, on the wire", () =>
    Effect.scoped(Effect.gen(function*() {
      const db = yield* testDatabase
      const { env, server } = yield* startKhala(db.url)
      const sql = yield* sqlPublisher(db.url)
      for (let i = 1; i <= 6; i++) yield* sql.publish({ docKey: `org_a:run_${i}`, payload: { i } })
      const jwt = yield* token({ org: "org_a", scopes: [runs] })

      // a client filtered to one run receives exactly that run's rows; its watermark moves past the others
      const { client: filtered } = yield* connectJoined({ port: server.port, token: jwt })
      const reply = yield* subscribeOk(filtered, { topics: [runs], filters: { [runs]: { doc_keys: ["org_a:run_3"] } } })
      const epoch: string = reply.current_watermarks[0].epoch
      expect(epoch).toEqual(expect.any(String))
      yield* filtered.waitForReplayComplete(runs)
      yield* sql.publish({ docKey: "org_a:run_3", docVersion: 2, payload: { i: 3, v: 2 } })
      yield* sql.publish({ docKey: "org_a:run_4", docVersion: 2, payload: { i: 4, v: 2 } })
      yield* Effect.promise(() => sql.client.query("select khala.remove($1, 'org_a:run_3', 3, 'org_a')", [runs]))
      yield* waitUntil("the filtered client is through the head", () => (filtered.persisted(runs) ?? 0) >= 9)
      const seen = filtered.updates(runs)
      expect(seen.map((u) => [u.doc_key, u.doc_version, u.deleted])).toEqual([
        ["org_a:run_3", 1, false],
        ["org_a:run_3", 2, false],
        ["org_a:run_3", 3, true]
      ])
      expect(seen[2]).toMatchObject({ payload: null, payload_hash: null } satisfies Partial<UpdateJson>)
      // the deleted document is gone from hydration too
      const gone = yield* Effect.promise(() =>
        fetch(server.url(`/sync/v1/topics/${runs}/documents/${encodeURIComponent("org_a:run_3")}`), {
          headers: { authorization: `Bearer ${jwt}` }
        })
      )
      expect(gone.status).toBe(404)
      // resumed from its watermark: nothing missed, nothing outside the filter replayed
      const persisted = filtered.persisted(runs)!
      expect(persisted).toBe(9)
      const { client: resumed } = yield* connectJoined({ port: server.port, token: jwt })
      yield* subscribeOk(resumed, {
        topics: [runs],
        resume_after: [{ topic: runs, watermark: persisted, epoch }],
        filters: { [runs]: { doc_keys: ["org_a:run_3"] } }
      })
      yield* sql.publish({ docKey: "org_a:run_5", docVersion: 2, payload: {} })
      yield* sql.publish({ docKey: "org_a:run_3", docVersion: 4, payload: { back: true } })
      yield* waitUntil("the resumed client is through the head", () => (resumed.persisted(runs) ?? 0) >= 11)
      expect(resumed.updates(runs).map((u) => [u.doc_key, u.doc_version])).toEqual([["org_a:run_3", 4]])

      // after a journal reset (a restored backup), a resume point of the old epoch is told why it is stale
      expect((yield* runCli(["topic", "reset", "--topic", runs], env)).code).toBe(0)
      const { client: late } = yield* connectJoined({ port: server.port, token: jwt })
      const stale = yield* late.subscribe({ topics: [runs], resume_after: [{ topic: runs, watermark: 11, epoch }] })
      expect(stale.status).toBe("error")
      expect(stale.response).toMatchObject({
        code: "stale_cursor",
        reason: "epoch_changed",
        full_resync_required: true
      })
      expect(stale.response.stale_topics[0].epoch).not.toBe(epoch)
    })), { timeout: 270_000 })
})
