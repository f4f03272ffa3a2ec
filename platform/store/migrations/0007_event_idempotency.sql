-- What an event records of the `Idempotency-Key` request that caused it:
-- SHA-256 of the key and of the request (method, path, body without card
-- number and CVV). Both or neither; null for events appended without a key
-- and for every event stored before these columns existed.
--
-- The hash chain covers them: an event with them is hashed in the canonical
-- form `paystream.event.v2`, one without in `paystream.event.v1`, so the
-- hashes of older events are unchanged (see `store::chain`).
--
-- Nullable columns without a default: adding them rewrites no row. The
-- check is `not valid`, so adding it does not scan the table either: every
-- existing row has both columns null, and new rows are checked.

alter table events
    add column idempotency_key_hash     bytea,
    add column idempotency_request_hash bytea,
    add constraint events_idempotency_hashes check (
        (idempotency_key_hash is null and idempotency_request_hash is null)
        or (length(idempotency_key_hash) = 32 and length(idempotency_request_hash) = 32)
    ) not valid;
