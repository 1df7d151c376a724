/**
 * Documents per org, deletes, epochs and payload sizes.
 *
 * - Tenancy (I7): a document is keyed by `(topic, org_id, doc_key)`. One org's publish can no longer replace another
 *   org's document, take over its key, or learn from a "not newer" answer that the key exists in another org: each
 *   org's keys are its own.
 * - Deletes: a journal row and a read-model row may be a tombstone (`deleted`, no payload, no hash), so that versions
 *   stay monotonic after a delete (I6). `khala.remove` appends one.
 * - Epochs: each topic has an opaque epoch, set when its sequence row is created and changed only when its journal
 *   is reset (`khala.reset_topic`), so a client resuming from before a reset is told to re-hydrate.
 * - Retention by topic: the journal is indexed by `(topic, inserted_at)`, which retention reads per topic.
 * - Payload sizes: every row records the UTF-8 length of its canonical payload, so that readers bound pages in bytes
 *   and leave out payloads over the per-update limit without fetching them.
 *
 * `khala.append` is now the one append path (the SQL functions below and Khala's own publisher call it). It takes
 * the topic's row lock first (held until commit: I3) and advances the head itself, so there is no separate way to
 * allocate watermarks without appending rows (I2).
 */
export const sql = String.raw`
alter table khala.sync_documents drop constraint sync_documents_pkey;
alter table khala.sync_documents add primary key (topic, org_id, doc_key);
drop index khala.sync_documents_org_idx;
alter table khala.sync_documents alter column payload drop not null;
alter table khala.sync_documents alter column payload_hash drop not null;
alter table khala.sync_documents add column deleted boolean not null default false;
alter table khala.sync_documents add column payload_bytes integer;
update khala.sync_documents set payload_bytes = octet_length(khala.canonical_json(payload));
alter table khala.sync_documents alter column payload_bytes set not null;
alter table khala.sync_documents add constraint sync_documents_tombstone_check
  check (deleted = (payload is null) and deleted = (payload_hash is null));

alter table khala.sync_stream_events alter column payload_hash drop not null;
alter table khala.sync_stream_events add column deleted boolean not null default false;
alter table khala.sync_stream_events add column payload_bytes integer;
update khala.sync_stream_events set payload_bytes = octet_length(khala.canonical_json(payload))
 where payload is not null;
update khala.sync_stream_events set payload_bytes = 0 where payload is null;
alter table khala.sync_stream_events alter column payload_bytes set not null;

alter table khala.sync_topic_sequences add column epoch text not null default gen_random_uuid()::text;

-- Retention runs per topic: the newest row of a topic older than its retention is one index probe.
drop index khala.sync_stream_events_inserted_at_idx;
create index sync_stream_events_retention_idx on khala.sync_stream_events (topic, inserted_at);

drop function khala.publish(text, text, bigint, text, jsonb, boolean);
drop function khala.try_publish_hashed(text, text, bigint, text, jsonb, boolean, bytea);
drop function khala.publish_hashed(text, text, bigint, text, jsonb, boolean, bytea);
drop function khala.allocate_watermarks(text, integer);
drop function khala.publish_batch(jsonb);

-- The append path: one document change (a publish, or a delete when p_deleted) with its payload already hashed and
-- measured. Returns the watermark; NULL when doc_version is not newer than the org's stored document (nothing is
-- written, I6); -1 when the topic is unknown, which leaves the caller's transaction usable. Invalid input raises
-- KH002.
create function khala.append(
  p_topic text, p_doc_key text, p_doc_version bigint, p_org_id text, p_payload jsonb, p_pointer boolean,
  p_payload_hash bytea, p_payload_bytes integer, p_deleted boolean
) returns bigint
language plpgsql as $$
declare
  v_head bigint;
  v_pointer_mode boolean;
  v_watermark bigint;
begin
  if p_doc_key is null or p_doc_key = '' then
    raise exception using errcode = 'KH002', message = 'khala: doc_key must be a non-empty string';
  end if;
  if p_org_id is null or p_org_id = '' then
    raise exception using errcode = 'KH002', message = 'khala: org_id must be a non-empty string';
  end if;
  if p_doc_version is null or p_doc_version < 0 then
    raise exception using errcode = 'KH002', message = 'khala: doc_version must be a non-negative integer';
  end if;
  if coalesce(p_deleted, false) then
    if p_payload is not null or p_payload_hash is not null then
      raise exception using errcode = 'KH002', message = 'khala: a delete carries no payload';
    end if;
  else
    if p_payload is null then
      raise exception using errcode = 'KH002', message = 'khala: payload must be a JSON value (SQL NULL given)';
    end if;
    if p_payload_hash is null or length(p_payload_hash) <> 32 then
      raise exception using errcode = 'KH002', message = 'khala: payload_hash must be 32 bytes of sha256';
    end if;
    if p_payload_bytes is null or p_payload_bytes < 0 then
      raise exception using errcode = 'KH002', message = 'khala: payload_bytes must be a non-negative integer';
    end if;
  end if;

  select s.next_watermark, s.pointer_mode into v_head, v_pointer_mode
    from khala.sync_topic_sequences s
   where s.topic = p_topic
     for update;
  if not found then
    return -1;
  end if;
  v_watermark := v_head + 1;

  insert into khala.sync_documents as d
         (topic, org_id, doc_key, doc_version, payload, payload_hash, payload_bytes, deleted, watermark)
  values (p_topic, p_org_id, p_doc_key, p_doc_version, p_payload, p_payload_hash, coalesce(p_payload_bytes, 0),
          coalesce(p_deleted, false), v_watermark)
  on conflict (topic, org_id, doc_key) do update
     set doc_version = excluded.doc_version,
         payload = excluded.payload,
         payload_hash = excluded.payload_hash,
         payload_bytes = excluded.payload_bytes,
         deleted = excluded.deleted,
         watermark = excluded.watermark,
         updated_at = now()
   where d.doc_version < excluded.doc_version;
  if not found then
    return null;
  end if;

  update khala.sync_topic_sequences set next_watermark = v_watermark where topic = p_topic;
  insert into khala.sync_stream_events
         (topic, watermark, doc_key, doc_version, org_id, payload, payload_hash, payload_bytes, deleted)
  values (
    p_topic, v_watermark, p_doc_key, p_doc_version, p_org_id,
    case when coalesce(p_pointer, false) or v_pointer_mode then null else p_payload end,
    p_payload_hash,
    case when coalesce(p_pointer, false) or v_pointer_mode or coalesce(p_deleted, false) then 0
         else p_payload_bytes end,
    coalesce(p_deleted, false)
  );
  return v_watermark;
end
$$;

-- Publishes a document from SQL, inside the caller's transaction. Returns the watermark, or NULL when doc_version is
-- not newer than the org's stored document. An unknown topic raises KH001, invalid input KH002.
create function khala.publish(
  topic text, doc_key text, doc_version bigint, org_id text, payload jsonb, pointer boolean default false
) returns bigint
language plpgsql as $$
declare
  v_canonical text;
  v_watermark bigint;
begin
  if payload is null then
    raise exception using errcode = 'KH002', message = 'khala: payload must be a JSON value (SQL NULL given)';
  end if;
  v_canonical := khala.canonical_json(payload);
  v_watermark := khala.append(topic, doc_key, doc_version, org_id, payload, pointer,
                              sha256(convert_to(v_canonical, 'UTF8')), octet_length(v_canonical), false);
  if v_watermark = -1 then
    raise exception using errcode = 'KH001', message = format('khala: unknown topic %L', topic),
      hint = 'Topics come from the catalog; register extra topics with the server or khala migrate.';
  end if;
  return v_watermark;
end
$$;

-- Deletes a document from SQL: appends a journal row with deleted = true and keeps a tombstone at doc_version, so a
-- lower version published later cannot bring the document back (I6). Returns the watermark, or NULL when
-- doc_version is not newer than the stored document.
create function khala.remove(topic text, doc_key text, doc_version bigint, org_id text) returns bigint
language plpgsql as $$
declare
  v_watermark bigint;
begin
  v_watermark := khala.append(topic, doc_key, doc_version, org_id, null, false, null, 0, true);
  if v_watermark = -1 then
    raise exception using errcode = 'KH001', message = format('khala: unknown topic %L', topic),
      hint = 'Topics come from the catalog; register extra topics with the server or khala migrate.';
  end if;
  return v_watermark;
end
$$;

-- The batch form: a JSON array of {topic, doc_key, doc_version, org_id, payload, pointer?, payload_hash?,
-- payload_bytes?, deleted?}, applied in order as if appended one by one; returns the watermarks in input order (NULL
-- where the version was not newer). A delete ("deleted": true) carries no payload. Every topic of the batch is locked
-- up front in sorted order, so concurrent batches cannot deadlock one another. With lock_timeout_ms, a topic lock not
-- granted in time fails the call (SQLSTATE 55P03) instead of waiting longer: Khala's group commit then gives its
-- connection back and tries again later, rather than holding it while a caller's transaction holds the topic.
create function khala.publish_batch(updates jsonb, lock_timeout_ms integer default null) returns bigint[]
language plpgsql as $$
declare
  v_problem text;
  v_topics text[];
  v_locked integer;
  v_lock_timeout text;
  v_result bigint[];
begin
  if updates is null or jsonb_typeof(updates) <> 'array' then
    raise exception using errcode = 'KH002', message = 'khala: publish_batch takes a JSON array of updates';
  end if;

  -- Validate everything before taking any lock: the topics stay locked until commit.
  select problem into v_problem
    from (
      select i, case
               when not (jsonb_typeof(u) = 'object'
                         and jsonb_typeof(u -> 'topic') is not distinct from 'string'
                         and jsonb_typeof(u -> 'doc_key') is not distinct from 'string'
                         and jsonb_typeof(u -> 'org_id') is not distinct from 'string'
                         and jsonb_typeof(u -> 'doc_version') is not distinct from 'number'
                         and (u ->> 'doc_version') ~ '^[0-9]{1,18}$'
                         and (not u ? 'deleted' or jsonb_typeof(u -> 'deleted') in ('boolean', 'null'))
                         and (coalesce((u ->> 'deleted')::boolean, false) or u ? 'payload')
                         and (not u ? 'pointer' or jsonb_typeof(u -> 'pointer') in ('boolean', 'null'))
                         and (not u ? 'payload_hash' or jsonb_typeof(u -> 'payload_hash') in ('string', 'null'))
                         and (not u ? 'payload_bytes' or jsonb_typeof(u -> 'payload_bytes') in ('number', 'null')))
                 then format('khala: malformed update %s: needs string topic, doc_key, org_id, an integer '
                        'doc_version and a payload (or "deleted": true)', left(u::text, 200))
               when u ->> 'doc_key' = '' then 'khala: doc_key must be a non-empty string'
               when u ->> 'org_id' = '' then 'khala: org_id must be a non-empty string'
               when coalesce((u ->> 'deleted')::boolean, false) and jsonb_typeof(u -> 'payload') is distinct from null
                    and jsonb_typeof(u -> 'payload') <> 'null'
                 then 'khala: a delete carries no payload'
               when u ->> 'payload_bytes' is not null and (u ->> 'payload_bytes') !~ '^[0-9]{1,9}$'
                 then 'khala: payload_bytes must be a non-negative integer'
               -- the form ^sha256:[0-9a-f]{64}$, tested without a regular expression, which costs ten times more
               when u ->> 'payload_hash' is not null
                    and not (left(u ->> 'payload_hash', 7) = 'sha256:' and length(u ->> 'payload_hash') = 71
                             and translate(substr(u ->> 'payload_hash', 8), '0123456789abcdef', '') = '')
                 then format('khala: payload_hash %L is not of the form sha256:<64 lowercase hex digits>',
                        left(u ->> 'payload_hash', 80))
             end as problem
        from jsonb_array_elements(updates) with ordinality as e(u, i)
    ) checked
   where problem is not null
   order by i
   limit 1;
  if found then
    raise exception using errcode = 'KH002', message = v_problem;
  end if;

  select array_agg(distinct u ->> 'topic' order by u ->> 'topic') into v_topics
    from jsonb_array_elements(updates) as u;
  if v_topics is null then
    return '{}';
  end if;

  -- Sorted order, as every lock taker here: concurrent batches cannot deadlock. The statements below start after
  -- the locks are held, so they read the documents and heads as the previous holder committed them.
  v_lock_timeout := current_setting('lock_timeout');
  if lock_timeout_ms is not null then
    perform set_config('lock_timeout', lock_timeout_ms || 'ms', true);
  end if;
  select count(*) into v_locked
    from (select 1 from khala.sync_topic_sequences s where s.topic = any(v_topics) order by s.topic for update) l;
  -- the rest of the caller's transaction keeps its own setting
  perform set_config('lock_timeout', v_lock_timeout, true);
  if v_locked <> cardinality(v_topics) then
    raise exception using errcode = 'KH001', message = format('khala: unknown topic %L',
      (select t from unnest(v_topics) t
        where not exists (select 1 from khala.sync_topic_sequences s where s.topic = t) limit 1)),
      hint = 'Topics come from the catalog; register extra topics with the server or khala migrate.';
  end if;

  with input as (
    select e.i,
           e.u ->> 'topic' as topic,
           e.u ->> 'doc_key' as doc_key,
           (e.u ->> 'doc_version')::bigint as doc_version,
           e.u ->> 'org_id' as org_id,
           coalesce((e.u ->> 'deleted')::boolean, false) as deleted,
           case when coalesce((e.u ->> 'deleted')::boolean, false) then null else e.u -> 'payload' end as payload,
           coalesce((e.u ->> 'pointer')::boolean, false) as pointer,
           case
             when coalesce((e.u ->> 'deleted')::boolean, false) then null
             when e.u ->> 'payload_hash' is null then khala.payload_hash(e.u -> 'payload')
             else decode(substr(e.u ->> 'payload_hash', 8), 'hex')
           end as payload_hash,
           case
             when coalesce((e.u ->> 'deleted')::boolean, false) then 0
             when e.u ->> 'payload_bytes' is null then octet_length(khala.canonical_json(e.u -> 'payload'))
             else (e.u ->> 'payload_bytes')::integer
           end as payload_bytes
      from jsonb_array_elements(updates) with ordinality as e(u, i)
  ),
  ranked as (
    select input.*,
           d.doc_version as stored_version,
           max(input.doc_version) over (
             partition by input.topic, input.org_id, input.doc_key order by input.i
             rows between unbounded preceding and 1 preceding
           ) as earlier_version
      from input
      left join khala.sync_documents d
        on d.topic = input.topic and d.org_id = input.org_id and d.doc_key = input.doc_key
  ),
  appended as (
    select ranked.*,
           s.next_watermark + row_number() over (partition by ranked.topic order by ranked.i) as watermark,
           ranked.pointer or s.pointer_mode as without_payload
      from ranked
      join khala.sync_topic_sequences s on s.topic = ranked.topic
     where ranked.doc_version > greatest(ranked.stored_version, ranked.earlier_version, -1)
  ),
  journal as (
    insert into khala.sync_stream_events
           (topic, watermark, doc_key, doc_version, org_id, payload, payload_hash, payload_bytes, deleted)
    select topic, watermark, doc_key, doc_version, org_id, case when without_payload then null else payload end,
           payload_hash, case when without_payload then 0 else payload_bytes end, deleted
      from appended
  ),
  documents as (
    insert into khala.sync_documents as d
           (topic, org_id, doc_key, doc_version, payload, payload_hash, payload_bytes, deleted, watermark)
    select distinct on (topic, org_id, doc_key) topic, org_id, doc_key, doc_version, payload, payload_hash,
           payload_bytes, deleted, watermark
      from appended
     order by topic, org_id, doc_key, i desc
    on conflict (topic, org_id, doc_key) do update
       set doc_version = excluded.doc_version,
           payload = excluded.payload,
           payload_hash = excluded.payload_hash,
           payload_bytes = excluded.payload_bytes,
           deleted = excluded.deleted,
           watermark = excluded.watermark,
           updated_at = now()
     where d.doc_version < excluded.doc_version
  ),
  heads as (
    update khala.sync_topic_sequences s
       set next_watermark = s.next_watermark + counts.appended
      from (select topic, count(*) as appended from appended group by topic) counts
     where s.topic = counts.topic
  )
  select array_agg(appended.watermark order by input.i) into v_result
    from input
    left join appended on appended.i = input.i;
  return v_result;
end
$$;

-- Resets a topic's journal, as after restoring a backup: every journal row goes, the retention floor rises to the
-- head (so every resume point is stale, I8), and the epoch changes (so a client that kept one is told why). The read
-- model stays: it is the payload authority clients re-hydrate from. Returns the new epoch.
create function khala.reset_topic(p_topic text) returns text
language plpgsql as $$
declare
  v_epoch text;
begin
  update khala.sync_topic_sequences
     set retention_floor = next_watermark, epoch = gen_random_uuid()::text
   where topic = p_topic
  returning epoch into v_epoch;
  if not found then
    raise exception using errcode = 'KH001', message = format('khala: unknown topic %L', p_topic);
  end if;
  delete from khala.sync_stream_events where topic = p_topic;
  return v_epoch;
end
$$;
`
