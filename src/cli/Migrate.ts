import { Command } from "@effect/cli"
import { Console, Effect } from "effect"
import { registerCatalog } from "../layers/Core.js"
import { migrate } from "../storage/postgres/Migrations.js"
import { withProgress } from "./Progress.js"
import { layerUnmigrated } from "./Runtime.js"

export const command = Command.make("migrate", {}, () =>
  Effect.gen(function*() {
    const applied = yield* withProgress("migrating the khala schema", migrate)
    yield* registerCatalog
    yield* Console.log(
      applied.length === 0
        ? "schema khala is up to date"
        : `applied migrations: ${applied.map((m) => `${m.id}_${m.name}`).join(", ")}`
    )
  })).pipe(
    Command.withDescription(
      "Create or upgrade the khala schema (safe while other processes run it) and register the catalog's topics"
    ),
    Command.provide(layerUnmigrated)
  )
