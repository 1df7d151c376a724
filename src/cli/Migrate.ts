import { Command } from "@effect/cli"
import { Console, Effect } from "effect"
import { registerCatalog } from "../layers/Core.js"
import type { MigrationProgress } from "../storage/postgres/Migrations.js"
import { migrateWith } from "../storage/postgres/Migrations.js"
import type { Tracked } from "./Progress.js"
import { withProgress } from "./Progress.js"
import { layerUnmigrated } from "./Runtime.js"

/** A migration run's progress line: which migration of how many runs, or that it waits for another process. */
export const describeMigration = (progress: MigrationProgress | undefined): string => {
  if (progress === undefined) return ""
  switch (progress._tag) {
    case "Locking":
      return "waiting for the migration lock (another process is migrating)"
    case "Applying":
      return `migration ${progress.index} of ${progress.count}: ${progress.migration.id}_${progress.migration.name}`
  }
}

const migrating: Tracked<MigrationProgress | undefined> = {
  label: "migrating the khala schema",
  initial: undefined,
  describe: describeMigration
}

export const command = Command.make("migrate", {}, () =>
  Effect.gen(function*() {
    const applied = yield* withProgress(
      migrating,
      (report) => migrateWith({ onProgress: report })
    )
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
