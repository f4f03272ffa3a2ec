//! The hosted checkout's logic, without the browser: the payment request a
//! form makes (validated by `domain`'s own rules, the very code the API
//! runs), the stages of a payment, and the messages an embedded checkout
//! posts to its parent. The Yew page (`app::checkout`) only renders these.

use paystream_domain::api::PublicPaymentView;
use paystream_domain::currency::Currency;
use paystream_domain::money::Money;
use paystream_domain::validation::card::{validate_card, CardInput};
use paystream_domain::validation::vpa::validate_vpa;
use paystream_domain::DomainError;
use serde_json::{json, Value};

/// How the shopper pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Upi,
    Card,
}

/// What the card form holds, as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardForm {
    pub number: String,
    /// `MM/YY` (or `MM/YYYY`).
    pub expiry: String,
    pub cvv: String,
    pub holder_name: String,
}

/// A field the shopper must fix, with the API's own words for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The form field: `vpa`, `card_number`, `expiry`, `cvv`,
    /// `holder_name`.
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    fn of(error: &DomainError) -> Self {
        let field = match error.field() {
            Some("vpa") => "vpa",
            Some("card.number") => "card_number",
            Some("card.cvv") => "cvv",
            Some("card.holder_name") => "holder_name",
            Some(field) if field.starts_with("card.expiry") => "expiry",
            _ if matches!(error, DomainError::ExpiredCard) => "expiry",
            _ => "card_number",
        };
        Self {
            field,
            message: error.to_string(),
        }
    }
}

/// `POST /api/v1/payments/public`'s body for a UPI payment.
pub fn upi_request(order_id: &str, vpa: &str) -> Result<Value, FieldError> {
    let vpa = vpa.trim();
    validate_vpa(vpa).map_err(|error| FieldError::of(&error))?;
    Ok(json!({"order_id": order_id, "method": "upi", "vpa": vpa}))
}

/// `POST /api/v1/payments/public`'s body for a card payment, checked
/// against today (`year`, `month` 1–12) as the API will check it.
pub fn card_request(
    order_id: &str,
    form: &CardForm,
    year: i32,
    month: u32,
) -> Result<Value, FieldError> {
    let (expiry_month, expiry_year) = match form.expiry.trim().split_once('/') {
        Some((month, year)) => (month.trim().to_owned(), year.trim().to_owned()),
        None => {
            return Err(FieldError {
                field: "expiry",
                message: "expiry must be MM/YY".into(),
            })
        }
    };
    let card = CardInput {
        number: form.number.trim().to_owned(),
        expiry_month,
        expiry_year,
        cvv: form.cvv.trim().to_owned(),
        holder_name: form.holder_name.trim().to_owned(),
    };
    validate_card(&card, year, month).map_err(|error| FieldError::of(&error))?;
    Ok(json!({
        "order_id": order_id,
        "method": "card",
        "card": {
            "number": card.number,
            "expiry_month": card.expiry_month,
            "expiry_year": card.expiry_year,
            "cvv": card.cvv,
            "holder_name": card.holder_name,
        }
    }))
}

/// An amount as people read it, from minor units and the currency code
/// (`50000`, `INR` → `500.00 INR`); integer arithmetic only.
pub fn display_amount(amount_minor: i64, currency: &str) -> String {
    match Currency::from_code(currency) {
        Ok(currency) => Money::new(amount_minor, currency).to_string(),
        Err(_) => format!("{amount_minor} {currency} (minor units)"),
    }
}

/// Where a payment stands, as the checkout shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Still `pending`: keep polling.
    Pending,
    Succeeded {
        payment_id: String,
    },
    Failed {
        payment_id: String,
        code: String,
        description: String,
    },
}

impl Outcome {
    pub fn of(payment: &PublicPaymentView) -> Self {
        match payment.status.as_str() {
            "success" => Outcome::Succeeded {
                payment_id: payment.id.clone(),
            },
            "failed" => Outcome::Failed {
                payment_id: payment.id.clone(),
                code: payment
                    .error_code
                    .clone()
                    .unwrap_or_else(|| "PAYMENT_FAILED".into()),
                description: payment
                    .error_description
                    .clone()
                    .unwrap_or_else(|| "Payment failed".into()),
            },
            _ => Outcome::Pending,
        }
    }
}

/// What an embedded checkout posts to the page that opened it: the
/// contract's `{type, data}`.
pub fn parent_message(outcome: &Outcome) -> Option<Value> {
    match outcome {
        Outcome::Pending => None,
        Outcome::Succeeded { payment_id } => Some(json!({
            "type": "payment_success",
            "data": {"paymentId": payment_id, "payment_id": payment_id},
        })),
        Outcome::Failed {
            payment_id,
            code,
            description,
        } => Some(json!({
            "type": "payment_failed",
            "data": {"paymentId": payment_id, "payment_id": payment_id, "code": code, "description": description},
        })),
    }
}

/// The `close_modal` message.
pub fn close_message() -> Value {
    json!({"type": "close_modal", "data": {}})
}

/// The origin of a URL (`https://shop.example:8443/pay?x` →
/// `https://shop.example:8443`): where an embedded checkout posts its
/// messages (never `*`). `None` when `url` has no origin.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}"))
}

/// Where an embedded checkout may post its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageTarget {
    /// Opened directly (a link, not the SDK's iframe): nobody to tell.
    NotEmbedded,
    /// The embedding page's origin, one the merchant allowed.
    Parent(String),
    /// Embedded, but not by a page the merchant allowed: no message is
    /// posted, and the page says why.
    Refused(String),
}

