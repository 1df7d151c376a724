import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, FastCheck as fc, Option } from "effect"
import { createHash } from "node:crypto"
import { canonicalize, compareCodePoints, maxDepth } from "../../src/protocol/CanonicalJson.js"
import * as PayloadHash from "../../src/protocol/PayloadHash.js"
import * as PayloadHashNode from "../../src/protocol/PayloadHashNode.js"
import { hashVectors } from "../support/HashVectors.js"

const vectors = hashVectors

const canonical = (value: unknown): string => Either.getOrThrow(canonicalize(value))

// Code point order by construction: Array.from iterates code points, unpaired surrogates as themselves.
const referenceCompare = (a: string, b: string): number => {
  const x = Array.from(a, (c) => c.codePointAt(0)!)
  const y = Array.from(b, (c) => c.codePointAt(0)!)
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]! - y[i]!
  }
  return x.length - y.length
}

// Plain decimal through BigInt arithmetic: value = mantissa digits × 10^(exponent - fraction length).
const referencePlain = (value: number): string => {
  const [mantissa, exponent = "0"] = JSON.stringify(Math.abs(value)).split("e")
  const [whole, fraction = ""] = mantissa!.split(".")
  const digits = BigInt(whole! + fraction)
  const scale = fraction.length - Number(exponent)
  const sign = value < 0 ? "-" : ""
  if (scale <= 0) return sign + (digits * 10n ** BigInt(-scale)).toString()
  const padded = digits.toString().padStart(scale + 1, "0")
  const text = `${padded.slice(0, -scale)}.${padded.slice(-scale)}`.replace(/\.?0+$/, "")
  return sign + text
}

const referenceCanonical = (value: unknown): string => {
  if (Array.isArray(value)) return `[${value.map(referenceCanonical).join(",")}]`
  if (typeof value === "number") return Object.is(value, -0) ? "0" : referencePlain(value)
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort(referenceCompare)
    return `{${keys.map((k) => `${JSON.stringify(k)}:${referenceCanonical((value as any)[k])}`).join(",")}}`
  }
  return JSON.stringify(value)
}

// Astral characters, the BMP block above the surrogates, unpaired surrogates and escapes: the cases
// where UTF-16 order, code point order and JSON escaping can disagree.
const tricky = [
  "a",
  "b",
  "~",
  "/",
  "\"",
  "\\",
  "\n",
  "\u0000",
  "\u007f",
  "é",
  "\u2028",
  "\ue000",
  "\ufb01",
  "\uffff",
  "\u{10000}",
  "\u{1f600}",
  "\u{10ffff}",
  "\ud800",
  "\udfff"
]
const stringUnit = fc.oneof(fc.constantFrom(...tricky), fc.string({ unit: "binary", minLength: 1, maxLength: 1 }))
const json = fc.jsonValue({ stringUnit, maxDepth: 5 })

// Rebuilds every object with its keys in a seeded random order.
const shuffleKeys = (value: unknown, seed: number): unknown => {
  let state = seed >>> 0
  const next = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0)
  const go = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(go)
    if (node === null || typeof node !== "object") return node
    const entries = Object.entries(node)
    for (let i = entries.length - 1; i > 0; i--) {
      const j = next() % (i + 1)
      ;[entries[i], entries[j]] = [entries[j]!, entries[i]!]
    }
    return Object.fromEntries(entries.map(([k, v]) => [k, go(v)]))
  }
  return go(value)
}

