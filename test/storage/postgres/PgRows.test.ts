/**
 * A listing's rows are read by hand when they have the shapes `pg` gives, and through the schema otherwise: both
 * ways must give the same page, and a row of neither shape must be a storage fault naming what is wrong.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import fc from "fast-check"
import type { ListingRow } from "../../../src/storage/postgres/PgRows.js"
import { listingRows } from "../../../src/storage/postgres/PgRows.js"

/** A listed document's columns as `pg` gives them: its key and its JSON text. */
const pgDocument = fc.record({ docKey: fc.string({ minLength: 1 }), json: fc.json() })
type PgDocument = typeof pgDocument extends fc.Arbitrary<infer A> ? A : never

const row = (d: PgDocument, fits = true, head: unknown = "42"): ListingRow => [head, "epoch-1", fits, d.docKey, d.json]

const read = (rows: ReadonlyArray<ListingRow>, limit = 1000) => Effect.runSync(listingRows(rows, limit))

describe("listing rows", () => {
  it("rows as pg gives them are the page's documents, with the head and epoch of the first", () =>
    fc.assert(fc.property(fc.array(pgDocument, { minLength: 1, maxLength: 20 }), (documents) => {
      const page = read(documents.map((d) => row(d)))!
      expect(page.documents).toEqual(documents)
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
        expect(page.documents).toEqual(documents.slice(0, listed))
        expect(page.nextKey).toEqual(
          listed < documents.length ? Option.some(documents[listed - 1]!.docKey) : Option.none()
        )
      })
    ))

  it("another driver's int8 head (a bigint, a number) reads the same", () =>
    fc.assert(fc.property(fc.array(pgDocument, { minLength: 1, maxLength: 10 }), (documents) => {
      const rows = documents.map((d) => row(d))
      for (const head of [42n, 42]) {
        expect(read(rows.map((r) => row({ docKey: r[3] as string, json: r[4] as string }, true, head)))).toEqual(
          read(rows)
        )
      }
    })))

  it("an unknown topic (no head) is no page; a topic without documents is an empty page", () => {
    expect(read([])).toBeUndefined()
    expect(read([[null, null, null, null, null]])).toBeUndefined()
    const empty = read([["7", "epoch-1", null, null, null]])!
    expect(empty.documents).toEqual([])
    expect(empty.watermark).toBe(7)
    expect(empty.nextKey).toEqual(Option.none())
  })

  it("a row of no known shape is a storage fault that says what is wrong", () => {
    const good: PgDocument = { docKey: "a", json: "{}" }
    for (
      const bad of [
        [row(good), row({ ...good, json: {} as never })],
        [row(good), row({ ...good, docKey: null as never })],
        [row(good, true, "1.5")],
        [row(good, true, String(2n ** 53n))],
        [row(good, true, "not a number")]
      ]
    ) {
      const error = Effect.runSync(Effect.flip(listingRows(bad, 10)))
      expect(error._tag).toBe("StorageError")
      expect(error.message).toMatch(/unexpected row from the database/)
    }
  })
})
