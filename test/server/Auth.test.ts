/**
 * Auth at the socket (protocol.md §5, §8): the token param and the phoenix client's `authToken` option both work; bad or
 * missing tokens are refused at the HTTP upgrade; topic scopes bound what a token may subscribe to (I7).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { sqlPublisher, startKhala, token } from "../support/Khala.js"
import { connect, connectJoined, subscribeOk } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import { runCli } from "../support/Processes.js"
import { upgradeOutcome } from "../support/RawSocket.js"

const runs = "runtime.run_summaries"
const bearer = (jwt: string) => `base64url.bearer.phx.${Buffer.from(jwt).toString("base64url")}`

describe.skipIf(!postgresAvailable)("socket auth", () => {
  it.live(
    "token param, authToken subprotocol, khala token; bad and missing tokens get 401 at the upgrade",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { env, server } = yield* startKhala(db.url)
        const sql = yield* sqlPublisher(db.url)
        const jwt = yield* token({ org: "org_a", scopes: [runs] })

        // params: { token }
        const byParam = yield* connectJoined({ port: server.port, token: jwt })
        expect(byParam.joinReply.allowed_topics).toEqual([runs])

        // the authToken option: subprotocols "phoenix" + base64url.bearer.phx.<token>; the server answers "phoenix"
        const bySubprotocol = yield* connectJoined({ port: server.port, authToken: jwt })
        expect(bySubprotocol.client.protocol()).toBe("phoenix")
        expect(bySubprotocol.joinReply.allowed_topics).toEqual([runs])

        // a token printed by `khala token` (comma string of scopes), signed with the server's first key
        const printed = yield* runCli([
          "token",
          "--sub",
          "cli-user",
          "--org",
          "org_a",
          "--scopes",
          `${runs},runtime.notifications`
        ], env)
        expect(printed.code).toBe(0)
        const byCli = yield* connectJoined({ port: server.port, token: printed.stdout.trim() })
        expect(byCli.joinReply.allowed_topics).toEqual([runs, "runtime.notifications"])

        // a token of the previous key (kid k0) still verifies: key rotation
        const previous = yield* connectJoined({
          port: server.port,
          token: yield* token({ org: "org_a", scopes: [runs], kid: "k0" })
        })

        for (const { client } of [byParam, bySubprotocol, byCli, previous]) {
          yield* subscribeOk(client, { topics: [runs] })
        }
        yield* sql.publish({ docKey: "a", payload: { a: 1 } })
        for (const { client } of [byParam, bySubprotocol, byCli, previous]) {
          yield* client.waitForWatermark(runs, 1)
          expect(client.watermarks(runs)).toEqual([1])
        }

        // refused at the upgrade, before any channel exists
        const refusals = {
          missing: yield* upgradeOutcome({ port: server.port }),
          empty: yield* upgradeOutcome({ port: server.port, query: "token=" }),
          garbage: yield* upgradeOutcome({ port: server.port, token: "not-a-jwt" }),
          wrongSecret: yield* upgradeOutcome({
            port: server.port,
            token: yield* token({ org: "org_a", scopes: [runs], secret: "some-other-secret-0123456789abcdefgh" })
          }),
          unknownKid: yield* upgradeOutcome({
            port: server.port,
            token: yield* token({
              org: "org_a",
              scopes: [runs],
              kid: "k9",
              secret: "whatever-secret-0123456789abcdefghij"
            })
          }),
          expired: yield* upgradeOutcome({
            port: server.port,
            token: yield* token({ org: "org_a", scopes: [runs], ttlSeconds: -120 })
          }),
          badSubprotocol: yield* upgradeOutcome({ port: server.port, protocols: ["phoenix", bearer("not-a-jwt")] }),
          phoenixOnly: yield* upgradeOutcome({ port: server.port, protocols: ["phoenix"] })
        }
        for (const [name, outcome] of Object.entries(refusals)) {
          expect({ name, status: outcome.status }).toEqual({ name, status: 401 })
        }
        // the raw client negotiates "phoenix" too when it offers it
        expect(yield* upgradeOutcome({ port: server.port, protocols: ["phoenix", bearer(jwt)] })).toEqual({
          status: "open",
          protocol: "phoenix"
        })
        // the phoenix client reports a refused connection as an error
        const refused = yield* Effect.either(connect({ port: server.port, token: "not-a-jwt" }))
        expect(refused._tag).toBe("Left")
        expect(server.process.exitCode).toBe(null)
      })),
    { timeout: 180_000 }
  )

  it.live(
    "forbidden topics: outside the scopes or unknown, refused with forbidden_topic; the channel still works",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { server } = yield* startKhala(db.url)
        const sql = yield* sqlPublisher(db.url)
        const { client } = yield* connectJoined({
          port: server.port,
          token: yield* token({ org: "org_a", scopes: [runs] })
        })

        const notInScopes = yield* client.subscribe({ topics: ["runtime.codex_worker_events"], request_id: "r1" })
        expect(notInScopes.status).toBe("error")
        expect(notInScopes.response).toMatchObject({
          code: "forbidden_topic",
          forbidden_topics: ["runtime.codex_worker_events"],
          request_id: "r1"
        })
        expect(notInScopes.response.message).toEqual(expect.any(String))

        const unknown = yield* client.subscribe({ topics: ["runtime.no_such_topic"] })
        expect(unknown.status).toBe("error")
        expect(unknown.response).toMatchObject({ code: "forbidden_topic", forbidden_topics: ["runtime.no_such_topic"] })

        // enum form outside the scopes is reported as given
        const byEnum = yield* client.subscribe({ topics: [runs, "SYNC_TOPIC_RUNTIME_NOTIFICATIONS"] })
        expect(byEnum.status).toBe("error")
        expect(byEnum.response).toMatchObject({
          code: "forbidden_topic",
          forbidden_topics: ["SYNC_TOPIC_RUNTIME_NOTIFICATIONS"]
        })

        // nothing was subscribed by the refused requests; an allowed one still works
        yield* sql.publish({ docKey: "a", payload: { a: 1 } })
        yield* subscribeOk(client, { topics: [runs] })
        yield* client.waitForWatermark(runs, 1)
        expect(client.watermarks(runs)).toEqual([1])
        const beat = yield* client.heartbeat
        expect(beat.response.watermarks).toEqual([{ topic: runs, watermark: 1 }])
      })),
    { timeout: 180_000 }
  )
})