/// The embedding page may receive the checkout's messages only when its
/// origin is one of the merchant's checkout origins (`allowed`, as the
/// public order view lists them). The browser itself then delivers a
/// message only if the parent really is at that origin.
pub fn message_target(
    embedded: bool,
    parent_origin: Option<&str>,
    allowed: &[String],
) -> MessageTarget {
    if !embedded {
        return MessageTarget::NotEmbedded;
    }
    if allowed.is_empty() {
        return MessageTarget::Refused(
            "This shop has not yet listed the sites allowed to embed its checkout, so the result \
             cannot be sent back to the shop's page. Your payment is not affected: return to the \
             shop to see it."
                .into(),
        );
    }
    match parent_origin {
        Some(origin) if allowed.iter().any(|allowed| allowed == origin) => {
            MessageTarget::Parent(origin.to_owned())
        }
        Some(origin) => MessageTarget::Refused(format!(
            "The page that opened this checkout ({origin}) is not one of the shop's allowed \
             sites, so the result is not sent to it. Your payment is not affected."
        )),
        None => MessageTarget::Refused(
            "The page that opened this checkout could not be identified, so the result is not \
             sent to it. Your payment is not affected."
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_go_only_to_an_allowed_parent() {
        let allowed = vec!["https://shop.example".to_string()];
        assert_eq!(
            message_target(false, Some("https://shop.example"), &allowed),
            MessageTarget::NotEmbedded
        );
        assert_eq!(
            message_target(true, Some("https://shop.example"), &allowed),
            MessageTarget::Parent("https://shop.example".into())
        );
        for (parent, allowed) in [
            (Some("https://evil.example"), allowed.clone()),
            (Some("http://shop.example"), allowed.clone()),
            (None, allowed.clone()),
            (Some("https://shop.example"), Vec::new()),
        ] {
            assert!(
                matches!(
                    message_target(true, parent, &allowed),
                    MessageTarget::Refused(_)
                ),
                "{parent:?} {allowed:?}"
            );
        }
    }

    #[test]
    fn a_upi_payment_is_checked_by_the_domain() {
        assert_eq!(
            upi_request("order_1", " shopper@upi ").unwrap(),
            json!({"order_id": "order_1", "method": "upi", "vpa": "shopper@upi"})
        );
        let refused = upi_request("order_1", "no-at-sign").unwrap_err();
        assert_eq!(refused.field, "vpa");
    }

    #[test]
    fn a_card_payment_is_checked_by_the_domain() {
        let form = CardForm {
            number: "4111 1111 1111 1111".into(),
            expiry: "12/30".into(),
            cvv: "123".into(),
            holder_name: "A Shopper".into(),
        };
        let body = card_request("order_1", &form, 2026, 12).unwrap();
        assert_eq!(body["card"]["expiry_year"], "30");
        let luhn = CardForm {
            number: "4111 1111 1111 1112".into(),
            ..form.clone()
        };
        assert_eq!(
            card_request("order_1", &luhn, 2026, 12).unwrap_err().field,
            "card_number"
        );
        let expired = CardForm {
            expiry: "11/26".into(),
            ..form.clone()
        };
        assert_eq!(
            card_request("order_1", &expired, 2026, 12)
                .unwrap_err()
                .field,
            "expiry"
        );
        let no_slash = CardForm {
            expiry: "1230".into(),
            ..form.clone()
        };
        assert_eq!(
            card_request("order_1", &no_slash, 2026, 12)
                .unwrap_err()
                .field,
            "expiry"
        );
        let cvv = CardForm {
            cvv: "12".into(),
            ..form
        };
        assert_eq!(
            card_request("order_1", &cvv, 2026, 12).unwrap_err().field,
            "cvv"
        );
    }

    #[test]
    fn amounts_are_shown_in_major_units() {
        assert_eq!(display_amount(50_000, "INR"), "500.00 INR");
        assert_eq!(display_amount(500, "JPY"), "500 JPY");
    }

    #[test]
    fn outcomes_become_the_contracts_messages() {
        let payment = |status: &str| PublicPaymentView {
            id: "pay_1".into(),
            order_id: "order_1".into(),
            amount: 100,
            currency: "INR".into(),
            method: "card".into(),
            status: status.into(),
            error_code: (status == "failed").then(|| "CARD_DECLINED".into()),
            error_description: (status == "failed").then(|| "Card declined".into()),
        };
        assert_eq!(Outcome::of(&payment("pending")), Outcome::Pending);
        assert_eq!(parent_message(&Outcome::Pending), None);
        let success = parent_message(&Outcome::of(&payment("success"))).unwrap();
        assert_eq!(success["type"], "payment_success");
        assert_eq!(success["data"]["paymentId"], "pay_1");
        let failed = parent_message(&Outcome::of(&payment("failed"))).unwrap();
        assert_eq!(failed["type"], "payment_failed");
        assert_eq!(failed["data"]["code"], "CARD_DECLINED");
        assert_eq!(close_message()["type"], "close_modal");
    }

    #[test]
    fn messages_go_to_the_parents_origin_only() {
        assert_eq!(
            origin_of("http://localhost:8000/example?x=1").as_deref(),
            Some("http://localhost:8000")
        );
        assert_eq!(
            origin_of("https://shop.example").as_deref(),
            Some("https://shop.example")
        );
        assert_eq!(origin_of(""), None);
        assert_eq!(origin_of("about:blank"), None);
        assert_eq!(origin_of("javascript://x"), None);
    }
}
