//! Test support: a database of its own, the real relay on a stream of its
//! own, merchants and payments made through the real aggregates, and a
//! webhook receiver the test controls.
#![allow(dead_code, unused_imports)]

pub mod apis;
pub mod receiver;
pub mod verifiers;

pub use paystream_store::testing::{
    admin_database_url, jetstream_at, nats_url, unique_name, wait_until, TestDatabase,
};

use std::future::Future;
use std::time::Duration;

use chrono::Utc;
use paystream_domain::merchant::{ConfigureWebhook, MerchantAggregate, RegisterMerchant};
use paystream_domain::order::{CreateOrder, OrderAggregate};
use paystream_domain::payment::{
    CreatePayment, PaymentAggregate, PaymentMethodInput, RecordPaymentFailure, RecordPaymentSuccess,
};
use paystream_domain::webhook::{
    WebhookDelivery, WebhookDeliveryAggregate, TEST_RETRY_INTERVALS_SECONDS,
};
use paystream_domain::{Currency, MerchantId, Money, OrderId, PaymentId, WebhookDeliveryId};
use paystream_store::relay::{self, RelayConfig, RelaySignal};
use paystream_store::runner::{self, Executed};
use paystream_store::{EventMetadata, PgEventStore};
use paystream_webhook_dispatcher::Settings;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// A migrated database of its own (`ps_test_…`), the relay publishing to a
/// JetStream stream of its own.
#[derive(Debug)]
pub struct TestEnv {
    pub database_url: String,
    pub store: PgEventStore,
    pub jetstream: async_nats::jetstream::Context,
    pub relay: RelayConfig,
    relay_task: JoinHandle<()>,
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        self.relay_task.abort();
    }
}

impl TestEnv {
    pub async fn start() -> Self {
        let database = TestDatabase::create().await;
        let (database_url, store) = (database.url, database.store);
        let jetstream = jetstream_at(&nats_url()).await;
        let stream = unique_name("t");
        let relay = RelayConfig {
            stream_name: stream.to_uppercase(),
            subject_prefix: format!("{stream}.events"),
            ..RelayConfig::default()
        };
        let relay_task = tokio::spawn(relay::run(
            store.clone(),
            jetstream.clone(),
            relay.clone(),
            RelaySignal::default(),
        ));
        Self {
            database_url,
            store,
            jetstream,
            relay,
            relay_task,
        }
    }

    /// Dispatcher settings for this environment: test schedule, loopback allowed.
    pub fn settings(&self) -> Settings {
        Settings {
            relay: self.relay.clone(),
            consumer_name: "webhook-dispatcher".into(),
            allow_private: true,
            retry_intervals: TEST_RETRY_INTERVALS_SECONDS.to_vec(),
            ..Settings::default()
        }
    }

    /// A merchant with `webhook_secret` and, if given, an endpoint.
    pub async fn merchant(&self, webhook_secret: &str, url: Option<&str>) -> MerchantId {
        let merchant_id = MerchantId::from(Uuid::now_v7());
        let metadata = metadata(merchant_id);
        let key = unique_name("key");
        runner::execute::<MerchantAggregate, _>(&self.store, merchant_id, &metadata, |_| {
            Ok(RegisterMerchant {
                merchant_id,
                name: "Shop".into(),
                email: format!("{}@example.com", unique_name("m")),
                password_hash: None,
                api_key: key.clone(),
                api_secret_hash: "0".repeat(64),
                webhook_secret: webhook_secret.into(),
                fee_bps: 200,
                at: Utc::now(),
            }
            .into())
        })
        .await
        .expect("register merchant");
        if let Some(url) = url {
            self.configure(merchant_id, Some(url)).await;
        }
        merchant_id
    }

    pub async fn configure(&self, merchant_id: MerchantId, url: Option<&str>) {
        runner::execute::<MerchantAggregate, _>(
            &self.store,
            merchant_id,
            &metadata(merchant_id),
            |_| {
                Ok(ConfigureWebhook {
                    url: url.map(str::to_owned),
                    events: Vec::new(),
                }
                .into())
            },
        )
        .await
        .expect("configure webhook");
    }

