/**
 * The Node client of the README works as written on the Node version the project supports (`phoenix` with the `ws`
 * transport): the snippet is taken from the README itself and run as a script against a server.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { serveInProcess } from "../support/InProcess.js"
import { token } from "../support/Khala.js"
import { waitUntil } from "../support/PhoenixClient.js"

const readme = new URL("../../README.md", import.meta.url)
// beside the project's node_modules, so that the script's imports resolve as in a project that installed them
const scratch = new URL("../../node_modules/.cache/khala-readme/", import.meta.url)

/** The README's code block that starts with `// client.mjs`. */
const clientSnippet = () => {
  const block = /```js\n(\/\/ client\.mjs\n[\s\S]*?)```/.exec(readFileSync(readme, "utf8"))
  if (block === null) throw new Error("README has no client.mjs snippet")
  return block[1]!
}

describe("the README's Node client", () => {
  it.live("runs as written and prints the updates it receives", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveInProcess()
      yield* server.publish({ docKey: "org_a:run_1", payload: { status: "running" } })
      mkdirSync(scratch, { recursive: true })
      const script = new URL("client.mjs", scratch)
      writeFileSync(script, clientSnippet())
      let stdout = ""
      let stderr = ""
      const child = yield* Effect.acquireRelease(
        Effect.gen(function*() {
          const env = {
            ...process.env,
            KHALA_URL: `ws://127.0.0.1:${server.port}/socket`,
            KHALA_TOKEN: yield* token({ org: "org_a", scopes: ["runtime.run_summaries"] })
          }
          const child = spawn(process.execPath, [script.pathname], { env, stdio: ["ignore", "pipe", "pipe"] })
          child.stdout.on("data", (chunk) => (stdout += chunk))
          child.stderr.on("data", (chunk) => (stderr += chunk))
          return child
        }),
        (child) => Effect.sync(() => child.kill("SIGKILL"))
      )
      yield* server.publish({ docKey: "org_a:run_2", payload: { status: "queued" } }).pipe(Effect.delay("500 millis"))
      yield* waitUntil("the script to print both updates", () => stdout.trim().split("\n").length >= 2, {
        timeoutMs: 15_000,
        detail: () => ({ stdout, stderr, exit: child.exitCode })
      })
      const printed = stdout.trim().split("\n").map((line) => JSON.parse(line))
      expect(printed).toMatchObject([
        { doc_key: "org_a:run_1", payload: { status: "running" }, watermark: 1 },
        { doc_key: "org_a:run_2", payload: { status: "queued" }, watermark: 2 }
      ])
    })), { timeout: 90_000 })
})
