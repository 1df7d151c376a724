/**
 * Trace contexts on journal rows (docs/metrics.md, "Traces"): a nullable `trace_context` (a W3C `traceparent`), so that
 * a trace crosses from the publishing process to every process that delivers the row.
 *
 * The publish functions are unchanged: the column's default reads the transaction-local setting
 * `khala.trace_context`, which Khala's publisher sets in the publishing transaction when tracing is on. A runtime
 * that publishes with plain SQL (`select khala.publish(...)`) carries its own trace the same way:
 * `select set_config('khala.trace_context', '<traceparent>', true)` in the same transaction.
 */
export const sql = `
alter table khala.sync_stream_events add column if not exists trace_context text;
alter table khala.sync_stream_events
  alter column trace_context set default nullif(current_setting('khala.trace_context', true), '');
`
