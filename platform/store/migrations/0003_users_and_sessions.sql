-- Dashboard logins and their sessions, plus the merchant e-mail registry.
-- Not events: password hashes stay out of the append-only log (it is
-- relayed, projected and exported to auditors, and could never be erased).

-- One login per e-mail address (stored lowercased by the application). Passwords are argon2id
-- PHC strings. A merchant user belongs to exactly one merchant; staff and
-- auditors belong to none.
create table users (
    email         text        primary key check (email <> ''),
    password_hash text        not null check (password_hash like '$argon2id$%'),
    role          text        not null check (role in ('merchant', 'staff', 'auditor')),
    merchant_id   uuid,
    created_at    timestamptz not null default now(),
    check ((role = 'merchant') = (merchant_id is not null))
);
create index users_merchant on users (merchant_id) where merchant_id is not null;

-- Sessions by SHA-256 of their bearer token (the token itself is shown once,
-- at login, and never stored). Role and merchant are copied from the user at
-- login. Expired rows are refused and deleted lazily.
create table sessions (
    token_hash  bytea       primary key check (length(token_hash) = 32),
    email       text        not null references users (email) on delete cascade,
    role        text        not null check (role in ('merchant', 'staff', 'auditor')),
    merchant_id uuid,
    created_at  timestamptz not null default now(),
    expires_at  timestamptz not null
);
create index sessions_expiry on sessions (expires_at);
create index sessions_merchant on sessions (merchant_id) where merchant_id is not null;

-- Each merchant's e-mail, lowercased: claimed before `MerchantRegistered` is
-- appended, so two merchants never share one (a 409 for the second).
create table merchant_emails (
    email       text        primary key,
    merchant_id uuid        not null unique,
    created_at  timestamptz not null default now()
);
