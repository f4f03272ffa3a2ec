-- Projection `payments`: the conversion funnel recounted (issue 18).
--
-- The projector counted an order as `payment_attempted` only on an
-- `OrderAttempted` event, but an order can be paid without one: the acquirer
-- may claim it (`MarkOrderPaid`) before the request that created its payment
-- marks it attempted, which is then a no-op, and a mark that failed was only
-- logged. `payment_attempted` then fell below `paid`. The projector now counts
-- each step from the order's state and that of the payment that paid it (its
-- `paid_by`): attempted = attempted or paid; captured and refunded = that
-- payment captured, and with a refund processed. This recounts every day
-- the same way, from the rows the projector wrote with the same checkpoint.
--
-- Live projector transactions wait on the lock until this commits, then add
-- their changes on top of the recount (their rows are not in its snapshot).
-- A projector of an older build running meanwhile would count the old way
-- again: `projector rebuild --projection payments` recounts from the store.
lock table rm_merchant_funnel_daily in exclusive mode;

delete from rm_merchant_funnel_daily;

insert into rm_merchant_funnel_daily
select o.merchant_id,
       (o.created_at at time zone 'UTC')::date,
       count(*),
       count(*) filter (where o.status <> 'created' or o.state->>'paid_by' is not null),
       count(*) filter (where o.state->>'paid_by' is not null),
       count(*) filter (where p.captured),
       count(*) filter (where p.amount_refunded > 0)
from rm_orders o
left join rm_payments p on p.payment_id = o.state->>'paid_by'
group by 1, 2;
