import { describe, expect, it } from "@effect/vitest"
import { Option, Schema } from "effect"
import * as ErrorCode from "../../src/protocol/ErrorCode.js"
import { SyncErrorCode } from "../../src/protocol/gen/openagents/sync/v1/errors_pb.js"

const spec = [
  ["unauthorized", SyncErrorCode.UNAUTHORIZED],
  ["forbidden_topic", SyncErrorCode.FORBIDDEN_TOPIC],
  ["bad_subscription", SyncErrorCode.BAD_SUBSCRIPTION],
  ["stale_cursor", SyncErrorCode.STALE_CURSOR],
  ["payload_too_large", SyncErrorCode.PAYLOAD_TOO_LARGE],
  ["rate_limited", SyncErrorCode.RATE_LIMITED],
  ["internal", SyncErrorCode.INTERNAL],
  ["not_found", SyncErrorCode.NOT_FOUND],
  ["upgrade_required", SyncErrorCode.UPGRADE_REQUIRED]
] as const

describe("ErrorCode", () => {
  it("has exactly the seven codes of protocol.md §5", () => {
    expect(ErrorCode.wireErrorCodes).toStrictEqual(spec.map(([wire]) => wire))
  })

  it.each(spec)("%s ⇄ proto %i", (wire, proto) => {
    expect(ErrorCode.toProto(wire)).toBe(proto)
    expect(ErrorCode.fromProto(proto)).toStrictEqual(Option.some(wire))
    expect(ErrorCode.parseWire(wire)).toStrictEqual(Option.some(wire))
    expect(Schema.decodeUnknownSync(ErrorCode.WireErrorCode)(wire)).toBe(wire)
  })

  it("knows no code for UNSPECIFIED, unknown numbers or unknown strings", () => {
    expect(ErrorCode.fromProto(SyncErrorCode.UNSPECIFIED)).toStrictEqual(Option.none())
    expect(ErrorCode.fromProto(99 as SyncErrorCode)).toStrictEqual(Option.none())
    expect(ErrorCode.parseWire("unspecified")).toStrictEqual(Option.none())
    expect(ErrorCode.parseWire("STALE_CURSOR")).toStrictEqual(Option.none())
    expect(Schema.is(ErrorCode.WireErrorCode)("teapot")).toBe(false)
  })
})
