-- Finds the payment a refund belongs to (refunds live in their payment's
-- stream): GET /api/v1/refunds/{id} before any read model exists.
create index events_refund_id on events ((payload ->> 'refund_id'))
    where category = 'payment' and event_type = 'RefundCreated';
