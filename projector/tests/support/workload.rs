//! A randomized workload of real commands, run through the command side's
//! `aggregates` (the same code the HTTP handlers and the acquirer run):
//! merchants with different fee rates, orders, UPI and card payments,
//! successes and failures, partial captures, refunds in parts.

use chrono::{Datelike, Utc};
use paystream_domain::merchant::{MerchantAggregate, RegisterMerchant};
use paystream_domain::order::{CreateOrder, MarkOrderAttempted, MarkOrderPaid, OrderAggregate};
use paystream_domain::payment::{
    CapturePayment, CreatePayment, Payment, PaymentAggregate, PaymentMethodInput, PaymentStatus,
    ProcessRefund, RecordPaymentFailure, RecordPaymentSuccess, RequestRefund,
};
use paystream_domain::validation::CardInput;
use paystream_domain::{Currency, MerchantId, Money, OrderId, PaymentId, RefundId};
use paystream_store::runner::{self, execute};
use paystream_store::{EventMetadata, PgEventStore};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

fn metadata(merchant: Option<MerchantId>, actor: &str) -> EventMetadata {
    EventMetadata {
        merchant_id: merchant.map(|m| *m.as_uuid()),
        causation_id: None,
        correlation_id: Some(Uuid::now_v7()),
        actor: actor.to_owned(),
        idempotency: None,
    }
}

/// Registers a merchant charging `fee_bps`.
pub async fn merchant(store: &PgEventStore, fee_bps: u32) -> MerchantId {
    let merchant_id = MerchantId::from_uuid(Uuid::now_v7());
    execute::<MerchantAggregate, _>(store, merchant_id, &metadata(None, "staff:test"), |_| {
        Ok(RegisterMerchant {
            merchant_id,
            name: format!("Merchant {fee_bps}"),
            email: format!("{}@example.com", merchant_id.as_uuid().simple()),
            password_hash: None,
            api_key: format!("key_{}", Uuid::now_v7().simple()),
            api_secret_hash: "0".repeat(64),
            webhook_secret: "whsec_test".into(),
            fee_bps,
            at: Utc::now(),
        }
        .into())
    })
    .await
    .expect("register a merchant");
    merchant_id
}

/// Creates an order and a payment for it (and marks the order attempted).
pub async fn pay(
    store: &PgEventStore,
    merchant_id: MerchantId,
    amount: i64,
    card: bool,
) -> (OrderId, PaymentId) {
    let meta = metadata(Some(merchant_id), "merchant");
    let order_id = OrderId::from_random_bytes(rand::random());
    let currency = if amount % 7 == 0 {
        Currency::USD
    } else {
        Currency::INR
    };
    execute::<OrderAggregate, _>(store, &order_id, &meta, |_| {
        Ok(CreateOrder {
            order_id: order_id.clone(),
            merchant_id,
            amount: Money::new(amount, currency),
            receipt: Some("r".into()),
            notes: None,
            at: Utc::now(),
        }
        .into())
    })
    .await
    .expect("create an order");
    let payment_id = PaymentId::from_random_bytes(rand::random());
    let now = Utc::now();
    let method = if card {
        PaymentMethodInput::Card(CardInput {
            number: "4111 1111 1111 1111".into(),
            expiry_month: "12".into(),
            expiry_year: (now.year() + 2).to_string(),
            cvv: "123".into(),
            holder_name: "Shopper".into(),
        })
    } else {
        PaymentMethodInput::Upi {
            vpa: "shopper@okbank".into(),
        }
    };
    execute::<PaymentAggregate, _>(store, &payment_id, &meta, |_| {
        Ok(CreatePayment {
            payment_id: payment_id.clone(),
            merchant_id,
            order_id: order_id.clone(),
            amount: Money::new(amount, currency),
            order_paid: false,
            method: method.clone(),
            current_year: now.year(),
            current_month: now.month(),
            at: now,
        }
        .into())
    })
    .await
    .expect("create a payment");
    execute::<OrderAggregate, _>(store, &order_id, &meta, |_| {
        Ok(MarkOrderAttempted {
            payment_id: payment_id.clone(),
            at: Utc::now(),
        }
        .into())
    })
    .await
    .expect("mark the order attempted");
    (order_id, payment_id)
}

