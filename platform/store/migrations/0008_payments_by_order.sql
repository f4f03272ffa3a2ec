-- The payments of an order, for the conversion funnel
-- (`GET /api/v1/stats/funnel`), which joins the period's orders to their
-- succeeded payment. `projector rebuild` builds it on its private copy too,
-- as it does every index of a projection's tables.
create index rm_payments_order on rm_payments (order_id);
