/**
 * A listing's rows are read by hand when they have the shapes `pg` gives, and through the schema otherwise: both
 * ways must give the same documents, and a row of neither shape must be a storage fault naming what is wrong.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import fc from "fast-check"
import { ListedFromSql, listedRows, toListed } from "../../../src/storage/postgres/PgRows.js"

const hex = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) => Buffer.from(bytes).toString("hex"))

/** A listing row as `pg` gives it: int8 as a string of digits, int4 as a number. */
const pgRow = fc.record({
  doc_key: fc.string({ minLength: 1 }),
  doc_version: fc.bigInt({ min: 1n, max: 2n ** 53n - 1n }).map(String),
  watermark: fc.bigInt({ min: 1n, max: 2n ** 53n - 1n }).map(String),
  payload_hash: hex,
  payload_bytes: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  payload: fc.option(fc.json(), { nil: null })
})

const bySchema = Schema.decodeUnknownSync(Schema.Array(ListedFromSql))

describe("listing rows", () => {
  it("rows as pg gives them read as the schema decodes them", () =>
    fc.assert(fc.property(fc.array(pgRow, { maxLength: 20 }), (rows) => {
      const listed = Effect.runSync(listedRows(rows))
      expect(listed).toEqual(bySchema(rows).map(toListed))
    })))

  it("another driver's int8 (a bigint, a number) goes through the schema and reads the same", () =>
    fc.assert(fc.property(fc.array(pgRow, { minLength: 1, maxLength: 10 }), fc.nat(9), (rows, at) => {
      const i = at % rows.length
      const other = rows.map((row, j) =>
        j === i ? { ...row, doc_version: BigInt(row.doc_version), watermark: Number(row.watermark) } : row
      )
      expect(Effect.runSync(listedRows(other))).toEqual(Effect.runSync(listedRows(rows)))
    })))

  it("a row of no known shape is a storage fault that says what is wrong", () => {
    const good = { doc_key: "a", doc_version: "1", watermark: "2", payload_hash: "00", payload_bytes: 2, payload: "{}" }
    for (
      const bad of [
        { ...good, doc_version: "1.5" },
        { ...good, watermark: String(2n ** 53n) },
        { ...good, payload: {} },
        { ...good, doc_key: null }
      ]
    ) {
      const error = Effect.runSync(Effect.flip(listedRows([good, bad])))
      expect(error._tag).toBe("StorageError")
      expect(error.message).toMatch(/unexpected row from the database/)
    }
  })
})
