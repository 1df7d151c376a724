import { Effect, Schema } from "effect"
import { Watermark } from "./Topic.js"

/**
 * Bounds on arguments the services take from Khala's own code (the edges validate what clients send). A value out
 * of range is a bug of the caller: every layer dies with the same message rather than each failing its own way.
 */
const require = (ok: boolean, message: () => string) => (ok ? Effect.void : Effect.dieMessage(message()))

const isWatermark = Schema.is(Watermark)

export const checkWatermark = (name: string, value: number) =>
  require(isWatermark(value), () => `${name} must be a non-negative safe integer, got ${value}`)

export const checkLimit = (value: number) =>
  require(Number.isSafeInteger(value) && value >= 1, () => `limit must be a positive integer, got ${value}`)

export const checkCount = (value: number) =>
  require(Number.isSafeInteger(value) && value >= 1, () => `count must be a positive integer, got ${value}`)
