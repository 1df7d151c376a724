/**
 * A listing's rows are read by hand when they have the shapes `pg` gives, and through the schema otherwise: both
 * ways must give the same page, and a row of neither shape must be a storage fault naming what is wrong.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Schema } from "effect"
import fc from "fast-check"
import type { ListingRow } from "../../../src/storage/postgres/PgRows.js"
import { ListedFromSql, listingRows, toListed } from "../../../src/storage/postgres/PgRows.js"

const hex = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) => Buffer.from(bytes).toString("hex"))

/** A listed document's columns as `pg` gives them: int8 as a string of digits, int4 as a number. */
const pgDocument = fc.record({
  doc_key: fc.string({ minLength: 1 }),
  doc_version: fc.bigInt({ min: 1n, max: 2n ** 53n - 1n }).map(String),
  watermark: fc.bigInt({ min: 1n, max: 2n ** 53n - 1n }).map(String),
  payload_hash: hex,
  payload_bytes: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  payload: fc.option(fc.json(), { nil: null })
})
type PgDocument = typeof pgDocument extends fc.Arbitrary<infer A> ? A : never

const row = (
  d: PgDocument,
  fits = true,
  head: unknown = "42"
): ListingRow => [
  head,
  "epoch-1",
  fits,
  d.doc_key,
  d.doc_version,
  d.watermark,
  d.payload_hash,
  d.payload_bytes,
  d.payload
]

const bySchema = Schema.decodeUnknownSync(Schema.Array(ListedFromSql))
const read = (rows: ReadonlyArray<ListingRow>, limit = 1000) => Effect.runSync(listingRows(rows, limit))

describe("listing rows", () => {
  it("rows as pg gives them read as the schema decodes them", () =>
    fc.assert(fc.property(fc.array(pgDocument, { minLength: 1, maxLength: 20 }), (documents) => {
      const page = read(documents.map((d) => row(d)))!
      expect(page.documents).toEqual(bySchema(documents).map(toListed))
      expect(page.watermark).toBe(42)
      expect(page.epoch).toBe("epoch-1")
      expect(page.nextKey).toEqual(Option.none())
    })))

  it("the page ends at the limit or at the first row that does not fit, and says where to go on", () =>
    fc.assert(
      fc.property(fc.array(pgDocument, { minLength: 2, maxLength: 20 }), fc.nat(30), fc.nat(30), (documents, l, c) => {
        const limit = 1 + (l % documents.length)
        const cut = 1 + (c % documents.length)
        const page = read(documents.map((d, i) => row(d, i < cut)), limit)!
        const listed = Math.min(limit, cut)
        expect(page.documents.map((d) => d.docKey)).toEqual(documents.slice(0, listed).map((d) => d.doc_key))
        expect(page.nextKey).toEqual(
          listed < documents.length ? Option.some(documents[listed - 1]!.doc_key) : Option.none()
        )
      })
    ))

  it("another driver's int8 (a bigint, a number) reads the same", () =>
    fc.assert(fc.property(fc.array(pgDocument, { minLength: 1, maxLength: 10 }), fc.nat(9), (documents, at) => {
      const i = at % documents.length
      const rows = documents.map((d) => row(d))
      const other = rows.map((r, j): ListingRow =>
        j === i ? [BigInt(42), r[1], r[2], r[3], BigInt(r[4] as string), Number(r[5]), r[6], r[7], r[8]] : r
      )
      expect(read(other)).toEqual(read(rows))
    })))

  it("an unknown topic (no head) is no page; a topic without documents is an empty page", () => {
    expect(read([])).toBeUndefined()
    expect(read([[null, null, null, null, null, null, null, null, null]])).toBeUndefined()
    const empty = read([["7", "epoch-1", null, null, null, null, null, null, null]])!
    expect(empty.documents).toEqual([])
    expect(empty.watermark).toBe(7)
    expect(empty.nextKey).toEqual(Option.none())
  })

  it("a row of no known shape is a storage fault that says what is wrong", () => {
    const good: PgDocument = {
      doc_key: "a",
      doc_version: "1",
      watermark: "2",
      payload_hash: "00",
      payload_bytes: 2,
      payload: "{}"
    }
    for (
      const bad of [
        row({ ...good, doc_version: "1.5" }),
        row({ ...good, watermark: String(2n ** 53n) }),
        row({ ...good, payload: {} as never }),
        row({ ...good, doc_key: null as never })
      ].map((bad) => [row(good), bad]).concat([[row(good, true, "not a number")]])
    ) {
      const error = Effect.runSync(Effect.flip(listingRows(bad, 10)))
      expect(error._tag).toBe("StorageError")
      expect(error.message).toMatch(/unexpected row from the database/)
    }
  })
})
