import { Effect, Layer, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import pg from "pg"
import * as PgClientGated from "../../src/storage/postgres/PgClientGated.js"

/** The server tests create their databases on; trust auth on the local cluster by default. */
export const adminUrl = process.env["KHALA_TEST_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"

const probe = async (): Promise<string | undefined> => {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 })
  try {
    await client.connect()
    await client.query("select 1")
    return undefined
  } catch (error) {
    return error instanceof Error ? error.message : String(error)
  } finally {
    await client.end().catch(() => undefined)
  }
}

const unreachable = await probe()
if (unreachable !== undefined) {
  if (process.env["CI"] === "true") {
    throw new Error(`Postgres is required in CI but ${adminUrl} is unreachable: ${unreachable}`)
  }
  console.warn(
    `Skipping Postgres tests: ${adminUrl} is unreachable (${unreachable}). The memory-layer suite still runs.`
  )
}

/** Whether Postgres tests run here; in CI an unreachable Postgres fails the run instead of skipping. */
export const postgresAvailable = unreachable === undefined

const withAdmin = <A>(f: (client: pg.Client) => Promise<A>) =>
  Effect.acquireUseRelease(
    Effect.promise(async () => {
      const client = new pg.Client({ connectionString: adminUrl })
      await client.connect()
      return client
    }),
    (client) => Effect.promise(() => f(client)),
    (client) => Effect.promise(() => client.end())
  )

export const databaseUrl = (name: string) => {
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return url.toString()
}

/** A fresh, empty database for the scope, dropped at its end. */
export const testDatabase = Effect.acquireRelease(
  Effect.gen(function*() {
    const name = `khala_test_${randomBytes(6).toString("hex")}`
    yield* withAdmin((client) => client.query(`create database ${name}`))
    return { name, url: databaseUrl(name) }
  }),
  ({ name }) => withAdmin((client) => client.query(`drop database if exists ${name} with (force)`))
)

/** An `SqlClient` (and `PgClient`) on the database at `url`. */
export const layerDatabase = (url: string, options?: { readonly maxConnections?: number }) =>
  PgClientGated.layer({ url: Redacted.make(url), maxConnections: options?.maxConnections ?? 10 })

/** An `SqlClient` on a fresh database of its own. */
export const layerTestDatabase = (options?: { readonly maxConnections?: number }) =>
  Layer.unwrapScoped(
    Effect.map(testDatabase, ({ url }) =>
      PgClientGated.layer({ url: Redacted.make(url), maxConnections: options?.maxConnections ?? 10 }))
  )
