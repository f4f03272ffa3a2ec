//! The one domain error type. It knows nothing of HTTP: services map
//! [`DomainError::code`] to a status (every code here is a 4xx in the contract).

use crate::currency::Currency;
use crate::money::Money;
use crate::validation::card::CardRejection;

/// A command or a value was rejected by a domain rule.
///
/// Messages are safe to show to clients: they never contain a card number or
/// a CVV, and where the contract gives a wording it is used verbatim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    // ---- input values -------------------------------------------------
    /// A field broke a rule (length, range, format). `message` names the rule.
    #[error("{message}")]
    InvalidInput {
        field: &'static str,
        message: String,
    },

    /// A string was not a valid prefixed id (or UUID) for `field`.
    #[error("invalid {field}: expected {expected}")]
    InvalidId {
        field: &'static str,
        expected: &'static str,
    },

    #[error("currency must be an active ISO 4217 alphabetic code in upper case, such as INR")]
    UnknownCurrency,

    #[error("currency mismatch: {left} and {right}")]
    CurrencyMismatch { left: Currency, right: Currency },

    #[error("amount is out of range")]
    AmountOverflow,

    /// Above the currency's maximum ([`Currency::max_amount_minor`]).
    #[error("amount must be at most {} ({})", .maximum.amount_minor, .maximum)]
    AmountAboveMaximum { maximum: Money },

    #[error("Invalid VPA format")]
    InvalidVpa,

    #[error("{reason}")]
    InvalidCard { reason: CardRejection },

    #[error("Card has expired")]
    ExpiredCard,

    // ---- merchant -----------------------------------------------------
    #[error("Merchant already registered")]
    MerchantAlreadyRegistered,

    #[error("Merchant not found")]
    MerchantNotFound,

    #[error("Merchant is already suspended")]
    MerchantAlreadySuspended,

    #[error("Merchant is not suspended")]
    MerchantNotSuspended,

    // ---- order --------------------------------------------------------
    #[error("Order already exists")]
    OrderAlreadyExists,

    #[error("Order not found")]
    OrderNotFound,

    /// Invariant 3: an order is paid at most once.
    #[error("Order already paid")]
    OrderAlreadyPaid,

    // ---- payment and refunds ------------------------------------------
    #[error("Payment already exists")]
    PaymentAlreadyExists,

    #[error("Payment not found")]
    PaymentNotFound,

    /// An outcome was recorded for a payment that is no longer pending.
    #[error("Payment already finalized")]
    PaymentAlreadyFinalized,

    #[error("Payment not in capturable state")]
    PaymentNotCapturable,

    #[error("Payment not in refundable state")]
    PaymentNotRefundable,

    #[error("Refund amount exceeds available amount")]
    RefundExceedsAvailable,

    #[error("Refund already exists")]
    RefundAlreadyExists,

    #[error("Refund not found")]
    RefundNotFound,

    #[error("Refund already processed")]
    RefundAlreadyProcessed,

    // ---- webhook deliveries -------------------------------------------
    #[error("Webhook delivery already scheduled")]
    WebhookDeliveryAlreadyScheduled,

    #[error("Webhook delivery not found")]
    WebhookDeliveryNotFound,

    #[error("Webhook delivery is not pending")]
    WebhookDeliveryNotPending,

    /// An attempt number other than "attempts so far + 1" was recorded
    /// (a stale or duplicate dispatcher, or a manual retry reset the count).
    #[error("unexpected webhook attempt {actual}, expected attempt {expected}")]
    UnexpectedWebhookAttempt { expected: u32, actual: u32 },
}

