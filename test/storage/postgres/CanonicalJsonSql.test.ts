import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Either, Layer, Runtime } from "effect"
import fc from "fast-check"
import { canonicalize } from "../../../src/protocol/CanonicalJson.js"
import { payloadHash } from "../../../src/protocol/PayloadHashNode.js"
import { migrate } from "../../../src/storage/postgres/Migrations.js"
import { hashVectors } from "../../support/HashVectors.js"
import { layerTestDatabase, postgresAvailable } from "../../support/Postgres.js"

const vectors = hashVectors

const canonicalInSql = (payload: unknown) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ canonical: string; hash: Uint8Array }>`
      select khala.canonical_json(${JSON.stringify(payload)}::jsonb) as canonical,
             khala.payload_hash(${JSON.stringify(payload)}::jsonb) as hash
    `.pipe(Effect.map((rows) => rows[0]!)))

// What jsonb can hold: no NUL and no unpaired surrogates in strings (Khala refuses those before they reach SQL).
const jsonbString = fc.string({ unit: "grapheme" }).filter((s) => !s.includes("\u0000"))
const number = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(1e-7, 1.5e300, 2 ** 70, 1e21, 0.1, -0.000001)
)
const document = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    jsonbString,
    number,
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(jsonbString, tie("value"), { maxKeys: 4 })
  )
})).value

const migrated = Layer.effectDiscard(migrate).pipe(Layer.provideMerge(layerTestDatabase()), Layer.orDie)

describe.skipIf(!postgresAvailable)("canonical JSON in SQL (khala.canonical_json)", () => {
  layer(migrated, { excludeTestServices: true })((it) => {
    it.effect("reproduces every shared vector", () =>
      Effect.forEach(vectors, (vector) =>
        Effect.map(canonicalInSql(vector.payload), ({ canonical, hash }) => {
          expect(canonical, vector.name).toBe(vector.canonical_json)
          expect(`sha256:${Buffer.from(hash).toString("hex")}`, vector.name).toBe(vector.sha256)
        })))

    it.effect("agrees with the TypeScript canonical form on any document, so both publish paths hash alike", () =>
      Effect.gen(function*() {
        const runtime = yield* Effect.runtime<SqlClient.SqlClient>()
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(document, (payload) =>
              Runtime.runPromise(runtime)(
                Effect.map(canonicalInSql(payload), ({ canonical, hash }) => {
                  expect(canonical).toBe(Either.getOrThrow(canonicalize(payload)))
                  expect(`sha256:${Buffer.from(hash).toString("hex")}`).toBe(Either.getOrThrow(payloadHash(payload)))
                })
              )),
            { numRuns: 300 }
          )
        )
      }))
  })
})
