/**
 * Faster publishing, same semantics.
 *
 * `khala.publish_batch` as a few set-based statements instead of one `publish_hashed` call per update: one lock
 * statement for all topics, one journal insert, one read-model upsert and one head update per batch. The semantics
 * are those of 0001 (applied in order as if published one by one, validated before any lock), so callers see no
 * change but the speed.
 *
 * An update is appended when its version is above both the stored document's and every earlier update's of the same
 * document in the batch: earlier updates that were not appended are below one that was, so the running maximum of
 * the earlier versions is the version a one-by-one run would have stored by then.
 *
 * And `khala.try_publish_hashed` for publishers that validate updates themselves (Khala's own): an unknown topic,
 * the one bad input only the database can tell, is answered instead of raised, so a publish inside a caller's
 * transaction needs no savepoint (two more round trips, one of them with the topic locked) to keep that
 * transaction alive.
 */
export const sql = String.raw`
-- publish_hashed, but NULL for a version that is not newer and -1 for an unknown topic, which leaves the
-- transaction usable. Invalid input still raises KH002.
create function khala.try_publish_hashed(
  p_topic text, p_doc_key text, p_doc_version bigint, p_org_id text, p_payload jsonb, p_pointer boolean,
  p_payload_hash bytea
) returns bigint
language plpgsql as $$
begin
  if not exists (select 1 from khala.sync_topic_sequences s where s.topic = p_topic) then
    return -1;
  end if;
  return khala.publish_hashed(p_topic, p_doc_key, p_doc_version, p_org_id, p_payload, p_pointer, p_payload_hash);
end
$$;

create or replace function khala.publish_batch(updates jsonb) returns bigint[]
language plpgsql as $$
declare
  v_problem text;
  v_topics text[];
  v_locked integer;
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
                         and u ? 'payload'
                         and (not u ? 'pointer' or jsonb_typeof(u -> 'pointer') in ('boolean', 'null'))
                         and (not u ? 'payload_hash' or jsonb_typeof(u -> 'payload_hash') in ('string', 'null')))
                 then format('khala: malformed update %s: needs string topic, doc_key, org_id, an integer '
                        'doc_version and a payload', left(u::text, 200))
               when u ->> 'doc_key' = '' then 'khala: doc_key must be a non-empty string'
               when u ->> 'org_id' = '' then 'khala: org_id must be a non-empty string'
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
  select count(*) into v_locked
    from (select 1 from khala.sync_topic_sequences s where s.topic = any(v_topics) order by s.topic for update) l;
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
           e.u -> 'payload' as payload,
           coalesce((e.u ->> 'pointer')::boolean, false) as pointer,
           case
             when e.u ->> 'payload_hash' is null then khala.payload_hash(e.u -> 'payload')
             else decode(substr(e.u ->> 'payload_hash', 8), 'hex')
           end as payload_hash
      from jsonb_array_elements(updates) with ordinality as e(u, i)
  ),
  ranked as (
    select input.*,
           d.doc_version as stored_version,
           max(input.doc_version) over (
             partition by input.topic, input.doc_key order by input.i rows between unbounded preceding and 1 preceding
           ) as earlier_version
      from input
      left join khala.sync_documents d on d.topic = input.topic and d.doc_key = input.doc_key
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
    insert into khala.sync_stream_events (topic, watermark, doc_key, doc_version, org_id, payload, payload_hash)
    select topic, watermark, doc_key, doc_version, org_id, case when without_payload then null else payload end,
           payload_hash
      from appended
  ),
  documents as (
    insert into khala.sync_documents as d (topic, doc_key, doc_version, org_id, payload, payload_hash, watermark)
    select distinct on (topic, doc_key) topic, doc_key, doc_version, org_id, payload, payload_hash, watermark
      from appended
     order by topic, doc_key, i desc
    on conflict (topic, doc_key) do update
       set doc_version = excluded.doc_version,
           org_id = excluded.org_id,
           payload = excluded.payload,
           payload_hash = excluded.payload_hash,
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
`
