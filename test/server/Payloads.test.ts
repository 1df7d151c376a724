/**
 * Payload limits and pointer mode (design.md §3, protocol.md §5, I5): a payload over 256 KiB is delivered as `payload: null,
 * hydration_required: true` rather than dropped, in replay and live; pointer-mode publishes (CLI `--pointer` and
 * SQL) are delivered with `hydration_required: true`; neighbours are unaffected.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { payloadHash } from "../../src/protocol/PayloadHashNode.js"
import { sqlPublisher, startKhala, token } from "../support/Khala.js"
import { connectJoined, subscribeOk } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import { runCli } from "../support/Processes.js"

const runs = "runtime.run_summaries"
const big = (tag: string) => ({ tag, blob: "x".repeat(300 * 1024) })
const hash = expect.stringMatching(/^sha256:[0-9a-f]{64}$/)

describe.skipIf(!postgresAvailable)("payload limits and pointer mode", () => {
  it.live(
    "oversize payloads and pointer rows ask the client to hydrate; others are delivered inline",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { env, server } = yield* startKhala(db.url)
        const sql = yield* sqlPublisher(db.url)
        // replay: small, oversize, small
        yield* sql.publishAll([
          { docKey: "small-1", payload: { n: 1 } },
          { docKey: "big-1", payload: big("replay") },
          { docKey: "small-2", payload: { n: 2 } }
        ])
        const { client } = yield* connectJoined({
          port: server.port,
          token: yield* token({ org: "org_a", scopes: [runs] })
        })
        yield* subscribeOk(client, { topics: [runs] })
        yield* client.waitForReplayComplete(runs)

        // live: oversize, pointer through the CLI, pointer through SQL, small
        yield* sql.publish({ docKey: "big-2", payload: big("live") })
        const cli = yield* runCli([
          "publish",
          "--topic",
          runs,
          "--doc-key",
          "pointer-cli",
          "--doc-version",
          "3",
          "--org",
          "org_a",
          "--pointer",
          "--payload",
          JSON.stringify({ secret: "only over HTTP" })
        ], env)
        expect(cli).toMatchObject({ code: 0, stdout: "5\n" })
        yield* sql.publish({ docKey: "pointer-sql", docVersion: 7, payload: { p: true }, pointer: true })
        yield* sql.publish({ docKey: "small-3", payload: { n: 3 } })
        yield* client.waitForWatermark(runs, 7)

        const updates = client.updates(runs)
        expect(updates.map((u) => u.watermark)).toEqual([1, 2, 3, 4, 5, 6, 7])
        const byKey = Object.fromEntries(updates.map((u) => [u.doc_key, u]))
        for (const key of ["small-1", "small-2", "small-3"]) {
          expect(byKey[key]).toMatchObject({ hydration_required: false, payload_hash: hash })
          expect(byKey[key]!.payload).toEqual({ n: Number(key.slice(-1)) })
        }
        for (const key of ["big-1", "big-2"]) {
          expect(byKey[key]).toEqual({
            topic: runs,
            doc_key: key,
            doc_version: 1,
            payload: null,
            payload_hash: hash,
            watermark: key === "big-1" ? 2 : 4,
            hydration_required: true,
            deleted: false
          })
        }
        expect(byKey["pointer-cli"]).toMatchObject({
          doc_version: 3,
          payload: null,
          hydration_required: true,
          watermark: 5
        })
        expect(byKey["pointer-sql"]).toMatchObject({
          doc_version: 7,
          payload: null,
          hydration_required: true,
          watermark: 6
        })
        // hashes are of the document even when it is not sent (protocol.md §5.4 canonical JSON); pointer rows: hash or null
        expect(byKey["big-1"]!.payload_hash).toBe(Either.getOrThrow(payloadHash(big("replay"))))
        expect(byKey["big-2"]!.payload_hash).toBe(Either.getOrThrow(payloadHash(big("live"))))
        expect(byKey["small-3"]!.payload_hash).toBe(Either.getOrThrow(payloadHash({ n: 3 })))
        expect([null, Either.getOrThrow(payloadHash({ secret: "only over HTTP" }))]).toContain(
          byKey["pointer-cli"]!.payload_hash
        )
        expect(client.errors).toEqual([])

        // a late subscriber replaying the same rows sees the same flags
        const late =
          (yield* connectJoined({ port: server.port, token: yield* token({ org: "org_a", scopes: [runs] }) })).client
        yield* subscribeOk(late, { topics: [runs], replay_batch_size: 2 })
        yield* late.waitForWatermark(runs, 7)
        expect(late.updates(runs).map((u) => [u.doc_key, u.payload === null, u.hydration_required])).toEqual(
          updates.map((u) => [u.doc_key, u.payload === null, u.hydration_required])
        )
      })),
    { timeout: 180_000 }
  )
})
