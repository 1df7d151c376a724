/**
 * Khala's delivery server (socket and hydration) in the test's own process, on the memory layers and a free port: for server tests that need
 * no separate process (faster than `khala serve`, and the test can publish through the runtime's `Publisher`).
 */
import { HttpServer } from "@effect/platform"
import type { Context, Scope } from "effect"
import { Effect, identity, Layer } from "effect"
import * as AuthJose from "../../src/auth/AuthJose.js"
import type { KhalaServices } from "../../src/layers/Core.js"
import * as KhalaMemory from "../../src/layers/KhalaMemory.js"
import type { Catalog, Options as CatalogOptions } from "../../src/protocol/TopicCatalog.js"
import * as TopicCatalogModule from "../../src/protocol/TopicCatalog.js"
import { TopicCatalog } from "../../src/protocol/TopicCatalog.js"
import * as KhalaServer from "../../src/server/KhalaServer.js"
import type { ServerSettings } from "../../src/server/ServerConfig.js"
import type { PublishUpdate } from "../../src/services/Publisher.js"
import { Publisher } from "../../src/services/Publisher.js"
import type { Revocations } from "../../src/services/Revocations.js"
import type { TokenSigner, TokenVerifier } from "../../src/services/TokenVerifier.js"
import { hsKeys } from "./Khala.js"

export interface InProcessOptions {
  readonly settings?: Partial<ServerSettings>
  readonly catalog?: CatalogOptions
  /** The token verifier; default the keyring of `hsKeys`, so tokens of `Khala.token` verify. */
  readonly verifier?: Layer.Layer<TokenVerifier>
  /** Replaces the catalog the server resolves topics with (the runtime supplies it; a test may wrap it). */
  readonly wrapCatalog?: (catalog: Catalog) => Catalog
  /** Timeouts of the Node HTTP server (`KhalaServer.nodeServer`). */
  readonly http?: Omit<KhalaServer.Listen, "port" | "host">
  /**
   * The durable core and catalog to serve (for example `KhalaPg` on a test database); default the memory layers with
   * `catalog` and `wrapCatalog`, which are then ignored.
   */
  readonly core?: Layer.Layer<KhalaServices | Revocations | TopicCatalog, never, Scope.Scope>
}

export interface InProcessServer {
  readonly port: number
  readonly services: Context.Context<KhalaServices | Revocations | TopicCatalog>
  /** Publishes through the runtime's `Publisher`; the watermark, or null when the version was not newer. */
  readonly publish: (update: Partial<PublishUpdate> & { readonly docKey: string }) => Effect.Effect<number | null>
}

const encoder = new TextEncoder()

/** The test keyring as `AuthJose` keys. */
export const authLayer: Layer.Layer<TokenVerifier | TokenSigner> = AuthJose.layer([
  { kid: hsKeys[0].kid, secret: encoder.encode(hsKeys[0].secret) },
  { kid: hsKeys[1].kid, secret: encoder.encode(hsKeys[1].secret) }
])

/** Serves the socket on a free loopback port over fresh memory layers; the scope stops the server. */
export const serveInProcess = (
  options: InProcessOptions = {}
): Effect.Effect<InProcessServer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const wrap = options.wrapCatalog ?? identity
    const catalog = Layer.effect(TopicCatalog, Effect.map(TopicCatalogModule.make(options.catalog ?? {}), wrap))
    const core: Layer.Layer<KhalaServices | Revocations | TopicCatalog, unknown, Scope.Scope> = options.core ??
      KhalaMemory.layerWith.pipe(Layer.provideMerge(catalog))
    const server = HttpServer.serve(KhalaServer.syncRouter).pipe(
      Layer.provide(KhalaServer.layerSocket(options.settings ?? {})),
      Layer.provide(options.verifier ?? authLayer),
      Layer.provideMerge(core),
      Layer.provideMerge(KhalaServer.nodeServer({ ...options.http, port: 0 }))
    )
    const context = yield* Layer.build(server).pipe(Effect.orDie)
    const http = yield* Effect.provide(HttpServer.HttpServer, context)
    const port = http.address._tag === "TcpAddress" ? http.address.port : 0
    const publish: InProcessServer["publish"] = (update) =>
      Effect.flatMap(Publisher, (publisher) =>
        publisher.publish({
          topic: "runtime.run_summaries",
          docVersion: 1,
          orgId: "org_a",
          payload: {},
          ...update
        })).pipe(
          Effect.map((outcome) => (outcome._tag === "Appended" ? outcome.watermark : null)),
          Effect.provide(context),
          Effect.orDie
        )
    return { port, services: context, publish }
  })
