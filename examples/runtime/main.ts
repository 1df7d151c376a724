/**
 * Runs the example runtime on the database the environment names (DATABASE_URL, else the embedded one):
 *   node --import tsx examples/runtime/main.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"
import { Journal, KhalaPg } from "khala"
import * as Runs from "./Runs.js"

const program = Effect.gen(function*() {
  yield* Runs.migrate
  const runs = yield* Runs.Runs
  yield* runs.save(new Runs.Run({ id: "run_1", orgId: "org_a", status: "running", version: 1 }))
  yield* runs.save(new Runs.Run({ id: "run_1", orgId: "org_a", status: "succeeded", version: 2 }))
  const page = yield* (yield* Journal).read("runtime.run_summaries", 0, 100)
  for (const row of page.rows) yield* Console.log(row.watermark, row.docKey, JSON.stringify(row.payload))
})

program.pipe(
  Effect.provide(Runs.layer.pipe(Layer.provideMerge(KhalaPg.layerConfig()))),
  NodeRuntime.runMain
)
