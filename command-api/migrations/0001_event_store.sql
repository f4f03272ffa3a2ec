-- The append-only event store: the source of truth for every Paystream object.
--
-- Global order: `position` = (xid of the appending transaction << 20) | index
-- of the event inside that transaction. Readers only read positions below the
-- xmin horizon of the current snapshot (see `events_horizon()`): every
-- transaction with a smaller xid has finished, so nothing can ever appear
-- behind a reader. A transaction that commits late holds the horizon back
-- instead of being skipped.
--
-- Tamper evidence: each stream is a hash chain. `hash` = SHA-256(previous
-- event's hash || canonical bytes of this event); the first event chains from
-- 32 zero bytes. The canonical bytes are computed by the application (see
-- `store::chain`), so verification recomputes them from the stored columns.

create table event_streams (
    stream_id   text        primary key,
    category    text        not null,
    version     bigint      not null check (version >= 1),
    last_hash   bytea       not null check (length(last_hash) = 32),
    updated_at  timestamptz not null
);

create table events (
    position        bigint      primary key,
    event_id        uuid        not null unique,
    stream_id       text        not null,
    category        text        not null,
    version         bigint      not null check (version >= 1),
    event_type      text        not null,
    schema_version  smallint    not null check (schema_version >= 1),
    payload         jsonb       not null,
    merchant_id     uuid,
    causation_id    uuid,
    correlation_id  uuid,
    actor           text        not null,
    recorded_at     timestamptz not null,
    hash            bytea       not null check (length(hash) = 32),
    unique (stream_id, version)
);

create index events_merchant_position on events (merchant_id, position) where merchant_id is not null;
create index events_category_position on events (category, position);

-- Append-only: ordinary updates and deletes are refused. (A table owner can
-- still disable the trigger; the hash chains are what detect that.)
create function events_refuse_change() returns trigger language plpgsql as $$
begin
    raise exception 'events are append-only: % refused', tg_op using errcode = 'P0001';
end $$;

create trigger events_append_only
    before update or delete on events
    for each row execute function events_refuse_change();

-- The position below which the global log is final.
create function events_horizon() returns bigint language sql stable as $$
    select (pg_snapshot_xmin(pg_current_snapshot())::text::bigint) << 20
$$;

-- Appends events to one stream atomically, with optimistic concurrency.
--
-- Returns one row:
--   outcome 'appended'  - events were written, versions first..last
--   outcome 'duplicate' - every event id is already stored in this stream: a no-op
--   outcome 'conflict'  - the stream's version is not p_expected_version; `last_version` is the actual one
--   outcome 'event_id_reused' - some event id is stored in another stream or another position
-- Nothing is written unless the outcome is 'appended'.
create function append_events(
    p_stream_id        text,
    p_category         text,
    p_expected_version bigint,
    p_tx_index         integer,
    p_event_ids        uuid[],
    p_event_types      text[],
    p_schema_versions  smallint[],
    p_payloads         jsonb[],
    p_canonical        bytea[],
    p_merchant_id      uuid,
    p_causation_id     uuid,
    p_correlation_id   uuid,
    p_actor            text,
    p_recorded_at      timestamptz,
    out outcome        text,
    out first_version  bigint,
    out last_version   bigint,
    out last_position  bigint
) language plpgsql as $$
declare
    n           integer := cardinality(p_event_ids);
    current_ver bigint;
    prev_hash   bytea;
    base_pos    bigint;
    existing    integer;
    hashes      bytea[] := '{}';
    i           integer;
begin
    if n = 0 or n > 1000 then
        raise exception 'append_events: between 1 and 1000 events per append, got %', n using errcode = '22023';
    end if;

    -- Serialise writers of this stream: lock its row (or create it).
    select s.version, s.last_hash into current_ver, prev_hash
        from event_streams s where s.stream_id = p_stream_id for update;
    if not found then
        current_ver := 0;
        prev_hash := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
    end if;

    -- Idempotent event ids: a retry of an append that already landed is a no-op.
    select count(*) into existing from events e where e.event_id = any(p_event_ids);
    if existing > 0 then
        select min(e.version), max(e.version), max(e.position)
            into first_version, last_version, last_position
            from events e
            where e.event_id = any(p_event_ids) and e.stream_id = p_stream_id;
        if existing = n and last_version - first_version + 1 = n then
            outcome := 'duplicate';
        else
            outcome := 'event_id_reused';
        end if;
        return;
    end if;

    if current_ver <> p_expected_version then
        outcome := 'conflict';
        last_version := current_ver;
        return;
    end if;

    -- Chain the new events onto the stream.
    for i in 1..n loop
        prev_hash := sha256(prev_hash || p_canonical[i]);
        hashes[i] := prev_hash;
    end loop;

    if current_ver = 0 then
        insert into event_streams (stream_id, category, version, last_hash, updated_at)
            values (p_stream_id, p_category, n, prev_hash, p_recorded_at)
            on conflict (stream_id) do nothing;
        if not found then
            -- Another writer created the stream after our lookup: it won.
            select s.version into last_version from event_streams s where s.stream_id = p_stream_id;
            outcome := 'conflict';
            return;
        end if;
    else
        update event_streams
            set version = current_ver + n, last_hash = prev_hash, updated_at = p_recorded_at
            where stream_id = p_stream_id;
    end if;

    base_pos := (pg_current_xact_id()::text::bigint << 20) + p_tx_index;
    insert into events (position, event_id, stream_id, category, version, event_type,
                        schema_version, payload, merchant_id, causation_id,
                        correlation_id, actor, recorded_at, hash)
        select base_pos + t.ord - 1, t.event_id, p_stream_id, p_category, current_ver + t.ord,
               t.event_type, t.schema_version, t.payload, p_merchant_id, p_causation_id,
               p_correlation_id, p_actor, p_recorded_at, t.hash
        from unnest(p_event_ids, p_event_types, p_schema_versions, p_payloads, hashes)
             with ordinality as t(event_id, event_type, schema_version, payload, hash, ord);

    outcome := 'appended';
    first_version := current_ver + 1;
    last_version := current_ver + n;
    last_position := base_pos + n - 1;
end $$;

-- Where each relay (and later each projection) has got to in the global log.
create table relay_checkpoints (
    name        text        primary key,
    position    bigint      not null,
    updated_at  timestamptz not null default now()
);
