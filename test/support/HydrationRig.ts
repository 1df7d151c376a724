/**
 * The rig of the client's hydration tests (protocol.md §6, §11): a real `khala serve` on a database of its own, behind a
 * TCP proxy (so a test can drop every connection), a plain-SQL publisher, and a client factory whose `fetch` and
 * WebSocket record what crossed HTTP and the socket. The server knows one topic of the tests' own, whose journal
 * `khala retention run` prunes entirely, and runs retention only when a test says so.
 */
import { Effect } from "effect"
import type pg from "pg"
import { createClient, type WatermarkStore } from "../../src/client/node.js"
import { recordingFetch, recordingWebSocket, type WireLog } from "./ClientHarness.js"
import { signToken, sqlPublisher, startKhala } from "./Khala.js"
import { testDatabase } from "./Postgres.js"
import { startProxy } from "./TcpProxy.js"

export const runs = "runtime.run_summaries"
export const workers = "runtime.codex_worker_summaries"
export const events = "runtime.codex_worker_events"
export const notes = "runtime.notifications"
/** A topic of the test's own, whose journal `khala retention run` prunes entirely (retention 1 ms). */
export const short = "test.short_lived"
export const scopes = [runs, workers, events, notes, short]
const serverEnv = {
  KHALA_TOPICS: JSON.stringify([{ wire_name: short, retention_ms: 1 }]),
  // retention runs when the test says so, not on the server's schedule
  KHALA_RETENTION: "false"
}

/** The read model of a topic for org_a, as the client should hold it. */
export const readModel = (client: pg.Client, topic: string) =>
  Effect.promise(async () => {
    const rows = await client.query(
      "select doc_key, doc_version, payload from khala.sync_documents where topic = $1 and org_id = 'org_a' and not deleted",
      [topic]
    )
    return new Map(rows.rows.map((row) => [row.doc_key as string, { v: Number(row.doc_version), p: row.payload }]))
  })

export const epochOf = (client: pg.Client, topic: string) =>
  Effect.promise(() => client.query("select epoch from khala.sync_topic_sequences where topic = $1", [topic])).pipe(
    Effect.map((result) => result.rows[0].epoch as string)
  )

export const held = (snapshot: ReadonlyMap<string, { docVersion: number; payload: unknown }>) =>
  new Map([...snapshot].map(([key, document]) => [key, { v: document.docVersion, p: document.payload }]))

/** A server, its proxy and publisher, and a client factory for the scope. */
export const setup = Effect.gen(function*() {
  const db = yield* testDatabase
  const khala = yield* startKhala(db.url, serverEnv)
  const proxy = yield* startProxy(khala.server.port)
  const sql = yield* sqlPublisher(db.url)
  const http = recordingFetch()
  const wire: WireLog = new Map()
  const client = (store: WatermarkStore, initialLoad: "hydrate" | "replay" = "hydrate") => {
    const client = createClient({
      url: proxy.url,
      token: () => signToken({ org: "org_a", scopes }),
      store,
      initialLoad,
      hydrationPageSize: 7,
      fetch: http.fetch,
      webSocket: recordingWebSocket(wire),
      backoff: { baseMs: 100, maxMs: 500 }
    })
    return Effect.as(Effect.addFinalizer(() => Effect.promise(() => client.close())), client)
  }
  const listings = (topic: string) =>
    http.requests.filter((r) => r.startsWith(`GET /sync/v1/topics/${topic}/documents?`))
  return { db, khala, proxy, sql, http, wire, client, listings }
})
