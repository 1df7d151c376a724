/**
 * Revocations (protocol.md §8): a token's `jti`, or every token of a `sub`, refused until `until`. One row per target:
 * revoking again replaces `until`, so an `until` in the past lifts a revocation. Rows are kept for a while after
 * they end (so that every node learns of a lift) and then pruned by the servers.
 *
 * The revoke statement itself sends the `khala_revocations` notification: a revocation is its own autocommit
 * statement, never part of a publishing transaction (design.md §4), and every node also re-reads this table about
 * once a second, so a lost notification costs latency only.
 */
export const sql = String.raw`
create table khala.sync_revocations (
  kind text not null check (kind in ('jti', 'sub')),
  value text not null check (length(value) between 1 and 1024),
  until timestamptz not null,
  revoked_at timestamptz not null default now(),
  primary key (kind, value)
);
create index sync_revocations_until_idx on khala.sync_revocations (until);
`
