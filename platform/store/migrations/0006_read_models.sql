-- Read models: tables the projector derives from committed events, and the
-- query API reads. Every one of them can be dropped and rebuilt from the
-- event store (`projector rebuild`), so none holds anything the store lacks.
--
-- Each projection owns a set of tables and one row in
-- `projection_checkpoints`: the global position of the last event it
-- applied. The projector writes a batch's rows and the checkpoint in one
-- transaction, so the checkpoint always says exactly what the tables hold.
--
-- `state` columns hold the domain object as `evolve` left it (JSON), so a row
-- is the fold of its stream by construction; the other columns are copies
-- kept for filtering, sorting and sums. `version` is the stream version the
-- row reflects.
--
-- Table names are unqualified in the projector's SQL: a rebuild fills the
-- same tables in a private schema (`search_path`) and then moves them here
-- in one transaction.

create table projection_checkpoints (
    projection       text        primary key,
    position         bigint      not null,
    -- The JetStream stream sequence of the message that carried `position`
    -- (0: unknown, e.g. right after a rebuild from the store). The live
    -- projector resumes its consumer after it and refuses any gap.
    stream_sequence  bigint      not null default 0,
    updated_at       timestamptz not null default now()
);

-- Events a projection could not apply ("poison"): parked with the error, so
-- the projection goes on and an operator can see and replay them.
create table projection_parked (
    projection  text        not null,
    position    bigint      not null,
    event_id    uuid        not null,
    stream_id   text        not null,
    event_type  text        not null,
    error       text        not null,
    parked_at   timestamptz not null default now(),
    primary key (projection, position)
);

-- Projection `payments`: orders, payments, refunds, merchant stats.

create table rm_orders (
    order_id     text        primary key,
    merchant_id  uuid        not null,
    status       text        not null,
    amount       bigint      not null,
    currency     text        not null,
    created_at   timestamptz not null,
    updated_at   timestamptz not null,
    version      bigint      not null,
    state        jsonb       not null
);
create index rm_orders_list on rm_orders (merchant_id, created_at desc, order_id desc);

create table rm_payments (
    payment_id       text        primary key,
    merchant_id      uuid        not null,
    order_id         text        not null,
    status           text        not null,
    method           text        not null,
    amount           bigint      not null,
    currency         text        not null,
    captured         boolean     not null,
    captured_amount  bigint      not null,
    amount_refunded  bigint      not null,
    created_at       timestamptz not null,
    updated_at       timestamptz not null,
    version          bigint      not null,
    state            jsonb       not null
);
create index rm_payments_list on rm_payments (merchant_id, created_at desc, payment_id desc);

create table rm_refunds (
    refund_id     text        primary key,
    payment_id    text        not null,
    merchant_id   uuid        not null,
    status        text        not null,
    amount        bigint      not null,
    currency      text        not null,
    created_at    timestamptz not null,
    processed_at  timestamptz,
    -- The refund and its payment, as the payment's `evolve` left them.
    state         jsonb       not null
);
create index rm_refunds_list on rm_refunds (merchant_id, created_at desc, refund_id desc);
create index rm_refunds_payment on rm_refunds (payment_id, created_at);

-- Per merchant, UTC day of the payment's creation and currency.
create table rm_merchant_stats_daily (
    merchant_id  uuid    not null,
    day          date    not null,
    currency     text    not null,
    payments     bigint  not null,
    succeeded    bigint  not null,
    failed       bigint  not null,
    -- Sum of succeeded payments' amounts, minor units.
    volume       bigint  not null,
    primary key (merchant_id, day, currency)
);

-- Projection `webhooks`: deliveries and every attempt.

create table rm_webhook_deliveries (
    delivery_id      text        primary key,
    merchant_id      uuid        not null,
    event            text        not null,
    status           text        not null,
    attempts         integer     not null,
    created_at       timestamptz not null,
    updated_at       timestamptz not null,
    last_attempt_at  timestamptz,
    response_code    integer,
    next_retry_at    timestamptz,
    version          bigint      not null,
    state            jsonb       not null
);
create index rm_webhook_deliveries_list
    on rm_webhook_deliveries (merchant_id, created_at desc, delivery_id desc);

create table rm_webhook_attempts (
    delivery_id            text        not null,
    -- The delivery stream's version of the `WebhookAttemptRecorded` event:
    -- orders attempts across manual retries, which restart `attempt` at 1.
    version                bigint      not null,
    attempt                integer     not null,
    attempted_at           timestamptz not null,
    status_code            integer,
    latency_ms             integer     not null,
    error                  text,
    response_body_excerpt  text        not null,
    retry_after_seconds    integer,
    primary key (delivery_id, version)
);

-- Projection `merchants`: merchant accounts for staff and webhook settings.

create table rm_merchants (
    merchant_id   uuid        primary key,
    name          text        not null,
    email         text        not null,
    status        text        not null,
    api_key       text        not null,
    fee_bps       integer     not null,
    webhook_url   text,
    created_at    timestamptz not null,
    updated_at    timestamptz not null,
    version       bigint      not null,
    -- Holds secret hashes and the webhook secret: never sent as is.
    state         jsonb       not null
);
create index rm_merchants_list on rm_merchants (created_at desc, merchant_id desc);

-- Projection `ledger`: the double-entry ledger.
--
-- Amounts are signed minor units: a debit is positive, a credit negative, so
-- each entry's postings sum to zero and so does the whole table (the trial
-- balance). Accounts: `acquirer_clearing` (what the acquirer owes us),
-- `fee_revenue`, and `merchant_payable:<merchant id>` (what we owe the
-- merchant; its balance is the negated sum).

create table ledger_entries (
    entry_id     text        primary key,
    position     bigint      not null,
    -- `capture`, `fee`, `refund`, `fee_reversal`.
    kind         text        not null,
    merchant_id  uuid        not null,
    payment_id   text        not null,
    refund_id    text,
    currency     text        not null,
    amount       bigint      not null check (amount > 0),
    posted_at    timestamptz not null
);
create index ledger_entries_merchant on ledger_entries (merchant_id, position desc, entry_id desc);

create table ledger_postings (
    entry_id     text        not null,
    line         smallint    not null,
    account      text        not null,
    merchant_id  uuid,
    currency     text        not null,
    amount       bigint      not null,
    posted_at    timestamptz not null,
    primary key (entry_id, line)
);
create index ledger_postings_account on ledger_postings (account, currency, posted_at);

create table ledger_balances (
    account   text    not null,
    currency  text    not null,
    balance   bigint  not null,
    primary key (account, currency)
);

-- What the ledger needs to know to post: each merchant's fee rate, and each
-- payment's captured, refunded and fee totals so far.
create table ledger_merchants (
    merchant_id  uuid     primary key,
    fee_bps      integer  not null
);

create table ledger_payments (
    payment_id    text     primary key,
    merchant_id   uuid     not null,
    currency      text     not null,
    version       bigint   not null,
    -- domain::ledger::PaymentBook as JSON.
    book          jsonb    not null
);
