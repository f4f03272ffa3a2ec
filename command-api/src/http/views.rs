//! The JSON shapes of orders, payments and refunds, as clients of the
//! original gateway know them. One place, so every endpoint answers alike.

use chrono::{DateTime, SecondsFormat, Utc};
use paystream_domain::order::Order;
use paystream_domain::payment::{Payment, Refund};
use serde_json::{json, Value};

pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn order(order: &Order) -> Value {
    json!({
        "id": order.order_id,
        "merchant_id": order.merchant_id,
        "amount": order.amount.amount_minor,
        "currency": order.amount.currency,
        "receipt": order.receipt,
        "notes": order.notes.clone().unwrap_or_default(),
        "status": order.status,
        "created_at": timestamp(order.created_at),
        "updated_at": timestamp(order.updated_at),
    })
}

pub fn payment(payment: &Payment) -> Value {
    let mut body = json!({
        "id": payment.payment_id,
        "order_id": payment.order_id,
        "merchant_id": payment.merchant_id,
        "amount": payment.amount.amount_minor,
        "currency": payment.amount.currency,
        "method": payment.method,
        "status": payment.status,
        "captured": payment.captured,
        "amount_refunded": payment.amount_refunded,
        "created_at": timestamp(payment.created_at),
        "updated_at": timestamp(payment.updated_at),
    });
    if let Some(vpa) = &payment.vpa {
        body["vpa"] = json!(vpa);
    }
    if let Some(network) = &payment.card_network {
        body["card_network"] = json!(network);
    }
    if let Some(last4) = &payment.card_last4 {
        body["card_last4"] = json!(last4);
    }
    if payment.error_code.is_some() {
        body["error_code"] = json!(payment.error_code);
        body["error_description"] = json!(payment.error_description);
    }
    body
}

pub fn refund(payment: &Payment, refund: &Refund) -> Value {
    json!({
        "id": refund.refund_id,
        "payment_id": payment.payment_id,
        "merchant_id": payment.merchant_id,
        "amount": refund.amount,
        "currency": payment.amount.currency,
        "reason": refund.reason,
        "status": refund.status,
        "created_at": timestamp(refund.created_at),
        "processed_at": refund.processed_at.map(timestamp),
    })
}
