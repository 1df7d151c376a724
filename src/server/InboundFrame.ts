/**
 * Cheap judgements of a client frame before it is parsed (protocol.md §5, I9): the head of a frame (its join_ref, ref,
 * topic and event, read from its first bytes alone, so that an oversize or refused frame can be answered on its ref
 * without parsing the rest), and its nesting depth (a scan of brackets outside strings, so that no decoder ever
 * recurses through a hostile frame).
 */
import { Option } from "effect"

/** What a reply needs of a frame. */
export interface FrameHead {
  readonly joinRef: string | null
  readonly ref: string | null
  readonly topic: string
  readonly event: string
}

/** How many bytes of a frame the head is read from: refs, topic and event of any real client fit well within. */
export const headBytes = 512

/** Deepest nesting a frame may have: the deepest request (`filters` of a subscribe) is five levels. */
export const maxDepth = 32

const isSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d

/**
 * The head of a frame: the first four elements of its JSON array, each `null` or a string, read from at most
 * `headBytes` bytes. None when they cannot be read from there (the frame cannot be addressed, and is dropped).
 */
export const frameHead = (frame: Uint8Array): Option.Option<FrameHead> => {
  const text = Buffer.from(frame.buffer, frame.byteOffset, Math.min(frame.length, headBytes)).toString("utf8")
  let at = 0
  const skipSpace = () => {
    while (at < text.length && isSpace(text.charCodeAt(at))) at++
  }
  const element = (): string | null | undefined => {
    skipSpace()
    if (text.startsWith("null", at)) {
      at += 4
      return null
    }
    if (text[at] !== "\"") return undefined
    const start = at++
    while (at < text.length && text[at] !== "\"") at += text[at] === "\\" ? 2 : 1
    if (at >= text.length) return undefined
    at++
    try {
      const value: unknown = JSON.parse(text.slice(start, at))
      return typeof value === "string" ? value : undefined
    } catch {
      return undefined
    }
  }
  skipSpace()
  if (text[at++] !== "[") return Option.none()
  const elements: Array<string | null> = []
  for (let i = 0; i < 4; i++) {
    const value = element()
    if (value === undefined) return Option.none()
    elements.push(value)
    skipSpace()
    if (text[at++] !== ",") return Option.none()
  }
  const [joinRef, ref, topic, event] = elements
  if (typeof topic !== "string" || typeof event !== "string") return Option.none()
  return Option.some({ joinRef: joinRef ?? null, ref: ref ?? null, topic, event })
}

/** Whether the JSON text nests arrays and objects deeper than `limit` (brackets inside strings do not count). */
export const exceedsDepth = (text: string, limit: number = maxDepth): boolean => {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // backslash: the next character is escaped
      else if (c === 0x22) inString = false
    } else if (c === 0x22) {
      inString = true
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true
    } else if (c === 0x5d || c === 0x7d) {
      depth--
    }
  }
  return false
}
