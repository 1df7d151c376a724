/**
 * A tiny runtime: it owns runs in its own table (the authority) and projects each run's summary into Khala in the
 * same transaction, so a client never sees a summary of a run that was rolled back.
 */
import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer, Schema } from "effect"
import { Publisher } from "khala"

export class Run extends Schema.Class<Run>("Run")({
  id: Schema.String,
  orgId: Schema.String,
  status: Schema.Literal("queued", "running", "succeeded", "failed"),
  /** Bumped by every change of the run: Khala keeps the newest version of each document. */
  version: Schema.Int
}) {}

/** The summary document clients receive on `runtime.run_summaries`. */
export const projectRun = (run: Run) =>
  Effect.flatMap(Publisher, (publisher) =>
    publisher.publish({
      topic: "runtime.run_summaries",
      docKey: `${run.orgId}:${run.id}`,
      docVersion: run.version,
      orgId: run.orgId,
      payload: { run_id: run.id, status: run.status }
    }))

export class Runs extends Context.Tag("example/Runs")<Runs, {
  /** Records the run's new state and publishes its summary, atomically. */
  readonly save: (run: Run) => Effect.Effect<void, unknown>
}>() {}

export const migrate = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql`create table if not exists example_runs (
    id text primary key, org_id text not null, status text not null, version bigint not null
  )`)

export const layer = Layer.effect(
  Runs,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const publisher = yield* Publisher
    return Runs.of({
      save: (run) =>
        sql.withTransaction(
          Effect.gen(function*() {
            yield* sql`
              insert into example_runs (id, org_id, status, version)
              values (${run.id}, ${run.orgId}, ${run.status}, ${run.version})
              on conflict (id) do update set status = excluded.status, version = excluded.version
            `
            // Publish last: the topic's sequence row stays locked until this transaction commits.
            yield* projectRun(run).pipe(Effect.provideService(Publisher, publisher))
          })
        )
    })
  })
)
