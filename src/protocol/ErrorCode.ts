/**
 * Sync error codes (protocol.md §5): the snake_case strings of the JSON transport and the
 * `SyncErrorCode` proto enum they correspond to.
 *
 * Both the type and the runtime table are derived from the generated enum, so adding a code
 * to `errors.proto` is the only change needed to make it known here.
 *
 * @since 0.1.0
 */
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { SyncErrorCode, SyncErrorCodeSchema } from "./gen/openagents/sync/v1/errors_pb.js"

/**
 * A wire error code, e.g. `"stale_cursor"` for `SYNC_ERROR_CODE_STALE_CURSOR`.
 *
 * @since 0.1.0
 */
export type WireErrorCode = Lowercase<Exclude<keyof typeof SyncErrorCode, "UNSPECIFIED">>

const toWire = new Map<SyncErrorCode, WireErrorCode>()
const fromWire = new Map<string, SyncErrorCode>()
for (const value of SyncErrorCodeSchema.values) {
  if (value.number === SyncErrorCode.UNSPECIFIED) continue
  // The generated enum keys are the value names without the enum prefix; the type above is built from
  // the same keys, so the string computed here is a member of it.
  const wire = value.localName.toLowerCase() as WireErrorCode
  toWire.set(value.number, wire)
  fromWire.set(wire, value.number)
}

/**
 * Every wire error code, in proto enum order.
 *
 * @since 0.1.0
 */
export const wireErrorCodes: ReadonlyArray<WireErrorCode> = Array.from(toWire.values())

/**
 * Schema of a wire error code.
 *
 * @since 0.1.0
 */
export const WireErrorCode: Schema.Literal<[WireErrorCode, ...Array<WireErrorCode>]> = Schema.Literal(
  ...(wireErrorCodes as [WireErrorCode, ...Array<WireErrorCode>])
)

/**
 * The proto enum value of a wire code.
 *
 * @since 0.1.0
 */
export const toProto = (code: WireErrorCode): SyncErrorCode => fromWire.get(code)!

/**
 * The wire code of a proto enum value; none for `UNSPECIFIED` and for numbers this build does not know
 * (a newer peer), which callers should treat like `internal`.
 *
 * @since 0.1.0
 */
export const fromProto = (code: SyncErrorCode): Option.Option<WireErrorCode> => Option.fromNullable(toWire.get(code))

/**
 * Parses a wire code received as a string.
 *
 * @since 0.1.0
 */
export const parseWire: (code: unknown) => Option.Option<WireErrorCode> = Schema.decodeUnknownOption(WireErrorCode)