impl DomainError {
    /// Stable machine code, as in the contract's error body `{"error": {"code"}}`.
    ///
    /// * `BAD_REQUEST_ERROR`: bad input, and the state rules the original
    ///   gateway answered with 400 (capture, refund, order already paid).
    /// * `INVALID_VPA`, `INVALID_CARD`, `EXPIRED_CARD`: payment method checks.
    /// * `NOT_FOUND_ERROR`: the object does not exist.
    /// * `CONFLICT_ERROR`: the object exists but its state forbids the command
    ///   (already registered, already suspended, already processed, ...).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidInput { .. }
            | Self::InvalidId { .. }
            | Self::UnknownCurrency
            | Self::CurrencyMismatch { .. }
            | Self::AmountOverflow
            | Self::AmountAboveMaximum { .. }
            | Self::OrderAlreadyPaid
            | Self::PaymentNotCapturable
            | Self::PaymentNotRefundable
            | Self::RefundExceedsAvailable => "BAD_REQUEST_ERROR",
            Self::InvalidVpa => "INVALID_VPA",
            Self::InvalidCard { .. } => "INVALID_CARD",
            Self::ExpiredCard => "EXPIRED_CARD",
            Self::MerchantNotFound
            | Self::OrderNotFound
            | Self::PaymentNotFound
            | Self::RefundNotFound
            | Self::WebhookDeliveryNotFound => "NOT_FOUND_ERROR",
            Self::MerchantAlreadyRegistered
            | Self::MerchantAlreadySuspended
            | Self::MerchantNotSuspended
            | Self::OrderAlreadyExists
            | Self::PaymentAlreadyExists
            | Self::PaymentAlreadyFinalized
            | Self::RefundAlreadyExists
            | Self::RefundAlreadyProcessed
            | Self::WebhookDeliveryAlreadyScheduled
            | Self::WebhookDeliveryNotPending
            | Self::UnexpectedWebhookAttempt { .. } => "CONFLICT_ERROR",
        }
    }

    /// The offending input, named as in the API body (`"amount"`, `"vpa"`,
    /// `"card.number"`, ...), when one input is to blame.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::InvalidInput { field, .. } | Self::InvalidId { field, .. } => Some(field),
            Self::UnknownCurrency | Self::CurrencyMismatch { .. } => Some("currency"),
            Self::AmountOverflow
            | Self::AmountAboveMaximum { .. }
            | Self::RefundExceedsAvailable => Some("amount"),
            Self::InvalidVpa => Some("vpa"),
            Self::InvalidCard { reason } => Some(reason.field()),
            // Expiry is a month/year pair: neither input alone is to blame.
            Self::ExpiredCard => None,
            _ => None,
        }
    }

    /// Shorthand for [`DomainError::InvalidInput`].
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidInput {
            field,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_wording_is_verbatim() {
        assert_eq!(
            DomainError::PaymentNotCapturable.to_string(),
            "Payment not in capturable state"
        );
        assert_eq!(
            DomainError::RefundExceedsAvailable.to_string(),
            "Refund amount exceeds available amount"
        );
        assert_eq!(
            DomainError::PaymentNotCapturable.code(),
            "BAD_REQUEST_ERROR"
        );
        assert_eq!(
            DomainError::RefundExceedsAvailable.code(),
            "BAD_REQUEST_ERROR"
        );
    }

    #[test]
    fn codes_and_fields() {
        assert_eq!(DomainError::InvalidVpa.code(), "INVALID_VPA");
        assert_eq!(DomainError::InvalidVpa.field(), Some("vpa"));
        assert_eq!(DomainError::ExpiredCard.code(), "EXPIRED_CARD");
        assert_eq!(
            DomainError::InvalidCard {
                reason: CardRejection::Luhn
            }
            .code(),
            "INVALID_CARD"
        );
        assert_eq!(
            DomainError::InvalidCard {
                reason: CardRejection::Cvv
            }
            .field(),
            Some("card.cvv")
        );
        assert_eq!(DomainError::PaymentNotFound.code(), "NOT_FOUND_ERROR");
        assert_eq!(DomainError::RefundAlreadyProcessed.code(), "CONFLICT_ERROR");
        let invalid = DomainError::invalid("amount", "amount must be at least 100");
        assert_eq!(invalid.code(), "BAD_REQUEST_ERROR");
        assert_eq!(invalid.field(), Some("amount"));
        assert_eq!(invalid.to_string(), "amount must be at least 100");
    }
}
