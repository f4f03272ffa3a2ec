-- Failed dashboard logins per account (e-mail, lowercased), so that every
-- command-api instance sees the same lock-out. After the free failures
-- (PAYSTREAM_RATE_LOGIN_FREE_FAILURES) each further failure locks the
-- account for twice as long as the last, up to PAYSTREAM_RATE_LOGIN_LOCKOUT_MAX
-- seconds. A successful login, or staff (POST /api/v1/auth/unlock), deletes
-- the row. Not a read model: nothing here comes from the event log.
create table login_failures (
    email           text        primary key,
    failures        integer     not null,
    locked_until    timestamptz,
    last_failure_at timestamptz not null
);
