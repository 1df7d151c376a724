/**
 * The support window (protocol.md §5.1, §9): a join stating a protocol or schema version below the server's minimums,
 * or a refused client build, is answered `upgrade_required` with the minimums; a join stating nothing, or versions
 * inside the window, is accepted; joins are counted with bounded labels.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Metric, Option } from "effect"
import * as Compatibility from "../../src/server/Compatibility.js"
import * as ServerConfig from "../../src/server/ServerConfig.js"
import { serveInProcess } from "../support/InProcess.js"
import { token } from "../support/Khala.js"
import { connect } from "../support/PhoenixClient.js"
import { openRaw } from "../support/RawSocket.js"

const runs = "runtime.run_summaries"
const window: Compatibility.SupportWindow = {
  minProtocolVersion: 2,
  minSchemaVersion: 3,
  refusedClientBuilds: ["web-0.9.*", "ios-1.0.0"]
}

const joinCount = (labels: { protocolVersion: string; clientBuild: string; outcome: string }) =>
  Metric.value(Compatibility.joins.pipe(
    Metric.tagged("protocol_version", labels.protocolVersion),
    Metric.tagged("client_build", labels.clientBuild),
    Metric.tagged("outcome", labels.outcome)
  )).pipe(Effect.map((state) => state.count))

describe("support window", () => {
  it("judges each field against its minimum; absent fields pass", () => {
    expect(Compatibility.outside(window, {})).toEqual(Option.none())
    expect(Compatibility.outside(window, { protocolVersion: 2, schemaVersion: 3 })).toEqual(Option.none())
    expect(Compatibility.outside(window, { protocolVersion: 1 })).toEqual(Option.some("protocol_version"))
    expect(Compatibility.outside(window, { schemaVersion: 2 })).toEqual(Option.some("schema_version"))
    expect(Compatibility.outside(window, { clientBuildId: "web-0.9.7" })).toEqual(Option.some("client_build"))
    expect(Compatibility.outside(window, { clientBuildId: "ios-1.0.0" })).toEqual(Option.some("client_build"))
    expect(Compatibility.outside(window, { clientBuildId: "ios-1.0.01" })).toEqual(Option.none())
    expect(Compatibility.outside(window, { clientBuildId: "web-0.10.0" })).toEqual(Option.none())
  })

  it("bounds the metric labels: builds past the first 64 are other, odd characters are replaced, lengths cut", () => {
    const seen = new Set<string>()
    for (let i = 0; i < 100; i++) Compatibility.joinLabels({ clientBuildId: `build-${i}` }, seen)
    expect(seen.size).toBe(Compatibility.maxBuildLabels)
    expect(Compatibility.joinLabels({ clientBuildId: "build-3" }, seen).clientBuild).toBe("build-3")
    expect(Compatibility.joinLabels({ clientBuildId: "build-99" }, seen).clientBuild).toBe("other")
    const fresh = new Set<string>()
    const odd = Compatibility.joinLabels({ clientBuildId: "a b\"{}\u00e9".padEnd(100, "x"), protocolVersion: 7 }, fresh)
    expect(odd.clientBuild).toMatch(/^a_b____x+$/)
    expect(odd.clientBuild.length).toBe(Compatibility.maxBuildLabelLength)
    expect(odd.protocolVersion).toBe("7")
    expect(Compatibility.joinLabels({ protocolVersion: 123456 }, fresh)).toEqual({
      protocolVersion: "other",
      clientBuild: "none"
    })
  })

  it.effect("the settings are validated and read from the environment", () =>
    Effect.gen(function*() {
      const bad = yield* Effect.flip(ServerConfig.make({ minProtocolVersion: -1 }))
      expect(bad.setting).toBe("minProtocolVersion")
      const origin = yield* Effect.flip(ServerConfig.make({ socketOrigins: ["https://app.example/"] }))
      expect(origin.setting).toBe("socketOrigins")
      const settings = yield* ServerConfig.SettingsConfig.pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(
          new Map([
            ["KHALA_MIN_PROTOCOL_VERSION", "2"],
            ["KHALA_MIN_SCHEMA_VERSION", "3"],
            ["KHALA_REFUSED_CLIENT_BUILDS", "web-0.9.*, ios-1.0.0"],
            ["KHALA_SOCKET_ORIGINS", "https://app.example,https://admin.example"],
            ["KHALA_MAX_SOCKETS_PER_ORG", "40"],
            ["KHALA_MAX_SOCKETS_PER_PRINCIPAL", "4"],
            ["KHALA_PRINCIPAL_SUBSCRIBES_PER_SECOND", "20"],
            ["KHALA_TOKEN_EXPIRY_WARNING", "30 seconds"]
          ])
        ))
      )
      expect(settings).toMatchObject({
        ...window,
        socketOrigins: ["https://app.example", "https://admin.example"],
        maxSocketsPerOrg: 40,
        maxSocketsPerPrincipal: 4,
        principalSubscribesPerSecond: 20
      })
      const defaults = yield* ServerConfig.SettingsConfig.pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map()))
      )
      expect(defaults.socketOrigins).toBe("*")
      expect(defaults.refusedClientBuilds).toEqual([])
      const outOfRange = yield* Effect.flip(ServerConfig.SettingsConfig.pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["KHALA_MAX_SOCKETS_PER_PRINCIPAL", "0"]])))
      ))
      expect(String(outOfRange)).toContain("KHALA_MAX_SOCKETS_PER_PRINCIPAL")
    }))

  it.live("the official client is refused upgrade_required with the minimums; joins inside the window are served", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveInProcess({ settings: window })
      const jwt = yield* token({ org: "org_a", scopes: [runs] })
      const refusedBefore = yield* joinCount({
        protocolVersion: "1",
        clientBuild: "web-0.8.0",
        outcome: "upgrade_required"
      })
      const cases = [
        { params: { protocol_version: 1, client_build_id: "web-0.8.0" }, reason: "protocol_version" },
        { params: { protocol_version: 2, schema_version: 2 }, reason: "schema_version" },
        { params: { client_build_id: "web-0.9.12", protocol_version: 5 }, reason: "client_build" },
        { params: { client_build_id: "ios-1.0.0" }, reason: "client_build" }
      ]
      for (const { params, reason } of cases) {
        const client = yield* connect({ port: server.port, token: jwt, joinParams: params })
        const reply = yield* client.join()
        expect(reply.status).toBe("error")
        expect(reply.response).toMatchObject({
          code: "upgrade_required",
          reason,
          min_protocol_version: 2,
          min_schema_version: 3
        })
        client.channel.leave()
        yield* client.disconnect
      }
      expect(yield* joinCount({ protocolVersion: "1", clientBuild: "web-0.8.0", outcome: "upgrade_required" })).toBe(
        refusedBefore + 1
      )
      for (const params of [{}, { protocol_version: 2, schema_version: 3, client_build_id: "web-1.0.0" }]) {
        const client = yield* connect({ port: server.port, token: jwt, joinParams: params })
        const reply = yield* client.join()
        expect(reply.status).toBe("ok")
        expect(reply.response.allowed_topics).toEqual([runs])
        yield* client.disconnect
      }
    })))

  it.live("a malformed statement is bad_subscription; a refused second join leaves the first one serving", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveInProcess({ settings: window })
      const raw = yield* openRaw({ port: server.port, token: yield* token({ org: "org_a", scopes: [runs] }) })
      const malformed = [{ protocol_version: "2" }, { schema_version: -1 }, { client_build_id: "" }, {
        client_build_id: "x".repeat(129)
      }, { protocol_version: 2.5 }]
      for (const [i, payload] of malformed.entries()) {
        const reply = yield* raw.request(`m${i}`, `m${i}`, "sync:v1", "phx_join", payload)
        expect(reply[4]).toMatchObject({ status: "error", response: { code: "bad_subscription" } })
      }
      expect((yield* raw.request("j", "j", "sync:v1", "phx_join", { protocol_version: 2 }))[4].status).toBe("ok")
      expect((yield* raw.request("j", "s", "sync:v1", "sync:subscribe", { topics: [runs] }))[4].status).toBe("ok")
      const refused = yield* raw.request("k", "k", "sync:v1", "phx_join", { protocol_version: 1 })
      expect(refused[4].response.code).toBe("upgrade_required")
      expect(raw.frames.some((f) => f[3] === "phx_close")).toBe(false)
      yield* server.publish({ docKey: "r1" })
      yield* raw.waitForFrame("the first join's update", (f) =>
        f[0] === "j" && f[3] === "sync:update_batch" &&
        f[4].updates.length === 1)
    })))
})