describe("payload hash vectors", () => {
  it("the vector file is present and non-empty", () => {
    expect(vectors.length).toBeGreaterThan(0)
  })

  describe.each(vectors)("$name", (vector) => {
    it("canonical JSON", () => {
      expect(canonicalize(vector.payload)).toStrictEqual(Either.right(vector.canonical_json))
    })

    it("sha256, portable and node:crypto", () => {
      expect(PayloadHash.payloadHash(vector.payload)).toStrictEqual(Either.right(vector.sha256))
      expect(PayloadHashNode.payloadHash(vector.payload)).toStrictEqual(Either.right(vector.sha256))
      expect(PayloadHash.payloadHashOfCanonical(vector.canonical_json)).toBe(vector.sha256)
    })

    it.effect("sha256, Web Crypto", () =>
      Effect.gen(function*() {
        expect(yield* PayloadHash.digest(vector.payload)).toBe(vector.sha256)
      }))

    it("raw bytes are the 32-byte digest the hex renders", () => {
      const bytes = Either.getOrThrow(PayloadHash.payloadHashBytes(vector.payload))
      expect(bytes).toHaveLength(32)
      expect(PayloadHash.parse(vector.sha256)).toStrictEqual(Option.some(bytes))
      expect(PayloadHash.format(bytes)).toBe(vector.sha256)
      expect(Either.getOrThrow(PayloadHashNode.payloadHashBytes(vector.payload))).toStrictEqual(bytes)
    })
  })
})

describe("CanonicalJson", () => {
  it("orders astral keys by code point, not by UTF-16 code unit", () => {
    // U+FB01 sorts before U+1F600 by code point, after its surrogate 0xD83D by code unit.
    const value = { "\u{1f600}": 2, "\ufb01": 1, "a": 0 }
    expect(Object.keys(value).sort()).toStrictEqual(["a", "\u{1f600}", "\ufb01"])
    expect(canonical(value)).toBe("{\"a\":0,\"\ufb01\":1,\"\u{1f600}\":2}")
    // Code point order is UTF-8 byte order.
    const utf8Sorted = Object.keys(value).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    expect(Object.keys(value).sort(compareCodePoints)).toStrictEqual(utf8Sorted)
  })

  it("orders a shared high surrogate followed by different units by code point", () => {
    expect(compareCodePoints("\ud83d\ude00", "\ud83d\ude01")).toBeLessThan(0)
    expect(compareCodePoints("\ud83d", "\ud83d\ude00")).toBeLessThan(0)
    expect(compareCodePoints("\ud83da", "\ud83d\ude00")).toBeLessThan(0)
    expect(compareCodePoints("\ud800", "\ue000")).toBeLessThan(0)
    expect(compareCodePoints("\u{10000}", "\ue000")).toBeGreaterThan(0)
  })

  it("prints integers in plain decimal at any magnitude, with the digits of their shortest form", () => {
    // 2 ** 70 is 1180591620717411303424 exactly; its shortest round-trip form is 1.1805916207174113e+21
    expect(canonical([0, -0, 1e20, 1e21, -1e21, 2 ** 70, Number.MAX_VALUE])).toBe(
      `[0,0,100000000000000000000,1000000000000000000000,-1000000000000000000000,1180591620717411300000,` +
        `17976931348623157${"0".repeat(292)}]`
    )
  })

  it("prints other numbers with their shortest round-trip digits in plain decimal", () => {
    expect(canonical([1.5, -0.1, 1e-7, 123.456, -1.25e-10, 5e-324])).toBe(
      `[1.5,-0.1,0.0000001,123.456,-0.000000000125,0.${"0".repeat(323)}5]`
    )
  })

  it("escapes strings as JSON.stringify does", () => {
    const text = "\u0000\u001f\"\\/\u2028\ud800é\u{1f600}"
    expect(canonical(text)).toBe(JSON.stringify(text))
  })

  it("omits undefined object members, as JSON.stringify does", () => {
    expect(canonical({ b: undefined, a: 1 })).toBe("{\"a\":1}")
  })

  it("keeps __proto__ as an ordinary key", () => {
    expect(canonical(JSON.parse("{\"__proto__\":1,\"a\":2}"))).toBe("{\"__proto__\":1,\"a\":2}")
  })

  const rejected: ReadonlyArray<[string, unknown, string, string]> = [
    ["NaN", { a: [1, Number.NaN] }, "NonFiniteNumber", "/a/1"],
    ["Infinity", { x: Number.POSITIVE_INFINITY }, "NonFiniteNumber", "/x"],
    ["bigint", { "a/b": 1n }, "UnsupportedValue", "/a~1b"],
    ["Date", { when: new Date(0) }, "UnsupportedValue", "/when"],
    ["Map", new Map(), "UnsupportedValue", ""],
    ["function", [() => 1], "UnsupportedValue", "/0"],
    ["undefined in an array", [undefined], "UnsupportedValue", "/0"],
    ["undefined at the top", undefined, "UnsupportedValue", ""]
  ]
  it.each(rejected)("rejects %s with a typed error", (_, value, reason, path) => {
    const result = canonicalize(value)
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) {
      expect(result.left._tag).toBe("CanonicalJsonError")
      expect(result.left.reason).toBe(reason)
      expect(result.left.path).toBe(path)
    }
  })

  it("rejects cycles but accepts shared references", () => {
    const shared = { x: 1 }
    expect(canonical({ a: shared, b: [shared] })).toBe("{\"a\":{\"x\":1},\"b\":[{\"x\":1}]}")
    const cyclic: Record<string, unknown> = {}
    cyclic.self = { again: cyclic }
    const result = canonicalize(cyclic)
    expect(Either.isLeft(result) && result.left.reason).toBe("Cycle")
  })

  it("rejects nesting beyond the limit instead of overflowing the stack", () => {
    let deep: unknown = 0
    for (let i = 0; i < 100_000; i++) deep = [deep]
    const result = canonicalize(deep)
    expect(Either.isLeft(result) && result.left.reason).toBe("TooDeep")
    let ok: unknown = 0
    for (let i = 0; i < maxDepth; i++) ok = [ok]
    expect(Either.isRight(canonicalize(ok))).toBe(true)
  })

  it.prop("is invariant under key reordering", [json, fc.integer()], ([value, seed]) => {
    expect(canonical(shuffleKeys(value, seed))).toBe(canonical(value))
  })

  it.prop("parses back to an equal value and is a fixed point", [json], ([value]) => {
    const text = canonical(value)
    // JSON itself maps -0 to 0; otherwise the round trip is exact.
    expect(JSON.parse(text)).toStrictEqual(JSON.parse(JSON.stringify(value)))
    expect(canonical(JSON.parse(text))).toBe(text)
  })

  it.prop("matches a reference implementation", [json], ([value]) => {
    expect(canonical(value)).toBe(referenceCanonical(value))
  })

  const text = fc.string({ unit: stringUnit })
  it.prop("compares code points like the reference", [text, text], ([a, b]) => {
    expect(Math.sign(compareCodePoints(a, b))).toBe(Math.sign(referenceCompare(a, b)))
    // Antisymmetric (a sum, so that +0 and -0 compare equal).
    expect(Math.sign(compareCodePoints(b, a)) + Math.sign(referenceCompare(a, b))).toBe(0)
  })
})

