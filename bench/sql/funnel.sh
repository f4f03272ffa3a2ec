#!/usr/bin/env bash
# The conversion funnel's read (GET /api/v1/stats/funnel) on a large merchant:
# one merchant with ORDERS orders over 90 days (default 1,000,000), as the
# read models would hold them, then the funnel's query for 7, 30 and 90
# days and all time, with and without the index `rm_payments_order`.
#
#   bench/sql/funnel.sh [command-api binary]
#
# It creates (and afterwards drops) the database paystream_bench_funnel,
# applies the migrations with `command-api migrate`, and fills rm_orders and
# rm_payments with SQL: 85 % of orders attempted, 70 % paid, 40 % captured,
# 5 % refunded. Each timing is the best of 5 runs (psql's \timing).
set -euo pipefail
bin=${1:-${CARGO_TARGET_DIR:-target}/release/command-api}
orders=${ORDERS:-1000000}
db=paystream_bench_funnel
url=postgres://postgres@127.0.0.1:5432/$db
psql -X -q -h 127.0.0.1 -U postgres -d postgres -c "drop database if exists $db with (force)" -c "create database $db"
trap 'psql -X -q -h 127.0.0.1 -U postgres -d postgres -c "drop database if exists $db with (force)"' EXIT
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
funnel() {
    # The query of query-api/src/routes/stats.rs (funnel), for one period.
    local from=$1
    cat <<SQL
select count(*) as orders_created,
       count(*) filter (where o.status <> 'created') as payment_attempted,
       count(*) filter (where o.status = 'paid') as paid,
       count(p.payment_id) filter (where p.captured) as captured,
       count(p.payment_id) filter (where p.amount_refunded > 0) as refunded
from rm_orders o
left join rm_payments p on p.order_id = o.order_id and p.status = 'success'
where o.merchant_id = '$merchant'
  and ($from::date is null or o.created_at >= $from::date::timestamp at time zone 'UTC')
  and (null::date is null or o.created_at < (null::date + 1)::timestamp at time zone 'UTC');
SQL
}
best() {
    local sql=$1 i ms best=
    for i in 1 2 3 4 5; do
        ms=$( { printf '\\timing on\n%s\n' "$sql"; } | psql -X -q -h 127.0.0.1 -U postgres -d "$db" -o /dev/null 2>&1 \
              | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1)
        if [[ -z $best ]] || awk "BEGIN{exit !($ms < $best)}"; then best=$ms; fi
    done
    printf '%s' "$best"
}
echo "orders: $orders (one merchant, 90 days)"
printf '%-10s %14s %14s\n' period "with index" "without index"
declare -A with
for days in 7 30 90 all; do
    if [[ $days == all ]]; then from=null; else from="'$(date -u -d "-$((days - 1)) days" +%F)'"; fi
    with[$days]=$(best "$(funnel "$from")")
done
psql -X -q -h 127.0.0.1 -U postgres -d "$db" -c "drop index rm_payments_order"
for days in 7 30 90 all; do
    if [[ $days == all ]]; then from=null; else from="'$(date -u -d "-$((days - 1)) days" +%F)'"; fi
    printf '%-10s %11s ms %11s ms\n' "$days" "${with[$days]}" "$(best "$(funnel "$from")")"
done
