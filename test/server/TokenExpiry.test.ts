/**
 * A socket's token deadline agrees with what the verifier accepts (protocol.md §8): a token inside the 30 s clock tolerance
 * is accepted and served until the tolerance runs out, not accepted and then closed at once (which makes clients
 * loop); a token whose `exp` lies beyond any representable time is refused at the upgrade.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { serveInProcess } from "../support/InProcess.js"
import { token } from "../support/Khala.js"
import { openRaw, upgradeOutcome } from "../support/RawSocket.js"

const runs = "runtime.run_summaries"

describe("token deadlines at the socket", () => {
  it.live("a token past exp but within the clock tolerance is served, not closed at once", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveInProcess()
      const raw = yield* openRaw({
        port: server.port,
        token: yield* token({ org: "org_a", scopes: [runs], ttlSeconds: -10 })
      })
      expect((yield* raw.request("j", "j", "sync:v1", "phx_join", {}))[4].status).toBe("ok")
      yield* Effect.sleep("300 millis")
      expect((yield* raw.request("j", "h", "sync:v1", "sync:heartbeat", {}))[4].status).toBe("ok")
      expect(raw.pushes("sync:error")).toEqual([])
      expect(raw.closed()).toBe(undefined)
    })))

  it.live("a token whose exp is beyond the Date range is refused at the upgrade", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveInProcess()
      const outcome = yield* upgradeOutcome({
        port: server.port,
        token: yield* token({ org: "org_a", scopes: [runs], ttlSeconds: 1e13 })
      })
      expect(outcome.status).toBe(401)
    })))
})