describe("PayloadHash", () => {
  it.effect.prop("all backends agree", [json], ([value]) =>
    Effect.gen(function*() {
      const expected = PayloadHash.format(createHash("sha256").update(canonical(value), "utf8").digest())
      expect(PayloadHash.payloadHash(value)).toStrictEqual(Either.right(expected))
      expect(PayloadHashNode.payloadHash(value)).toStrictEqual(Either.right(expected))
      expect(yield* PayloadHash.digest(value)).toBe(expected)
    }))

  it("fails hashing a value without canonical form", () => {
    const result = PayloadHash.payloadHash({ n: Number.NaN })
    expect(Either.isLeft(result) && result.left.reason).toBe("NonFiniteNumber")
  })

  it.effect("fails digesting a value without canonical form, in the error channel", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(PayloadHash.digest({ n: Number.NaN }))
      expect(error.reason).toBe("NonFiniteNumber")
    }))

  it("parses only the canonical rendering", () => {
    const hex = "a".repeat(64)
    expect(Option.isSome(PayloadHash.parse(`sha256:${hex}`))).toBe(true)
    expect(PayloadHash.parse(`sha256:${hex.toUpperCase()}`)).toStrictEqual(Option.none())
    expect(PayloadHash.parse(hex)).toStrictEqual(Option.none())
    expect(PayloadHash.parse(`sha256:${hex}0`)).toStrictEqual(Option.none())
  })
})
