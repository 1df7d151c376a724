/**
 * The runtime's catalog everywhere (protocol.md §4): a topic a runtime registers in code is subscribable through the mounted
 * server with the same rules as the built-in ones: allowed with its scope in the token (in either name form),
 * forbidden without it, replayed and then live, in pointer mode when the runtime declares it so.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { serveInProcess } from "../support/InProcess.js"
import { token } from "../support/Khala.js"
import { connectJoined, subscribeOk } from "../support/PhoenixClient.js"

const things = "myapp.things"

describe("runtime topics through the mounted server", () => {
  it.live("a runtime topic with its scope in the token is subscribable, replayed and then live", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveInProcess({ catalog: { topics: [{ wireName: things }] } })
      yield* server.publish({ topic: things, docKey: "org_a:t1", payload: { n: 1 } })
      const { client, joinReply } = yield* connectJoined({
        port: server.port,
        token: yield* token({ org: "org_a", scopes: [things] })
      })
      expect(joinReply.allowed_topics).toEqual([things])
      expect(yield* subscribeOk(client, { topics: [things] })).toMatchObject({ topics: [things] })
      yield* client.waitForReplayComplete(things)
      yield* server.publish({ topic: things, docKey: "org_a:t2", payload: { n: 2 } })
      yield* client.waitForWatermark(things, 2)
      expect(client.updates(things).map((u) => [u.doc_key, u.payload])).toEqual([
        ["org_a:t1", { n: 1 }],
        ["org_a:t2", { n: 2 }]
      ])

      // by its enum name too, and refused without its scope
      const byEnum = (yield* connectJoined({
        port: server.port,
        token: yield* token({ org: "org_a", scopes: ["SYNC_TOPIC_MYAPP_THINGS"] })
      })).client
      expect(yield* subscribeOk(byEnum, { topics: ["SYNC_TOPIC_MYAPP_THINGS"] })).toMatchObject({
        topics: ["SYNC_TOPIC_MYAPP_THINGS"]
      })
      yield* byEnum.waitForWatermark("SYNC_TOPIC_MYAPP_THINGS", 2)
      const outsider = (yield* connectJoined({
        port: server.port,
        token: yield* token({ org: "org_a", scopes: ["runtime.run_summaries"] })
      })).client
      const refused = yield* outsider.subscribe({ topics: [things] })
      expect(refused).toMatchObject({
        status: "error",
        response: { code: "forbidden_topic", forbidden_topics: [things] }
      })
    })))
})
