import type { Audience, DocFilter } from "../services/Hub.js"
import type { JournalRow } from "../services/Journal.js"

/**
 * What one subscriber may see of a topic: its audience (I7) and its filter (protocol.md §7), as a row predicate and a key
 * that is equal for subscribers who see exactly the same rows, so that they share one batch and its frames.
 */
export interface View {
  readonly key: string
  readonly visible: (row: JournalRow) => boolean
}

const filterKey = (filter: DocFilter | undefined): string => {
  if (filter === undefined) return ""
  return filter._tag === "DocKeyPrefix"
    ? `prefix:${JSON.stringify(filter.prefix)}`
    : `keys:${JSON.stringify(Array.from(filter.docKeys).sort())}`
}

const inFilter = (filter: DocFilter | undefined): ((row: JournalRow) => boolean) | undefined => {
  if (filter === undefined) return undefined
  if (filter._tag === "DocKeyPrefix") return (row) => row.docKey.startsWith(filter.prefix)
  return (row) => filter.docKeys.has(row.docKey)
}

export const makeView = (audience: Audience, filter: DocFilter | undefined): View => {
  const ofFilter = inFilter(filter)
  const key = `${audience._tag === "Org" ? `org:${JSON.stringify(audience.orgId)}` : "all"}|${filterKey(filter)}`
  if (audience._tag === "AllOrgs") return { key, visible: ofFilter ?? (() => true) }
  const orgId = audience.orgId
  return {
    key,
    visible: ofFilter === undefined
      ? (row) => row.orgId === orgId
      : (row) => row.orgId === orgId && ofFilter(row)
  }
}

/** The rows of `rows` the view may see. */
export const visibleRows = (view: View, rows: ReadonlyArray<JournalRow>): ReadonlyArray<JournalRow> =>
  rows.filter(view.visible)
