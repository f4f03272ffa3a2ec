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
-- 32 zero bytes. The application computes the canonical bytes and the hashes
-- (see `store::chain`); verification recomputes them from the stored columns.
--
-- `event_streams` holds each stream's head (version, last hash). Appends move
-- a head only from the version they read (`where version = previous`), which
-- is the optimistic concurrency check (see `store::postgres::append`).

create table event_streams (
    stream_id   text        primary key,
    category    text        not null,
    version     bigint      not null check (version >= 1),
    last_hash   bytea       not null check (length(last_hash) = 32),
    updated_at  timestamptz not null
) with (fillfactor = 70); -- room for HOT updates: heads change on every append

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

-- Where each relay has got to in the global log.
create table relay_checkpoints (
    name        text        primary key,
    position    bigint      not null,
    updated_at  timestamptz not null default now()
);
