//! Domain events survive the store unchanged: what a command decided is what
//! a replay of the stored stream rebuilds.

mod support;

use chrono::{DateTime, Utc};
use paystream_domain::order::{CreateOrder, MarkOrderAttempted, MarkOrderPaid, OrderAggregate};
use paystream_domain::{
    execute, replay, Aggregate, Currency, DomainEvent, MerchantId, Money, OrderId, PaymentId,
};
use paystream_store::{EventMetadata, EventStore, ExpectedVersion, NewEvent, StreamId};
use support::TestDatabase;

#[tokio::test]
async fn an_order_replayed_from_the_store_equals_the_decided_state() {
    let database = TestDatabase::create().await;
    let store = database.store.clone();
    let at: DateTime<Utc> = "2026-11-26T10:00:00.123456789Z".parse().unwrap();
    let order_id = OrderId::from_random_bytes([7; 16]);
    let payment_id = PaymentId::from_random_bytes([9; 16]);
    let merchant_id = MerchantId::from(uuid::Uuid::now_v7());
    let currency: Currency = "INR".parse().unwrap();
    let commands = vec![
        CreateOrder {
            order_id: order_id.clone(),
            merchant_id,
            amount: Money::new(50_000, currency),
            receipt: Some("receipt#1".into()),
            notes: Some(
                serde_json::json!({"customer": "Ünïcode", "count": 3})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
            at,
        }
        .into(),
        MarkOrderAttempted {
            payment_id: payment_id.clone(),
            at,
        }
        .into(),
        MarkOrderPaid { payment_id, at }.into(),
    ];

    let stream = StreamId::new(OrderAggregate::CATEGORY, &order_id).unwrap();
    let mut state = <OrderAggregate as Aggregate>::State::default();
    let mut version = 0;
    for command in commands {
        let (events, next) = execute::<OrderAggregate>(&state, command).unwrap();
        let new_events: Vec<NewEvent> = events
            .iter()
            .map(|e| NewEvent::new(e.event_type(), e.schema_version(), e.to_payload()))
            .collect();
        let appended = store
            .append(
                &stream,
                ExpectedVersion::from_version(version),
                new_events,
                &EventMetadata::default(),
            )
            .await
            .unwrap();
        version = appended.last_version;
        state = next;
    }

    let stored = store.read_stream(&stream, 0, 100).await.unwrap();
    let events: Vec<_> = stored
        .into_iter()
        .map(|e| {
            <OrderAggregate as Aggregate>::Event::from_stored(
                &e.event_type,
                e.schema_version,
                e.payload,
            )
            .unwrap()
        })
        .collect();
    assert_eq!(events.len(), 3);
    assert_eq!(replay::<OrderAggregate>(&events), state);
}
