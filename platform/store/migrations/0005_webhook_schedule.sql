-- The webhook dispatcher's durable schedule: one row per pending delivery,
-- derived from the delivery's events (it can be rebuilt from the store).
-- `version` is the delivery stream's version the row reflects, so a stale
-- event handled late never overwrites or deletes a newer state.
-- `endpoint` is the target URL's origin, for per-endpoint concurrency limits.
-- `leased_until` is set while a dispatcher works on the delivery; a killed
-- dispatcher's lease expires and the delivery is picked up again.
create table webhook_schedule (
    delivery_id     text primary key,
    merchant_id     uuid not null,
    endpoint        text not null,
    next_attempt_at timestamptz not null,
    leased_until    timestamptz,
    version         bigint not null
);

create index webhook_schedule_due on webhook_schedule (next_attempt_at);