pub async fn payment(store: &PgEventStore, payment_id: &PaymentId) -> Payment {
    runner::load::<PaymentAggregate>(store, payment_id)
        .await
        .expect("load")
        .state
        .expect("payment exists")
}

/// The acquirer's outcome, through the same commands it runs.
pub async fn outcome(
    store: &PgEventStore,
    order_id: &OrderId,
    payment_id: &PaymentId,
    success: bool,
) {
    let meta = metadata(None, "system:acquirer");
    if success {
        execute::<OrderAggregate, _>(store, order_id, &meta, |_| {
            Ok(MarkOrderPaid {
                payment_id: payment_id.clone(),
                at: Utc::now(),
            }
            .into())
        })
        .await
        .expect("mark the order paid");
        execute::<PaymentAggregate, _>(store, payment_id, &meta, |_| {
            Ok(RecordPaymentSuccess { at: Utc::now() }.into())
        })
        .await
        .expect("record a success");
    } else {
        execute::<PaymentAggregate, _>(store, payment_id, &meta, |_| {
            Ok(RecordPaymentFailure {
                error_code: "PAYMENT_FAILED".into(),
                error_description: "Declined".into(),
                at: Utc::now(),
            }
            .into())
        })
        .await
        .expect("record a failure");
    }
}

pub async fn capture(
    store: &PgEventStore,
    payment_id: &PaymentId,
    merchant: MerchantId,
    amount: i64,
) {
    execute::<PaymentAggregate, _>(
        store,
        payment_id,
        &metadata(Some(merchant), "merchant"),
        |_| {
            Ok(CapturePayment {
                amount,
                at: Utc::now(),
            }
            .into())
        },
    )
    .await
    .expect("capture");
}

/// Requests a refund of `amount` and, if `process`, processes it.
pub async fn refund(
    store: &PgEventStore,
    payment_id: &PaymentId,
    merchant: MerchantId,
    amount: i64,
    process: bool,
) {
    let refund_id = RefundId::from_random_bytes(rand::random());
    execute::<PaymentAggregate, _>(
        store,
        payment_id,
        &metadata(Some(merchant), "merchant"),
        |_| {
            Ok(RequestRefund {
                refund_id: refund_id.clone(),
                amount,
                reason: Some("asked".into()),
                at: Utc::now(),
            }
            .into())
        },
    )
    .await
    .expect("request a refund");
    if process {
        execute::<PaymentAggregate, _>(
            store,
            payment_id,
            &metadata(None, "system:acquirer"),
            |_| {
                Ok(ProcessRefund {
                    refund_id: refund_id.clone(),
                    at: Utc::now(),
                }
                .into())
            },
        )
        .await
        .expect("process a refund");
    }
}

/// `payments` random payment lives for `merchants`, from `seed`: each is
/// created, then (usually) succeeds or fails, may be captured in part, and
/// may be refunded in one or more parts, some left pending.
pub async fn run(store: &PgEventStore, merchants: &[MerchantId], payments: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..payments {
        let merchant = merchants[rng.gen_range(0..merchants.len())];
        let amount = rng.gen_range(100..200_000);
        let (order_id, payment_id) = pay(store, merchant, amount, rng.gen_bool(0.5)).await;
        match rng.gen_range(0..10) {
            0 => continue, // stays pending
            1 | 2 => {
                outcome(store, &order_id, &payment_id, false).await;
                continue;
            }
            _ => outcome(store, &order_id, &payment_id, true).await,
        }
        let refund_first = rng.gen_bool(0.2);
        let mut refunded = 0;
        if refund_first {
            let part = rng.gen_range(1..=amount / 2);
            refund(store, &payment_id, merchant, part, true).await;
            refunded += part;
        }
        if rng.gen_bool(0.7) {
            let captured = if rng.gen_bool(0.5) {
                amount
            } else {
                rng.gen_range(1..=amount)
            };
            capture(store, &payment_id, merchant, captured).await;
        }
        for _ in 0..rng.gen_range(0..4) {
            let left = amount - refunded;
            if left < 1 {
                break;
            }
            let part = rng.gen_range(1..=left);
            refund(store, &payment_id, merchant, part, rng.gen_bool(0.8)).await;
            refunded += part;
        }
        let state = payment(store, &payment_id).await;
        assert_eq!(state.status, PaymentStatus::Success);
    }
}
