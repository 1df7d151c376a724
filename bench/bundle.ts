/**
 * Size of the browser client as an app ships it: the Promise client with the IndexedDB store, bundled with its
 * dependencies by esbuild (minified, ESM, browser platform, tree-shaken as any bundler would), then gzipped. The budget
 * is 40 KiB; the Effect service (`KhalaClient`, with streams and layers) is measured beside it, for information.
 */
import { Effect } from "effect"
import { build } from "esbuild"
import { fileURLToPath } from "node:url"
import { gzipSync } from "node:zlib"
import type { Figure } from "./report.js"
import { figure } from "./report.js"

/** The budget of the facade bundle, minified and gzipped, dependencies included. */
export const facadeBudgetBytes = 40 * 1024

const clientEntry = fileURLToPath(new URL("../src/client/index.ts", import.meta.url))

const facadeApp = `
import { createClient, indexedDbStore } from ${JSON.stringify(clientEntry)}
const client = createClient({ url: location.origin, token: () => localStorage.getItem("token") ?? "", store: indexedDbStore() })
const runs = client.subscribe("runtime.run_summaries")
runs.subscribe(() => document.title = String(runs.getSnapshot().size))
client.state.subscribe(() => console.log(client.state.getSnapshot().status))
`

const effectApp = `
import { KhalaClient } from ${JSON.stringify(clientEntry)}
import { Effect, Stream } from "effect"
Effect.runFork(Effect.gen(function*() {
  const client = yield* KhalaClient
  const runs = yield* client.subscribe("runtime.run_summaries")
  yield* Stream.runForEach(runs.changes, (changes) => Effect.log(changes.upserted.length))
}).pipe(Effect.scoped, Effect.provide(KhalaClient.layer({ url: location.origin, token: () => "" }))))
`

export interface BundleSize {
  readonly minifiedBytes: number
  readonly gzippedBytes: number
}

/** Bundles an app's source the way it would be shipped and measures it. */
export const bundleSize = (source: string) =>
  Effect.promise(async (): Promise<BundleSize> => {
    const result = await build({
      stdin: { contents: source, resolveDir: fileURLToPath(new URL("..", import.meta.url)), loader: "ts" },
      bundle: true,
      minify: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      write: false,
      logLevel: "silent"
    })
    const code = result.outputFiles[0]!.contents
    return { minifiedBytes: code.byteLength, gzippedBytes: gzipSync(code, { level: 9 }).byteLength }
  })

/** The facade app's bundle. */
export const facadeBundleSize = bundleSize(facadeApp)

export const bundleScenario = Effect.gen(function*() {
  const facade = yield* facadeBundleSize
  const service = yield* bundleSize(effectApp)
  const kib = (bytes: number) => bytes / 1024
  const figures: Array<Figure> = [
    figure({
      scenario: "browser bundle, createClient + IndexedDB store",
      figure: "minified + gzipped, with dependencies",
      unit: "KiB",
      value: kib(facade.gzippedBytes),
      baseline: "budget",
      baselineValue: kib(facadeBudgetBytes)
    }),
    figure({
      scenario: "browser bundle, KhalaClient Effect service",
      figure: "minified + gzipped, with Effect",
      unit: "KiB",
      value: kib(service.gzippedBytes),
      baseline: "createClient bundle",
      baselineValue: kib(facade.gzippedBytes)
    })
  ]
  if (facade.gzippedBytes > facadeBudgetBytes) {
    return yield* Effect.fail(
      new Error(`the client bundle is ${kib(facade.gzippedBytes).toFixed(1)} KiB, over its 40 KiB budget`)
    )
  }
  return figures
})