    /// An order and a UPI payment, `pending`.
    pub async fn payment(&self, merchant_id: MerchantId) -> PaymentId {
        let metadata = metadata(merchant_id);
        let order_id = OrderId::from_random_bytes(rand_bytes());
        let amount = Money::new(50_000, Currency::INR);
        runner::execute::<OrderAggregate, _>(&self.store, &order_id, &metadata, |_| {
            Ok(CreateOrder {
                order_id: order_id.clone(),
                merchant_id,
                amount,
                receipt: None,
                notes: None,
                at: Utc::now(),
            }
            .into())
        })
        .await
        .expect("create order");
        let payment_id = PaymentId::from_random_bytes(rand_bytes());
        let now = Utc::now();
        runner::execute::<PaymentAggregate, _>(&self.store, &payment_id, &metadata, |_| {
            Ok(CreatePayment {
                payment_id: payment_id.clone(),
                merchant_id,
                order_id: order_id.clone(),
                amount,
                order_paid: false,
                method: PaymentMethodInput::Upi {
                    vpa: "shopper@upi".into(),
                },
                current_year: 2025,
                current_month: 1,
                at: now,
            }
            .into())
        })
        .await
        .expect("create payment");
        payment_id
    }

    pub async fn succeed(&self, merchant_id: MerchantId, payment_id: &PaymentId) -> Uuid {
        let executed = runner::execute::<PaymentAggregate, _>(
            &self.store,
            payment_id,
            &metadata(merchant_id),
            |_| Ok(RecordPaymentSuccess { at: Utc::now() }.into()),
        )
        .await
        .expect("record success");
        last_event_id(&self.store, &executed).await
    }

    pub async fn fail(&self, merchant_id: MerchantId, payment_id: &PaymentId) {
        runner::execute::<PaymentAggregate, _>(
            &self.store,
            payment_id,
            &metadata(merchant_id),
            |_| {
                Ok(RecordPaymentFailure {
                    error_code: "PAYMENT_FAILED".into(),
                    error_description: "Payment declined by the bank".into(),
                    at: Utc::now(),
                }
                .into())
            },
        )
        .await
        .expect("record failure");
    }

    /// Every delivery of `merchant`, with its event name.
    pub async fn deliveries(&self, merchant_id: MerchantId) -> Vec<WebhookDelivery> {
        let streams: Vec<String> = sqlx::query_scalar(
            "select stream_id from events where category = 'webhook' \
             and event_type = 'WebhookDeliveryScheduled' and merchant_id = $1 order by position",
        )
        .bind(Uuid::from(merchant_id))
        .fetch_all(self.store.pool())
        .await
        .expect("deliveries");
        let mut deliveries = Vec::new();
        for stream in streams {
            let id: WebhookDeliveryId = stream.strip_prefix("webhook-").unwrap().parse().unwrap();
            deliveries.push(self.delivery(&id).await.expect("delivery"));
        }
        deliveries
    }

    pub async fn delivery(&self, id: &WebhookDeliveryId) -> Option<WebhookDelivery> {
        runner::load::<WebhookDeliveryAggregate>(&self.store, id)
            .await
            .expect("load delivery")
            .state
    }

    /// Waits until the dispatcher's consumer has handled every event in the store.
    pub async fn wait_consumed(&self) {
        wait_until(
            Duration::from_secs(15),
            "the consumer to catch up",
            || async {
                let stored: i64 = sqlx::query_scalar("select count(*) from events")
                    .fetch_one(self.store.pool())
                    .await
                    .unwrap();
                let mut stream = self
                    .jetstream
                    .get_stream(&self.relay.stream_name)
                    .await
                    .ok()?;
                let messages = stream.info().await.ok()?.state.messages;
                let consumer = stream.consumer_info("webhook-dispatcher").await.ok()?;
                (messages as i64 == stored
                    && consumer.num_pending == 0
                    && consumer.num_ack_pending == 0)
                    .then_some(())
            },
        )
        .await;
    }

    /// `(event_type, payload)` of every event of a stream, in order.
    pub async fn stream_events(&self, stream: &str) -> Vec<(String, serde_json::Value)> {
        sqlx::query_as(
            "select event_type, payload from events where stream_id = $1 order by version",
        )
        .bind(stream)
        .fetch_all(self.store.pool())
        .await
        .expect("events")
    }
}

async fn last_event_id<A: paystream_domain::Aggregate>(
    store: &PgEventStore,
    executed: &Executed<A>,
) -> Uuid {
    sqlx::query_scalar("select event_id from events where stream_id = $1 and version = $2")
        .bind(executed.stream.as_str())
        .bind(executed.version as i64)
        .fetch_one(store.pool())
        .await
        .expect("event id")
}

pub fn metadata(merchant_id: MerchantId) -> EventMetadata {
    EventMetadata {
        merchant_id: Some(merchant_id.into()),
        actor: format!("merchant:{merchant_id}"),
        ..EventMetadata::default()
    }
}

fn rand_bytes() -> [u8; 16] {
    rand::random()
}
