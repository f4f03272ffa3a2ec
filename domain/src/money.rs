//! An amount in minor units of a currency. Never floating point.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::currency::Currency;
use crate::error::DomainError;

/// The largest amount any command accepts, in minor units: eight digits, the
/// limit Stripe applies to most currencies (999 999.99 INR or USD, 99 999 999
/// JPY). Every amount a client sends (an order, a capture, a refund) is
/// checked against [`Currency::max_amount_minor`], which is this for every
/// currency today.
///
/// Why a bound at all: amounts are `i64` here and `bigint` in the read
/// models, and captures, refunds, fees and balances are sums of them. With
/// each amount below 10^8, a sum of them overflows 64 bits only after more
/// than 9.2 × 10^10 amounts at the maximum, far beyond any account's life.
pub const MAX_AMOUNT_MINOR: i64 = 99_999_999;

/// `amount_minor` smallest units of `currency` (paise for INR, cents for USD,
/// yen for JPY). Serialized as `{"amount_minor": 50000, "currency": "INR"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub amount_minor: i64,
    pub currency: Currency,
}

impl Money {
    pub const fn new(amount_minor: i64, currency: Currency) -> Self {
        Self {
            amount_minor,
            currency,
        }
    }

    pub const fn zero(currency: Currency) -> Self {
        Self {
            amount_minor: 0,
            currency,
        }
    }

    /// Sum of two amounts of the same currency.
    pub fn checked_add(self, other: Money) -> Result<Money, DomainError> {
        self.same_currency(other)?;
        self.amount_minor
            .checked_add(other.amount_minor)
            .map(|amount_minor| Money::new(amount_minor, self.currency))
            .ok_or(DomainError::AmountOverflow)
    }

    /// Difference of two amounts of the same currency (may be negative).
    pub fn checked_sub(self, other: Money) -> Result<Money, DomainError> {
        self.same_currency(other)?;
        self.amount_minor
            .checked_sub(other.amount_minor)
            .map(|amount_minor| Money::new(amount_minor, self.currency))
            .ok_or(DomainError::AmountOverflow)
    }

    /// The amount itself when it is at most the currency's maximum
    /// ([`Currency::max_amount_minor`]); else [`DomainError::AmountAboveMaximum`].
    pub fn at_most_maximum(self) -> Result<Money, DomainError> {
        let maximum = self.currency.max_amount_minor();
        if self.amount_minor <= maximum {
            Ok(self)
        } else {
            Err(DomainError::AmountAboveMaximum {
                maximum: Money::new(maximum, self.currency),
            })
        }
    }

    pub const fn is_positive(&self) -> bool {
        self.amount_minor > 0
    }

    pub const fn is_negative(&self) -> bool {
        self.amount_minor < 0
    }

    fn same_currency(self, other: Money) -> Result<(), DomainError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(DomainError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }
}

/// `"500.00 INR"`, `"-0.05 USD"`, `"1200 JPY"`: the major amount with exactly
/// the currency's minor-unit digits, computed with integers only.
impl fmt::Display for Money {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let magnitude = self.amount_minor.unsigned_abs();
        let exponent = u32::from(self.currency.minor_unit_exponent());
        if exponent == 0 {
            return write!(formatter, "{sign}{magnitude} {}", self.currency);
        }
        let scale = 10u64.pow(exponent);
        let width = exponent as usize;
        write!(
            formatter,
            "{sign}{}.{:0width$} {}",
            magnitude / scale,
            magnitude % scale,
            self.currency
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_and_subtracts_within_a_currency() {
        let a = Money::new(50_000, Currency::INR);
        let b = Money::new(1_250, Currency::INR);
        assert_eq!(a.checked_add(b), Ok(Money::new(51_250, Currency::INR)));
        assert_eq!(b.checked_sub(a), Ok(Money::new(-48_750, Currency::INR)));
        assert!(a.is_positive());
        assert!(b.checked_sub(a).unwrap().is_negative());
        assert!(!Money::zero(Currency::INR).is_positive());
    }

    #[test]
    fn rejects_overflow() {
        let max = Money::new(i64::MAX, Currency::USD);
        let one = Money::new(1, Currency::USD);
        assert_eq!(max.checked_add(one), Err(DomainError::AmountOverflow));
        let min = Money::new(i64::MIN, Currency::USD);
        assert_eq!(min.checked_sub(one), Err(DomainError::AmountOverflow));
        assert_eq!(DomainError::AmountOverflow.code(), "BAD_REQUEST_ERROR");
    }

    #[test]
    fn the_maximum_is_eight_digits_in_every_currency() {
        for currency in Currency::all() {
            assert_eq!(currency.max_amount_minor(), 99_999_999, "{currency}");
            let maximum = Money::new(MAX_AMOUNT_MINOR, *currency);
            assert_eq!(maximum.at_most_maximum(), Ok(maximum));
            for above in [MAX_AMOUNT_MINOR + 1, i64::MAX] {
                assert_eq!(
                    Money::new(above, *currency).at_most_maximum(),
                    Err(DomainError::AmountAboveMaximum { maximum })
                );
            }
        }
        // Small and negative amounts are other rules' business.
        assert!(Money::new(i64::MIN, Currency::INR)
            .at_most_maximum()
            .is_ok());
        let error = Money::new(100_000_000, Currency::INR)
            .at_most_maximum()
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "amount must be at most 99999999 (999999.99 INR)"
        );
        assert_eq!(error.field(), Some("amount"));
        assert_eq!(error.code(), "BAD_REQUEST_ERROR");
        let yen = Money::new(100_000_000, Currency::JPY).at_most_maximum();
        assert_eq!(
            yen.unwrap_err().to_string(),
            "amount must be at most 99999999 (99999999 JPY)"
        );
    }

    #[test]
    fn sums_of_maximal_amounts_stay_far_from_overflow() {
        // 92 billion amounts at the maximum still fit in an i64 (and a bigint).
        let count = 92_000_000_000i64;
        assert!(MAX_AMOUNT_MINOR.checked_mul(count).is_some());
        assert!(MAX_AMOUNT_MINOR.checked_mul(count * 2).is_none());
    }

    #[test]
    fn rejects_currency_mismatch() {
        let rupees = Money::new(100, Currency::INR);
        let dollars = Money::new(100, Currency::USD);
        let error = rupees.checked_add(dollars).unwrap_err();
        assert_eq!(
            error,
            DomainError::CurrencyMismatch {
                left: Currency::INR,
                right: Currency::USD
            }
        );
        assert_eq!(error.to_string(), "currency mismatch: INR and USD");
        assert!(rupees.checked_sub(dollars).is_err());
    }

    #[test]
    fn displays_with_integer_arithmetic() {
        assert_eq!(Money::new(50_000, Currency::INR).to_string(), "500.00 INR");
        assert_eq!(Money::new(-5, Currency::USD).to_string(), "-0.05 USD");
        assert_eq!(Money::new(1_200, Currency::JPY).to_string(), "1200 JPY");
        assert_eq!(Money::new(1_234, Currency::KWD).to_string(), "1.234 KWD");
        assert_eq!(
            Money::new(i64::MIN, Currency::INR).to_string(),
            "-92233720368547758.08 INR"
        );
    }

    #[test]
    fn serde_shape() {
        let money = Money::new(50_000, Currency::INR);
        let json = serde_json::to_string(&money).unwrap();
        assert_eq!(json, r#"{"amount_minor":50000,"currency":"INR"}"#);
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), money);
    }
}
