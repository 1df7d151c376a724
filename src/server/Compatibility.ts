/**
 * The support window of a server (protocol.md §5.1, §9): a join stating a `protocol_version` or `schema_version`
 * below the configured minimum, or a `client_build_id` the operator refused, is answered `upgrade_required` with the
 * minimums; a join stating nothing is accepted (clients that predate the fields keep working). Joins are counted by
 * protocol version and client build, with labels bounded so that no client can grow the metric without limit.
 */
import { Effect, Metric, Option } from "effect"
import type { ErrorPayload } from "../protocol/Replies.js"
import * as Replies from "../protocol/Replies.js"
import type { JoinRequest } from "../protocol/Requests.js"

/** What a server accepts. */
export interface SupportWindow {
  readonly minProtocolVersion: number
  readonly minSchemaVersion: number
  /** Client builds refused outright: exact ids, or prefixes written with a trailing `*`. */
  readonly refusedClientBuilds: ReadonlyArray<string>
}

/** Why a join is outside the window: the `reason` of the `upgrade_required` error. */
export type Outside = "protocol_version" | "schema_version" | "client_build"

const refusedBuild = (window: SupportWindow, build: string): boolean =>
  window.refusedClientBuilds.some((pattern) =>
    pattern.endsWith("*") ? build.startsWith(pattern.slice(0, -1)) : build === pattern
  )

/** Whether a join is outside the window, and why; none when it is inside (or states nothing). */
export const outside = (window: SupportWindow, join: JoinRequest): Option.Option<Outside> => {
  if (join.protocolVersion !== undefined && join.protocolVersion < window.minProtocolVersion) {
    return Option.some("protocol_version")
  }
  if (join.schemaVersion !== undefined && join.schemaVersion < window.minSchemaVersion) {
    return Option.some("schema_version")
  }
  if (join.clientBuildId !== undefined && refusedBuild(window, join.clientBuildId)) return Option.some("client_build")
  return Option.none()
}

/** The `upgrade_required` error of a join outside the window: it carries the minimums, whatever the reason. */
export const upgradeRequired = (window: SupportWindow, reason: Outside): ErrorPayload =>
  Replies.errorPayload({
    code: "upgrade_required",
    message: reason === "client_build"
      ? "this client build is no longer supported: upgrade the client"
      : `this client is older than the server supports (protocol ${window.minProtocolVersion}, schema ` +
        `${window.minSchemaVersion} at least): upgrade the client`,
    reason,
    minProtocolVersion: window.minProtocolVersion,
    minSchemaVersion: window.minSchemaVersion
  })

/** Distinct client build labels one server reports; builds seen after them are counted as `other`. */
export const maxBuildLabels = 64
/** Longest client build label. */
export const maxBuildLabelLength = 40
/** Protocol versions reported as themselves; others (a client sending nonsense) as `other`. */
const maxVersionLabel = 99

/** The metric labels of a join, given the build labels already in use (which it extends while there is room). */
export const joinLabels = (
  join: JoinRequest,
  builds: Set<string>
): { readonly protocolVersion: string; readonly clientBuild: string } => {
  const protocolVersion = join.protocolVersion === undefined
    ? "none"
    : join.protocolVersion <= maxVersionLabel
    ? String(join.protocolVersion)
    : "other"
  if (join.clientBuildId === undefined) return { protocolVersion, clientBuild: "none" }
  const label = join.clientBuildId.replace(/[^A-Za-z0-9._+-]/g, "_").slice(0, maxBuildLabelLength)
  if (builds.has(label)) return { protocolVersion, clientBuild: label }
  if (builds.size >= maxBuildLabels) return { protocolVersion, clientBuild: "other" }
  builds.add(label)
  return { protocolVersion, clientBuild: label }
}

/** Joins on `sync:v1`, by `protocol_version`, `client_build` and `outcome` (`accepted` or `upgrade_required`). */
export const joins = Metric.counter("khala_socket_joins_total", {
  description: "Joins of sync:v1 by protocol version, client build (bounded) and outcome",
  incremental: true
})

/** A server's compatibility check: one per server, so that its build labels are bounded together. */
export interface Compatibility {
  /** The error to refuse a join with, if it is outside the window; counts the join either way. */
  readonly judge: (join: JoinRequest) => Effect.Effect<Option.Option<ErrorPayload>>
}

export const make = (window: SupportWindow): Compatibility => {
  const builds = new Set<string>()
  return {
    judge: (join) =>
      Effect.suspend(() => {
        const refused = outside(window, join)
        const labels = joinLabels(join, builds)
        return Metric.update(
          joins.pipe(
            Metric.tagged("protocol_version", labels.protocolVersion),
            Metric.tagged("client_build", labels.clientBuild),
            Metric.tagged("outcome", Option.isSome(refused) ? "upgrade_required" : "accepted")
          ),
          1
        ).pipe(Effect.as(Option.map(refused, (reason) => upgradeRequired(window, reason))))
      })
  }
}
