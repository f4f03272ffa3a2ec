-- Tables the command side keeps next to the event store, written in step
-- with the events they derive from and rebuildable from them.

-- API credentials by key, for authenticating every request with one lookup.
-- Derived from merchant events (`MerchantRegistered`, `MerchantApiKeysRotated`,
-- `MerchantSuspended`, `MerchantReactivated`); secrets are stored as SHA-256
-- hex of the secret (secrets are 32 random bytes: a slow hash adds nothing).
create table merchant_credentials (
    merchant_id     uuid        primary key,
    api_key         text        not null unique,
    api_secret_hash text        not null,
    active          boolean     not null,
    updated_at      timestamptz not null default now()
);

-- Idempotency keys, per merchant, for 24 hours: the request's hash and, once
-- answered, the response to replay.
create table idempotency_keys (
    merchant_id   uuid        not null,
    key           text        not null,
    request_hash  bytea       not null,
    status_code   smallint,
    response_body jsonb,
    event_position bigint,
    created_at    timestamptz not null default now(),
    expires_at    timestamptz not null,
    primary key (merchant_id, key)
);
create index idempotency_keys_expiry on idempotency_keys (expires_at);
