/**
 * The outbox's cursors (outbox.md): per sink and topic, the watermark through which the journal has been delivered
 * to that sink. Retention keeps every row above a topic's lowest cursor, so a sink that is down loses nothing. A
 * cursor goes with its topic's sequence row.
 */
export const sql = String.raw`
create table khala.sync_outbox_cursors (
  sink text not null,
  topic text not null references khala.sync_topic_sequences (topic) on delete cascade,
  watermark bigint not null check (watermark >= 0),
  updated_at timestamptz not null default now(),
  primary key (sink, topic)
);
create index sync_outbox_cursors_topic on khala.sync_outbox_cursors (topic, watermark);
`
