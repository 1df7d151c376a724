/**
 * Migrations report where they are: waiting for the lock, then each pending migration in turn with how many there
 * are, so `khala migrate` can show which one of how many runs.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { MigrationProgress } from "../../../src/storage/postgres/Migrations.js"
import { migrateWith, migrations } from "../../../src/storage/postgres/Migrations.js"
import { layerTestDatabase, postgresAvailable } from "../../support/Postgres.js"

const describeStep = (progress: MigrationProgress) =>
  progress._tag === "Locking" ? "locking" : `${progress.index}/${progress.count} ${progress.migration.name}`

describe.skipIf(!postgresAvailable)("migration progress", () => {
  it.live(
    "a fresh database: the lock, then every migration in order, each with the count",
    () =>
      Effect.gen(function*() {
        const steps: Array<string> = []
        const record = (progress: MigrationProgress) => Effect.sync(() => void steps.push(describeStep(progress)))
        const applied = yield* migrateWith({ onProgress: record })
        expect(applied).toEqual(migrations)
        expect(steps).toEqual([
          "locking",
          ...migrations.map((m, i) => `${i + 1}/${migrations.length} ${m.name}`)
        ])

        // up to date: the lock, and nothing to run
        steps.length = 0
        expect(yield* migrateWith({ onProgress: record })).toEqual([])
        expect(steps).toEqual(["locking"])
      }).pipe(Effect.provide(layerTestDatabase()), Effect.orDie),
    { timeout: 180_000 }
  )
})
