/**
 * A tiny runtime's domain: it owns runs in its own table (the authority) and projects each run's summary into Khala
 * in the same transaction, so a client never sees a summary of a run that was rolled back.
 */
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Context, Effect, Layer, Option, Schema } from "effect"
import type { PublishError } from "khala"
import { Publisher } from "khala"
import { randomUUID } from "node:crypto"

/** The runtime's own topic, registered in Khala's catalog by the composition (see `Server.ts`). */
export const topic = "example.runs"

export const Status = Schema.Literal("queued", "running", "succeeded", "failed")

export class Run extends Schema.Class<Run>("Run")({
  id: Schema.String,
  orgId: Schema.String,
  name: Schema.String,
  status: Status,
  /** Bumped by every change of the run: Khala keeps the newest version of each document. */
  version: Schema.Int
}) {}

/** A run of that name already exists in its org. */
export class DuplicateName extends Schema.TaggedError<DuplicateName>()("DuplicateName", { name: Schema.String }) {}

/** No run has that id. */
export class RunNotFound extends Schema.TaggedError<RunNotFound>()("RunNotFound", { id: Schema.String }) {}

/** The summary document clients receive; doc keys carry the org, as every key shared by orgs should. */
export const projectRun = (run: Run) =>
  Effect.flatMap(Publisher, (publisher) =>
    publisher.publish({
      topic,
      docKey: `${run.orgId}:${run.id}`,
      docVersion: run.version,
      orgId: run.orgId,
      payload: { run_id: run.id, name: run.name, status: run.status }
    }))

export class Runs extends Context.Tag("example/Runs")<Runs, {
  /** Records a new run and publishes its summary, atomically. */
  readonly create: (run: { readonly orgId: string; readonly name: string }) => Effect.Effect<
    Run,
    DuplicateName | PublishError | SqlError
  >
  /** Records a run's new status and publishes its summary, atomically. */
  readonly update: (id: string, status: Run["status"]) => Effect.Effect<Run, RunNotFound | PublishError | SqlError>
}>() {}

export const migrate = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql`create table if not exists example_runs (
    id text primary key,
    org_id text not null,
    name text not null,
    status text not null,
    version bigint not null
  )`)

const RunRow = Schema.Struct({
  id: Schema.String,
  org_id: Schema.String,
  name: Schema.String,
  status: Status,
  version: Schema.NumberFromString
})
const decodeRows = Schema.decodeUnknown(Schema.Array(RunRow))
const toRun = (row: typeof RunRow.Type) =>
  new Run({ id: row.id, orgId: row.org_id, name: row.name, status: row.status, version: row.version })

export const layer = Layer.effect(
  Runs,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const publisher = yield* Publisher
    const publish = (run: Run) => Effect.provideService(projectRun(run), Publisher, publisher)
    const rows = (statement: Effect.Effect<ReadonlyArray<unknown>, SqlError>) =>
      Effect.flatMap(statement, (found) => Effect.orDie(decodeRows(found)))
    return Runs.of({
      create: ({ name, orgId }) =>
        sql.withTransaction(Effect.gen(function*() {
          const run = new Run({ id: randomUUID(), orgId, name, status: "queued", version: 1 })
          yield* sql`insert into example_runs (id, org_id, name, status, version)
                     values (${run.id}, ${run.orgId}, ${run.name}, ${run.status}, ${run.version})`
          // Publish last among the writes: the topic's sequence row stays locked until this transaction commits.
          yield* publish(run)
          // The runtime's invariants are checked over what the transaction wrote, as late as a deferred constraint
          // would be: a refusal here rolls back the run and its published summary together, and no client sees it.
          const named = yield* sql`select id from example_runs where org_id = ${orgId} and name = ${name}`
          if (named.length > 1) return yield* new DuplicateName({ name })
          return run
        })),
      update: (id, status) =>
        sql.withTransaction(Effect.gen(function*() {
          const updated = yield* rows(sql`
            update example_runs set status = ${status}, version = version + 1 where id = ${id}
            returning id, org_id, name, status, version::text as version`)
          const run = yield* Option.match(Option.fromNullable(updated[0]), {
            onNone: () => Effect.fail(new RunNotFound({ id })),
            onSome: (row) => Effect.succeed(toRun(row))
          })
          yield* publish(run)
          return run
        }))
    })
  })
)
