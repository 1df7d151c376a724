/**
 * The journal, the sequencer and the read model (design.md §2), and `khala.publish`: the one append path for every
 * caller in any language, inside the caller's own transaction (design.md §4).
 *
 * Lock order, kept by every function here: the topic's sequence row first (held until commit: I3), then the
 * document row, and a batch locks all its topics up front in sorted order. One call therefore never deadlocks
 * another; a caller transaction that makes several calls on several topics must keep one topic order itself.
 */
export const sql = String.raw`
create table khala.sync_topic_sequences (
  topic text primary key,
  -- The head: the highest watermark allocated so far. SPEC §2 keeps the reference name; an append takes
  -- next_watermark + 1 and writes it back in the same transaction as its journal row (I2).
  next_watermark bigint not null default 0 check (next_watermark >= 0),
  -- The highest watermark pruned so far, persisted so that I8 holds even when every row was pruned.
  retention_floor bigint not null default 0 check (retention_floor >= 0 and retention_floor <= next_watermark),
  retention_class text not null,
  -- Per-topic pointer mode: journal rows of this topic never carry the payload (I5).
  pointer_mode boolean not null default false,
  created_at timestamptz not null default now()
);

create table khala.sync_stream_events (
  topic text not null,
  watermark bigint not null,
  doc_key text not null,
  doc_version bigint not null,
  org_id text not null,
  -- SQL NULL in pointer mode: the read model is the payload authority (I5).
  payload jsonb,
  payload_hash bytea not null,
  inserted_at timestamptz not null default now(),
  primary key (topic, watermark)
);
create index sync_stream_events_doc_idx on khala.sync_stream_events (topic, doc_key, watermark desc);
create index sync_stream_events_inserted_at_idx on khala.sync_stream_events (inserted_at);

create table khala.sync_documents (
  topic text not null,
  -- Byte order, so that pages are stable whatever the database's locale.
  doc_key text collate "C" not null,
  doc_version bigint not null,
  org_id text not null,
  payload jsonb not null,
  payload_hash bytea not null,
  -- The watermark of the journal row that wrote this version.
  watermark bigint not null,
  updated_at timestamptz not null default now(),
  primary key (topic, doc_key)
);
create index sync_documents_org_idx on khala.sync_documents (topic, org_id, doc_key);

-- Canonical JSON (SPEC §3): keys sorted by code point at every depth (COLLATE "C" compares UTF-8 bytes, which
-- orders as code points do), no whitespace, strings escaped as JSON does, numbers in plain decimal: integral
-- values without fraction or exponent, others with trailing zeros trimmed.
create function khala.canonical_json(value jsonb) returns text
language plpgsql immutable strict parallel safe as $$
declare
  n numeric;
begin
  case jsonb_typeof(value)
    when 'object' then
      return '{' || coalesce(
        (select string_agg(to_json(e.key)::text || ':' || khala.canonical_json(e.value), ',' order by e.key collate "C")
           from jsonb_each(value) as e),
        '') || '}';
    when 'array' then
      return '[' || coalesce(
        (select string_agg(khala.canonical_json(a.value), ',' order by a.ordinality)
           from jsonb_array_elements(value) with ordinality as a),
        '') || ']';
    when 'number' then
      n := value::text::numeric;
      if n = trunc(n) then
        return trunc(n)::text;
      end if;
      return trim_scale(n)::text;
    else
      -- strings, booleans and null print canonically already
      return value::text;
  end case;
end
$$;

create function khala.payload_hash(payload jsonb) returns bytea
language sql immutable strict parallel safe as $$
  select sha256(convert_to(khala.canonical_json(payload), 'UTF8'))
$$;

-- Sequencer: locks the topic's sequence row until the end of the transaction and returns its head. Every append
-- takes this lock before anything else, which makes commit order equal watermark order (I3).
create function khala.lock_topic(p_topic text, out head bigint, out pointer_mode boolean)
language plpgsql as $$
begin
  select s.next_watermark, s.pointer_mode into head, pointer_mode
    from khala.sync_topic_sequences s
   where s.topic = p_topic
     for update;
  if not found then
    raise exception using errcode = 'KH001', message = format('khala: unknown topic %L', p_topic),
      hint = 'Topics come from the catalog; register extra topics with the server or khala migrate.';
  end if;
end
$$;

-- Sequencer: reserves the next p_count dense watermarks of a topic inside the current transaction and returns the
-- last of them (the new head). The row stays locked until commit, so an abort gives the range back (I2).
create function khala.allocate_watermarks(p_topic text, p_count integer) returns bigint
language plpgsql as $$
declare
  v_head bigint;
begin
  if p_count is null or p_count < 1 then
    raise exception using errcode = 'KH002', message = format('khala: cannot allocate %s watermarks', p_count);
  end if;
  update khala.sync_topic_sequences
     set next_watermark = next_watermark + p_count
   where topic = p_topic
  returning next_watermark into v_head;
  if not found then
    raise exception using errcode = 'KH001', message = format('khala: unknown topic %L', p_topic);
  end if;
  return v_head;
end
$$;

-- The append path with a precomputed payload hash (Khala's own publisher hashes in process). Returns the watermark,
-- or NULL when doc_version is not newer than the stored document: then nothing is written (I6).
create function khala.publish_hashed(
  p_topic text, p_doc_key text, p_doc_version bigint, p_org_id text, p_payload jsonb, p_pointer boolean,
  p_payload_hash bytea
) returns bigint
language plpgsql as $$
declare
  v_topic record;
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
  if p_payload is null then
    raise exception using errcode = 'KH002', message = 'khala: payload must be a JSON value (SQL NULL given)';
  end if;
  if p_payload_hash is null or length(p_payload_hash) <> 32 then
    raise exception using errcode = 'KH002', message = 'khala: payload_hash must be 32 bytes of sha256';
  end if;

  v_topic := khala.lock_topic(p_topic);
  v_watermark := v_topic.head + 1;

  insert into khala.sync_documents as d (topic, doc_key, doc_version, org_id, payload, payload_hash, watermark)
  values (p_topic, p_doc_key, p_doc_version, p_org_id, p_payload, p_payload_hash, v_watermark)
  on conflict (topic, doc_key) do update
     set doc_version = excluded.doc_version,
         org_id = excluded.org_id,
         payload = excluded.payload,
         payload_hash = excluded.payload_hash,
         watermark = excluded.watermark,
         updated_at = now()
   where d.doc_version < excluded.doc_version;
  if not found then
    return null;
  end if;

  if khala.allocate_watermarks(p_topic, 1) <> v_watermark then
    raise exception using errcode = 'XX000', message = 'khala: sequence moved while its row was locked';
  end if;

  insert into khala.sync_stream_events (topic, watermark, doc_key, doc_version, org_id, payload, payload_hash)
  values (
    p_topic, v_watermark, p_doc_key, p_doc_version, p_org_id,
    case when coalesce(p_pointer, false) or v_topic.pointer_mode then null else p_payload end,
    p_payload_hash
  );
  return v_watermark;
end
$$;

create function khala.publish(
  topic text, doc_key text, doc_version bigint, org_id text, payload jsonb, pointer boolean default false
) returns bigint
language sql as $$
  select khala.publish_hashed(topic, doc_key, doc_version, org_id, payload, pointer, khala.payload_hash(payload))
$$;

-- The batch form: a JSON array of {topic, doc_key, doc_version, org_id, payload, pointer?, payload_hash?}, applied
-- in order as if published one by one; returns the watermarks in input order (NULL where the version was not
-- newer). Every topic of the batch is locked up front in a fixed order, so concurrent batches cannot deadlock.
create function khala.publish_batch(updates jsonb) returns bigint[]
language plpgsql as $$
declare
  v_update jsonb;
  v_result bigint[] := '{}';
  v_hashes bytea[] := '{}';
  v_i integer := 0;
begin
  if updates is null or jsonb_typeof(updates) <> 'array' then
    raise exception using errcode = 'KH002', message = 'khala: publish_batch takes a JSON array of updates';
  end if;
  -- Validate and hash everything before taking any lock: the topics stay locked until commit.
  for v_update in select u from jsonb_array_elements(updates) as u loop
    if jsonb_typeof(v_update) <> 'object'
       or jsonb_typeof(v_update -> 'topic') is distinct from 'string'
       or jsonb_typeof(v_update -> 'doc_key') is distinct from 'string'
       or jsonb_typeof(v_update -> 'org_id') is distinct from 'string'
       or jsonb_typeof(v_update -> 'doc_version') is distinct from 'number'
       or (v_update ->> 'doc_version') !~ '^[0-9]{1,18}$'
       or not (v_update ? 'payload')
       or (v_update ? 'pointer' and jsonb_typeof(v_update -> 'pointer') not in ('boolean', 'null'))
       or (v_update ? 'payload_hash' and jsonb_typeof(v_update -> 'payload_hash') not in ('string', 'null')) then
      raise exception using errcode = 'KH002',
        message = format('khala: malformed update %s: needs string topic, doc_key, org_id, an integer '
          'doc_version and a payload', left(v_update::text, 200));
    end if;
    if v_update ->> 'payload_hash' is null then
      v_hashes := v_hashes || khala.payload_hash(v_update -> 'payload');
    elsif v_update ->> 'payload_hash' ~ '^sha256:[0-9a-f]{64}$' then
      v_hashes := v_hashes || decode(substr(v_update ->> 'payload_hash', 8), 'hex');
    else
      raise exception using errcode = 'KH002',
        message = format('khala: payload_hash %L is not of the form sha256:<64 lowercase hex digits>',
          left(v_update ->> 'payload_hash', 80));
    end if;
  end loop;

  perform 1
     from khala.sync_topic_sequences s
    where s.topic in (select distinct u ->> 'topic' from jsonb_array_elements(updates) as u)
    order by s.topic
      for update;

  for v_update in select u from jsonb_array_elements(updates) as u loop
    v_i := v_i + 1;
    v_result := v_result || khala.publish_hashed(
      v_update ->> 'topic',
      v_update ->> 'doc_key',
      (v_update ->> 'doc_version')::bigint,
      v_update ->> 'org_id',
      v_update -> 'payload',
      coalesce((v_update ->> 'pointer')::boolean, false),
      v_hashes[v_i]
    );
  end loop;
  return v_result;
end
$$;
`
