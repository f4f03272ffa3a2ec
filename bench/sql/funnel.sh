#!/usr/bin/env bash
# The conversion funnel's read (GET /api/v1/stats/funnel) on a large merchant:
# one merchant with ORDERS orders over 90 days (default 1,000,000), as the
# read models would hold them. For 7, 30 and 90 days and all time it times
# the read as built (the sum of `rm_merchant_funnel_daily`'s days) next to
# the baseline, the first design: counting the period's orders at read time,
# joined to their succeeded payment, with and without an index on
# `rm_payments (order_id)`. Also the time migration 0008 takes to fill the
# day table from those rows.
#
#   bench/sql/funnel.sh [command-api binary]
#
# It creates (and afterwards drops) the database paystream_bench_funnel,
# applies the migrations with `command-api migrate`, and fills rm_orders and
# rm_payments with SQL: 85 % of orders attempted, 70 % paid, 40 % captured,
# 5 % refunded. Each timing is the best of 5 runs (psql's \timing).
# KEEP=1 keeps the database.
set -euo pipefail
bin=${1:-${CARGO_TARGET_DIR:-target}/release/command-api}
orders=${ORDERS:-1000000}
db=paystream_bench_funnel
url=postgres://postgres@127.0.0.1:5432/$db
psql -X -q -h 127.0.0.1 -U postgres -d postgres -c "drop database if exists $db with (force)" -c "create database $db"
[[ -n ${KEEP:-} ]] || trap 'psql -X -q -h 127.0.0.1 -U postgres -d postgres -c "drop database if exists $db with (force)"' EXIT
PAYSTREAM_DATABASE_URL=$url "$bin" migrate >/dev/null
merchant=11111111-2222-3333-4444-555555555555
psql -X -q -h 127.0.0.1 -U postgres -d "$db" -v ON_ERROR_STOP=1 <<SQL
insert into rm_orders (order_id, merchant_id, status, amount, currency, created_at, updated_at, version, state)
select 'order_' || lpad(i::text, 16, '0'), '$merchant',
       case when i % 100 < 70 then 'paid' when i % 100 < 85 then 'attempted' else 'created' end,
       10000, 'INR', now() - (i % 90) * interval '1 day' - (i % 86400) * interval '1 second', now(), 1, '{}'
from generate_series(1, $orders) i;
insert into rm_payments (payment_id, merchant_id, order_id, status, method, amount, currency, captured,
                         captured_amount, amount_refunded, created_at, updated_at, version, state)
select 'pay_' || lpad(i::text, 16, '0'), '$merchant', 'order_' || lpad(i::text, 16, '0'),
       case when i % 100 < 70 then 'success' else 'failed' end, 'card', 10000, 'INR',
       i % 100 < 40, case when i % 100 < 40 then 10000 else 0 end, case when i % 100 < 5 then 1000 else 0 end,
       now(), now(), 2, '{}'
from generate_series(1, $orders) i where i % 100 < 85;
vacuum analyze rm_orders;
vacuum analyze rm_payments;
SQL
period() {   # $1: days back, or "all"
    if [[ $1 == all ]]; then echo null; else echo "'$(date -u -d "-$(($1 - 1)) days" +%F)'"; fi
}
# The first design: the period's orders, each joined to its succeeded payment.
joined() {
    cat <<SQL
select count(*), count(*) filter (where o.status <> 'created'), count(*) filter (where o.status = 'paid'),
       count(p.payment_id) filter (where p.captured), count(p.payment_id) filter (where p.amount_refunded > 0)
from rm_orders o
left join rm_payments p on p.order_id = o.order_id and p.status = 'success'
where o.merchant_id = '$merchant'
  and ($1::date is null or o.created_at >= $1::date::timestamp at time zone 'UTC');
SQL
}
# As built: query-api/src/routes/stats.rs (funnel).
daily() {
    cat <<SQL
select coalesce(sum(orders_created), 0)::int8, coalesce(sum(payment_attempted), 0)::int8,
       coalesce(sum(paid), 0)::int8, coalesce(sum(captured), 0)::int8, coalesce(sum(refunded), 0)::int8
from rm_merchant_funnel_daily
where merchant_id = '$merchant' and ($1::date is null or day >= $1);
SQL
}
best() {
    local sql=$1 i ms best=
    for i in 1 2 3 4 5; do
        ms=$(printf '\\timing on\n%s\n' "$sql" | psql -X -q -h 127.0.0.1 -U postgres -d "$db" -o /dev/null 2>&1 \
              | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1)
        if [[ -z $best ]] || awk "BEGIN{exit !($ms < $best)}"; then best=$ms; fi
    done
    printf '%s' "$best"
}
# Migration 0008's fill, on these rows (its own statement, timed once).
fill=$(sed -n '/^insert into rm_merchant_funnel_daily/,/;$/p' "$(dirname "$0")/../../platform/store/migrations/0008_merchant_funnel.sql")
backfill=$(printf '\\timing on\n%s\n' "$fill" | psql -X -q -h 127.0.0.1 -U postgres -d "$db" 2>&1 | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
psql -X -q -h 127.0.0.1 -U postgres -d "$db" -c "vacuum analyze rm_merchant_funnel_daily"
# The two reads agree.
for days in 7 all; do
    a=$(psql -X -At -h 127.0.0.1 -U postgres -d "$db" -c "$(joined "$(period $days)")")
    b=$(psql -X -At -h 127.0.0.1 -U postgres -d "$db" -c "$(daily "$(period $days)")")
    [[ $a == "$b" ]] || { echo "the reads disagree for $days: $a vs $b" >&2; exit 1; }
done
echo "orders: $orders (one merchant, 90 days); migration 0008's fill: $backfill ms"
declare -A plain
for days in 7 30 90 all; do plain[$days]=$(best "$(joined "$(period $days)")"); done
psql -X -q -h 127.0.0.1 -U postgres -d "$db" -c "create index rm_payments_order on rm_payments (order_id)" -c "analyze rm_payments"
printf '%-8s %16s %22s %22s\n' period "day table (built)" "join, no index" "join, order_id index"
for days in 7 30 90 all; do
    printf '%-8s %13s ms %19s ms %19s ms\n' "$days" "$(best "$(daily "$(period $days)")")" "${plain[$days]}" \
        "$(best "$(joined "$(period $days)")")"
done
