/**
 * Fixtures of the end-to-end server tests: a `khala serve` process on a database of its own, tokens signed in
 * process (the same HS256 keyring the server is given), and a plain-SQL publisher on the server's database.
 */
import { Effect } from "effect"
import { SignJWT } from "jose"
import { randomUUID } from "node:crypto"
import pg from "pg"
import { startServer, tempDir } from "./Processes.js"

/** The keyring every test server is given: `k1` signs, `k0` is a previous key that still verifies. */
export const hsKeys = [
  { kid: "k1", secret: "khala-e2e-current-secret-0123456789abcdef" },
  { kid: "k0", secret: "khala-e2e-previous-secret-0123456789abcdef" }
] as const

/** Environment of `khala serve` and the CLI on a test database. */
export const khalaEnv = (databaseUrl: string, dataDir: string, extra: Record<string, string> = {}) => ({
  DATABASE_URL: databaseUrl,
  KHALA_DATA_DIR: dataDir,
  KHALA_AUTH_HS256_KEYS: hsKeys.map((k) => `${k.kid}:${k.secret}`).join(","),
  KHALA_POLL_INTERVAL_MS: "10",
  // a stopping test server drains its sockets quickly (the default window is 10 s)
  KHALA_DRAIN_WINDOW: "500 millis",
  ...extra
})

/** Starts `khala serve` on the database (the scope kills it); returns the server and the env the CLI needs. */
export const startKhala = (databaseUrl: string, extra: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const env = khalaEnv(databaseUrl, yield* tempDir, extra)
    const server = yield* startServer(env)
    return { server, env }
  })

export interface TokenOptions {
  readonly org: string
  readonly scopes: ReadonlyArray<string> | string
  readonly sub?: string
  /** Seconds until `exp`; negative for an expired token. Default one hour. */
  readonly ttlSeconds?: number
  readonly kid?: string
  /** The HMAC secret; default that of `kid` (or `k1`) in `hsKeys`. */
  readonly secret?: string
}

/** An HS256 token as `khala token` makes them (claims `oa_org_id`, `oa_sync_scopes`). */
export const signToken = (options: TokenOptions): Promise<string> => {
  const kid = options.kid ?? "k1"
  const secret = options.secret ?? hsKeys.find((k) => k.kid === kid)?.secret ?? hsKeys[0].secret
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT({
    oa_org_id: options.org,
    oa_sync_scopes: typeof options.scopes === "string" ? options.scopes : [...options.scopes]
  })
    .setProtectedHeader({ alg: "HS256", typ: "JWT", kid })
    .setSubject(options.sub ?? "user-1")
    .setJti(randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(now + (options.ttlSeconds ?? 3600))
    .sign(new TextEncoder().encode(secret))
}

/** `signToken` as an Effect. */
export const token = (options: TokenOptions) => Effect.promise(() => signToken(options))

export interface SqlUpdate {
  readonly topic?: string
  readonly docKey: string
  readonly docVersion?: number
  readonly orgId?: string
  readonly payload: unknown
  readonly pointer?: boolean
}

export interface SqlPublisher {
  readonly client: pg.Client
  /** `select khala.publish(...)`: the watermark, or null when the version was not newer. */
  readonly publish: (update: SqlUpdate) => Effect.Effect<number | null>
  /** Publishes one after the other; returns the watermarks. */
  readonly publishAll: (updates: ReadonlyArray<SqlUpdate>) => Effect.Effect<Array<number | null>>
  /** The topic's head (`next_watermark`). */
  readonly head: (topic: string) => Effect.Effect<number>
}

/**
 * Plain-SQL publishing on a migrated database (start a server on it first): the path a runtime in another
 * process or language takes; subscribers see these rows through the servers' polls.
 */
export const sqlPublisher = (databaseUrl: string) =>
  Effect.map(
    Effect.acquireRelease(
      Effect.promise(async () => {
        const client = new pg.Client({ connectionString: databaseUrl })
        await client.connect()
        return client
      }),
      (client) => Effect.promise(() => client.end().catch(() => undefined))
    ),
    (client): SqlPublisher => {
      const publish = (u: SqlUpdate) =>
        Effect.promise(() =>
          client.query<{ w: string | null }>(
            "select khala.publish($1, $2, $3, $4, $5::jsonb, $6) as w",
            [
              u.topic ?? "runtime.run_summaries",
              u.docKey,
              u.docVersion ?? 1,
              u.orgId ?? "org_a",
              JSON.stringify(u.payload),
              u.pointer ?? false
            ]
          )
        ).pipe(Effect.map((r) => (r.rows[0]?.w == null ? null : Number(r.rows[0].w))))
      return {
        client,
        publish,
        publishAll: (updates) => Effect.forEach(updates, publish),
        head: (topic) =>
          Effect.promise(() =>
            client.query<{ h: string }>("select next_watermark as h from khala.sync_topic_sequences where topic = $1", [
              topic
            ])
          ).pipe(Effect.map((r) => Number(r.rows[0]?.h ?? 0)))
      }
    }
  )

/** `[from, from + 1, ..., to]`. */
export const range = (from: number, to: number): Array<number> =>
  Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i)
