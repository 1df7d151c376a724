/**
 * Canonical JSON (protocol.md §5.4): the byte-exact form a document is hashed in.
 *
 * - object keys sorted by Unicode code point at every depth (which is also UTF-8 byte order);
 * - no insignificant whitespace;
 * - strings escaped exactly as `JSON.stringify` escapes them (non-ASCII kept literal);
 * - integral numbers in plain decimal, never with an exponent, whatever their magnitude;
 * - other finite numbers with the digits of their ECMAScript shortest round-trip form, in plain decimal
 *   (`1e-7` prints as `0.0000001`): the form Postgres prints a numeric in, so that `khala.canonical_json` in SQL
 *   and this function agree on every document a plain-SQL publisher and Khala's own publisher both write;
 * - object members whose value is `undefined` are omitted, as `JSON.stringify` omits them, so the hash
 *   matches the document that is actually stored.
 *
 * Anything that is not a JSON value (NaN, ±Infinity, bigint, functions, class instances, cycles,
 * `undefined` outside an object member) fails with a `CanonicalJsonError` instead of hashing
 * something other peers could not reproduce.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"

/**
 * A JSON value.
 *
 * @since 0.1.0
 */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | ReadonlyArray<JsonValue>
  | { readonly [key: string]: JsonValue }

/**
 * Why a value has no canonical JSON form.
 *
 * @since 0.1.0
 */
export class CanonicalJsonError extends Schema.TaggedError<CanonicalJsonError>()("CanonicalJsonError", {
  reason: Schema.Literal("NonFiniteNumber", "UnsupportedValue", "Cycle", "TooDeep"),
  /** JSON Pointer (RFC 6901) of the offending value. */
  path: Schema.String,
  message: Schema.String
}) {}

/**
 * Nesting limit, so a hostile document fails with a typed error instead of overflowing the stack (I9).
 *
 * @since 0.1.0
 */
export const maxDepth = 1000

const isHighSurrogate = (unit: number): boolean => unit >= 0xd800 && unit <= 0xdbff

/**
 * Orders strings by Unicode code point.
 *
 * `Array.prototype.sort` compares UTF-16 code units, which puts astral characters (surrogate pairs,
 * 0xD800–0xDFFF) before BMP characters 0xE000–0xFFFF; code point order puts them after. Unpaired
 * surrogates count as their own code point value.
 *
 * @since 0.1.0
 */
export const compareCodePoints = (a: string, b: string): number => {
  const length = Math.min(a.length, b.length)
  let i = 0
  while (i < length && a.charCodeAt(i) === b.charCodeAt(i)) i++
  if (i === length) return a.length - b.length
  // A shared high surrogate just before the difference starts the code point that differs.
  if (i > 0 && isHighSurrogate(a.charCodeAt(i - 1))) {
    const x = a.codePointAt(i - 1)!
    const y = b.codePointAt(i - 1)!
    if (x !== y) return x - y
  }
  return a.codePointAt(i)! - b.codePointAt(i)!
}

/**
 * Expands ECMAScript exponent notation ("1.5e-7", "1e+21") into plain decimal digits, keeping every digit of the
 * shortest round-trip form, so that the text equals what Postgres prints for the same numeric value.
 */
const plainDecimal = (shortest: string): string => {
  const match = /^(-?)(\d+)(?:\.(\d+))?e([+-]\d+)$/.exec(shortest)
  if (match === null) return shortest
  const [, sign, whole, fraction = "", exponentText] = match
  const digits = whole! + fraction
  const point = whole!.length + Number(exponentText)
  const unsigned = point <= 0
    ? "0." + "0".repeat(-point) + digits
    : point >= digits.length
    ? digits + "0".repeat(point - digits.length)
    : digits.slice(0, point) + "." + digits.slice(point)
  return sign + unsigned
}

// -0 prints as "0", like JSON.stringify. Every number keeps the digits of its shortest round-trip form, integers past
// 1e21 included (their exact binary value would print digits the document never had, and that Postgres never sees).
const formatNumber = (value: number): string => plainDecimal(JSON.stringify(value))

const pointer = (path: ReadonlyArray<string | number>): string =>
  path.map((segment) => "/" + String(segment).replace(/~/g, "~0").replace(/\//g, "~1")).join("")

const describe = (value: unknown): string =>
  value === null ? "null" : typeof value === "object" ? value.constructor?.name ?? "object" : typeof value

/**
 * Renders a JSON value in canonical form.
 *
 * @since 0.1.0
 */
export const canonicalize = (value: unknown): Either.Either<string, CanonicalJsonError> => {
  const out: Array<string> = []
  const path: Array<string | number> = []
  const ancestors = new Set<object>()

  const fail = (reason: CanonicalJsonError["reason"], message: string) =>
    new CanonicalJsonError({ reason, path: pointer(path), message })

  const write = (node: unknown): CanonicalJsonError | undefined => {
    switch (typeof node) {
      case "string":
        out.push(JSON.stringify(node))
        return undefined
      case "boolean":
        out.push(node ? "true" : "false")
        return undefined
      case "number":
        if (!Number.isFinite(node)) return fail("NonFiniteNumber", `${node} has no JSON representation`)
        out.push(formatNumber(node))
        return undefined
      case "object": {
        if (node === null) {
          out.push("null")
          return undefined
        }
        if (ancestors.has(node)) return fail("Cycle", "value contains a reference to one of its ancestors")
        if (path.length >= maxDepth) return fail("TooDeep", `nesting deeper than ${maxDepth}`)
        const isArray = Array.isArray(node)
        const proto: unknown = Object.getPrototypeOf(node)
        if (!isArray && proto !== Object.prototype && proto !== null) {
          return fail("UnsupportedValue", `${describe(node)} is not a plain JSON object`)
        }
        ancestors.add(node)
        const error = isArray ? writeArray(node) : writeObject(node as Record<string, unknown>)
        ancestors.delete(node)
        return error
      }
      default:
        return fail("UnsupportedValue", `${describe(node)} has no JSON representation`)
    }
  }

  const writeArray = (array: ReadonlyArray<unknown>): CanonicalJsonError | undefined => {
    out.push("[")
    for (let i = 0; i < array.length; i++) {
      if (i > 0) out.push(",")
      path.push(i)
      const error = write(array[i])
      path.pop()
      if (error) return error
    }
    out.push("]")
    return undefined
  }

  const writeObject = (object: Record<string, unknown>): CanonicalJsonError | undefined => {
    out.push("{")
    let first = true
    for (const key of Object.keys(object).sort(compareCodePoints)) {
      const member = object[key]
      if (member === undefined) continue
      if (!first) out.push(",")
      first = false
      out.push(JSON.stringify(key), ":")
      path.push(key)
      const error = write(member)
      path.pop()
      if (error) return error
    }
    out.push("}")
    return undefined
  }

  const error = write(value)
  return error ? Either.left(error) : Either.right(out.join(""))
}
