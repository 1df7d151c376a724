import { Effect } from "effect"
import { caller } from "./ipc.js"
import { forkBenchScript } from "./processes.js"
import type { RawServerProtocol } from "./rawServerProcess.js"

/** The raw `ws` baseline server in a process of its own, listening, for as long as the current scope. */
export const rawServer = Effect.gen(function*() {
  const child = yield* forkBenchScript("./rawServerProcess.ts")
  const call = caller<RawServerProtocol>(child)
  const { port } = yield* Effect.promise(() => call("listen", null))
  const pid = child.pid
  if (pid === undefined) return yield* Effect.dieMessage("raw server has no pid")
  return {
    port,
    pid,
    flood: (request: RawServerProtocol["flood"]["request"]) => Effect.promise(() => call("flood", request)),
    coalesce: (request: RawServerProtocol["coalesce"]["request"]) => Effect.promise(() => call("coalesce", request))
  }
})
