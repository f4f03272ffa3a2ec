-- Projection `payments`: the conversion funnel (`GET /api/v1/stats/funnel`),
-- per merchant and UTC day of the order's creation: the orders created that
-- day, and how many of them have had a payment attempted, been paid, had
-- their (one) succeeded payment captured, and had at least one refund
-- processed, whenever those happened. A read sums the period's days.
create table rm_merchant_funnel_daily (
    merchant_id        uuid    not null,
    day                date    not null,
    orders_created     bigint  not null,
    payment_attempted  bigint  not null,
    paid               bigint  not null,
    captured           bigint  not null,
    refunded           bigint  not null,
    primary key (merchant_id, day)
);

-- The history already projected, counted from the rows the projector wrote
-- with the same checkpoint (an order is paid at most once, so it joins at
-- most one succeeded payment). A projector of an older build running during
-- this migration would leave it short: `projector rebuild --projection
-- payments` recounts it from the store.
insert into rm_merchant_funnel_daily
select o.merchant_id,
       (o.created_at at time zone 'UTC')::date,
       count(*),
       count(*) filter (where o.status <> 'created'),
       count(*) filter (where o.status = 'paid'),
       count(p.payment_id) filter (where p.captured),
       count(p.payment_id) filter (where p.amount_refunded > 0)
from rm_orders o
left join rm_payments p on p.order_id = o.order_id and p.status = 'success'
group by 1, 2;
