//! The acquirer's decision, as a pure function: what a payment's outcome is
//! and how long the "bank" takes, and how long a refund takes. No I/O, no
//! clock and no global randomness, so it is unit-tested directly.
//!
//! Randomness is a hash of the object's id: SHA-256 of
//! `paystream.acquirer.v1/<payment|refund>/<id>`, read as two big-endian
//! `u64` draws (one for the delay, one for the outcome). A redelivered message
//! thus picks the same delay and the same outcome, on any machine and with any
//! version of the `rand` crate. Ids are 95 random bits, so the draws are as
//! good as random across payments.
//!
//! The order of the rules (first match wins):
//!
//! 1. the three magic inputs (see [`MagicRule`]), in every mode;
//! 2. `TEST_MODE=true`: the outcome is `TEST_PAYMENT_SUCCESS`;
//! 3. otherwise success with probability 0.90 (UPI) or 0.95 (card).
//!
//! The delay never depends on the rule: 5–10 s for a payment and 3–5 s for a
//! refund, or `TEST_PROCESSING_DELAY` in test mode.

use std::ops::RangeInclusive;
use std::time::Duration;

use paystream_domain::payment::{PaymentCreated, PaymentMethod};
use paystream_domain::RefundId;
use sha2::{Digest, Sha256};

/// Payment processing time outside test mode, in milliseconds.
pub const PAYMENT_DELAY_MS: RangeInclusive<u64> = 5_000..=10_000;
/// Refund processing time outside test mode, in milliseconds.
pub const REFUND_DELAY_MS: RangeInclusive<u64> = 3_000..=5_000;
/// Chance of success of a UPI payment outside test mode, per ten thousand.
pub const UPI_SUCCESS_PER_10K: u64 = 9_000;
/// Chance of success of a card payment outside test mode, per ten thousand.
pub const CARD_SUCCESS_PER_10K: u64 = 9_500;

/// The failure code of a declined payment (random, test mode, or magic VPA).
pub const PAYMENT_FAILED: &str = "PAYMENT_FAILED";
/// The failure code of the magic declined card.
pub const CARD_DECLINED: &str = "CARD_DECLINED";
/// The failure code of a payment that succeeded at the bank for an order that
/// another payment had already paid (contract invariant 3).
pub const ORDER_ALREADY_PAID: &str = "ORDER_ALREADY_PAID";

/// How outcomes and delays are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessingMode {
    /// The contract's simulation: random delays and random outcomes.
    Simulated,
    /// `TEST_MODE=true`: a fixed delay (`TEST_PROCESSING_DELAY`) for payments
    /// and refunds, and a fixed outcome (`TEST_PAYMENT_SUCCESS`) for payments
    /// that no magic input decides.
    Test {
        delay: Duration,
        payment_success: bool,
    },
}

impl ProcessingMode {
    /// The longest delay this mode can pick.
    pub fn longest_delay(&self) -> Duration {
        match self {
            Self::Simulated => {
                Duration::from_millis((*PAYMENT_DELAY_MS.end()).max(*REFUND_DELAY_MS.end()))
            }
            Self::Test { delay, .. } => *delay,
        }
    }
}

/// The inputs that force an outcome in every mode. Exactly these three:
///
/// | input | outcome |
/// |---|---|
/// | UPI, VPA local part `fail` (e.g. `fail@upi`) | failed, `PAYMENT_FAILED`, "Payment declined by the bank (test VPA)" |
/// | UPI, VPA local part `success` (e.g. `success@upi`) | success |
/// | card whose last four digits are `0002` (e.g. `4000 0000 0000 0002`) | failed, `CARD_DECLINED`, "Card declined by the issuer (test card)" |
///
/// The local part is compared ignoring ASCII case (`FAIL@upi` fails too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MagicRule {
    FailingVpa,
    SucceedingVpa,
    DeclinedCard,
}

impl MagicRule {
    pub const FAILING_VPA_LOCAL_PART: &'static str = "fail";
    pub const SUCCEEDING_VPA_LOCAL_PART: &'static str = "success";
    pub const DECLINED_CARD_LAST4: &'static str = "0002";

    /// The rule `payment` triggers, if any.
    pub fn of(payment: &PaymentCreated) -> Option<Self> {
        match payment.method {
            PaymentMethod::Upi => {
                let local = payment.vpa.as_deref()?.split_once('@')?.0;
                if local.eq_ignore_ascii_case(Self::FAILING_VPA_LOCAL_PART) {
                    Some(Self::FailingVpa)
                } else if local.eq_ignore_ascii_case(Self::SUCCEEDING_VPA_LOCAL_PART) {
                    Some(Self::SucceedingVpa)
                } else {
                    None
                }
            }
            PaymentMethod::Card => (payment.card_last4.as_deref()
                == Some(Self::DECLINED_CARD_LAST4))
            .then_some(Self::DeclinedCard),
        }
    }

    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::FailingVpa => "failing_vpa",
            Self::SucceedingVpa => "succeeding_vpa",
            Self::DeclinedCard => "declined_card",
        }
    }

    fn outcome(&self) -> PaymentOutcome {
        match self {
            Self::FailingVpa => {
                PaymentOutcome::failure(PAYMENT_FAILED, "Payment declined by the bank (test VPA)")
            }
            Self::SucceedingVpa => PaymentOutcome::Success,
            Self::DeclinedCard => {
                PaymentOutcome::failure(CARD_DECLINED, "Card declined by the issuer (test card)")
            }
        }
    }
}

/// What the bank answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    Success,
    Failure {
        error_code: String,
        error_description: String,
    },
}

impl PaymentOutcome {
    pub fn failure(error_code: &str, error_description: &str) -> Self {
        Self::Failure {
            error_code: error_code.to_owned(),
            error_description: error_description.to_owned(),
        }
    }

    pub fn is_success(&self) -> bool {
        matches!(self, Self::Success)
    }

    /// `"success"` or the failure code, for logs and metrics.
    pub fn label(&self) -> &str {
        match self {
            Self::Success => "success",
            Self::Failure { error_code, .. } => error_code,
        }
    }
}

/// Which rule decided an outcome (for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecidedBy {
    Magic(MagicRule),
    TestMode,
    Chance,
}

impl DecidedBy {
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Magic(rule) => rule.as_str(),
            Self::TestMode => "test_mode",
            Self::Chance => "chance",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentDecision {
    /// How long the bank takes, counted from when the payment was recorded.
    pub delay: Duration,
    pub outcome: PaymentOutcome,
    pub decided_by: DecidedBy,
}

/// Decides a payment's outcome and delay. Deterministic in the payment id.
pub fn decide_payment(payment: &PaymentCreated, mode: ProcessingMode) -> PaymentDecision {
    let [delay_draw, outcome_draw] = draws("payment", payment.payment_id.as_str());
    let delay = match mode {
        ProcessingMode::Simulated => pick_millis(PAYMENT_DELAY_MS, delay_draw),
        ProcessingMode::Test { delay, .. } => delay,
    };
    let (outcome, decided_by) = if let Some(rule) = MagicRule::of(payment) {
        (rule.outcome(), DecidedBy::Magic(rule))
    } else {
        let success = match mode {
            ProcessingMode::Test {
                payment_success, ..
            } => payment_success,
            ProcessingMode::Simulated => {
                let per_10k = match payment.method {
                    PaymentMethod::Upi => UPI_SUCCESS_PER_10K,
                    PaymentMethod::Card => CARD_SUCCESS_PER_10K,
                };
                outcome_draw % 10_000 < per_10k
            }
        };
        let outcome = if success {
            PaymentOutcome::Success
        } else {
            PaymentOutcome::failure(PAYMENT_FAILED, "Payment declined by the bank")
        };
        let decided_by = match mode {
            ProcessingMode::Test { .. } => DecidedBy::TestMode,
            ProcessingMode::Simulated => DecidedBy::Chance,
        };
        (outcome, decided_by)
    };
    PaymentDecision {
        delay,
        outcome,
        decided_by,
    }
}

/// How long a refund takes, counted from when it was requested. Refunds
/// always end `processed`. Deterministic in the refund id.
pub fn refund_delay(refund_id: &RefundId, mode: ProcessingMode) -> Duration {
    match mode {
        ProcessingMode::Simulated => {
            pick_millis(REFUND_DELAY_MS, draws("refund", refund_id.as_str())[0])
        }
        ProcessingMode::Test { delay, .. } => delay,
    }
}

/// What is left of `delay` once `elapsed` has passed (never more than `delay`,
/// so a clock that runs ahead or behind cannot stretch the wait).
pub fn remaining(delay: Duration, elapsed: Option<Duration>) -> Duration {
    match elapsed {
        Some(elapsed) => delay.saturating_sub(elapsed),
        None => delay,
    }
}

/// Two independent uniform `u64`s derived from `kind` and `id`.
fn draws(kind: &str, id: &str) -> [u64; 2] {
    let digest = Sha256::new()
        .chain_update(b"paystream.acquirer.v1/")
        .chain_update(kind.as_bytes())
        .chain_update(b"/")
        .chain_update(id.as_bytes())
        .finalize();
    let word = |index: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[index * 8..index * 8 + 8]);
        u64::from_be_bytes(bytes)
    };
    [word(0), word(1)]
}

/// A whole number of milliseconds in `range`, uniform up to a bias of
/// `range length / 2^64`.
fn pick_millis(range: RangeInclusive<u64>, draw: u64) -> Duration {
    let span = range.end() - range.start() + 1;
    Duration::from_millis(range.start() + draw % span)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use paystream_domain::validation::CardNetwork;
    use paystream_domain::{Currency, MerchantId, OrderId, PaymentId};

    use super::*;

    fn id(n: u32) -> PaymentId {
        let mut bytes = [0u8; 16];
        bytes[..4].copy_from_slice(&n.to_be_bytes());
        PaymentId::from_random_bytes(bytes)
    }

    fn upi(n: u32, vpa: &str) -> PaymentCreated {
        PaymentCreated {
            payment_id: id(n),
            order_id: OrderId::from_random_bytes([7; 16]),
            merchant_id: MerchantId::from_uuid(uuid::Uuid::nil()),
            amount: 50_000,
            currency: Currency::INR,
            method: PaymentMethod::Upi,
            vpa: Some(vpa.to_owned()),
            card_network: None,
            card_last4: None,
            created_at: Utc::now(),
        }
    }

    fn card(n: u32, last4: &str) -> PaymentCreated {
        PaymentCreated {
            method: PaymentMethod::Card,
            vpa: None,
            card_network: Some(CardNetwork::Visa),
            card_last4: Some(last4.to_owned()),
            ..upi(n, "unused@upi")
        }
    }

    const TEST_OK: ProcessingMode = ProcessingMode::Test {
        delay: Duration::from_millis(1000),
        payment_success: true,
    };
    const TEST_FAIL: ProcessingMode = ProcessingMode::Test {
        delay: Duration::from_millis(1000),
        payment_success: false,
    };

    #[test]
    fn magic_inputs_win_in_every_mode() {
        for mode in [ProcessingMode::Simulated, TEST_OK, TEST_FAIL] {
            for n in 0..200 {
                let failed = decide_payment(&upi(n, "fail@upi"), mode);
                assert_eq!(
                    failed.outcome,
                    PaymentOutcome::failure(
                        PAYMENT_FAILED,
                        "Payment declined by the bank (test VPA)"
                    )
                );
                assert_eq!(failed.decided_by, DecidedBy::Magic(MagicRule::FailingVpa));
                assert_eq!(
                    decide_payment(&upi(n, "FAIL@okaxis"), mode).outcome.label(),
                    PAYMENT_FAILED
                );
                assert!(decide_payment(&upi(n, "success@upi"), mode)
                    .outcome
                    .is_success());
                let declined = decide_payment(&card(n, "0002"), mode);
                assert_eq!(declined.outcome.label(), CARD_DECLINED);
                assert_eq!(
                    declined.decided_by,
                    DecidedBy::Magic(MagicRule::DeclinedCard)
                );
            }
        }
    }

    #[test]
    fn only_the_three_magic_inputs_are_magic() {
        for payment in [
            upi(1, "failure@upi"),
            upi(1, "fail.me@upi"),
            upi(1, "success1@upi"),
            upi(1, "shopper@fail"),
            card(1, "1111"),
            card(1, "0020"),
        ] {
            assert_eq!(MagicRule::of(&payment), None, "{:?}", payment.vpa);
        }
        // A card payment is never decided by a VPA, nor a UPI one by last4.
        let mut odd = card(1, "1111");
        odd.vpa = Some("fail@upi".into());
        assert_eq!(MagicRule::of(&odd), None);
    }

    #[test]
    fn test_mode_uses_its_delay_and_outcome() {
        for n in 0..100 {
            let ok = decide_payment(&upi(n, "shopper@okaxis"), TEST_OK);
            assert_eq!(ok.delay, Duration::from_millis(1000));
            assert_eq!(ok.outcome, PaymentOutcome::Success);
            assert_eq!(ok.decided_by, DecidedBy::TestMode);
            let failed = decide_payment(&card(n, "1111"), TEST_FAIL);
            assert_eq!(failed.outcome.label(), PAYMENT_FAILED);
            let refund = RefundId::from_random_bytes([n as u8; 16]);
            assert_eq!(refund_delay(&refund, TEST_OK), Duration::from_millis(1000));
        }
    }

    #[test]
    fn simulated_delays_stay_in_range_and_spread() {
        let delays: Vec<u64> = (0..2_000)
            .map(|n| {
                decide_payment(&upi(n, "shopper@okaxis"), ProcessingMode::Simulated)
                    .delay
                    .as_millis() as u64
            })
            .collect();
        assert!(delays.iter().all(|d| PAYMENT_DELAY_MS.contains(d)));
        assert!(delays.iter().any(|d| *d < 5_200));
        assert!(delays.iter().any(|d| *d > 9_800));

        let refunds: Vec<u64> = (0..2_000u32)
            .map(|n| {
                let mut bytes = [0u8; 16];
                bytes[..4].copy_from_slice(&n.to_be_bytes());
                refund_delay(
                    &RefundId::from_random_bytes(bytes),
                    ProcessingMode::Simulated,
                )
                .as_millis() as u64
            })
            .collect();
        assert!(refunds.iter().all(|d| REFUND_DELAY_MS.contains(d)));
        assert!(refunds.iter().any(|d| *d < 3_100));
        assert!(refunds.iter().any(|d| *d > 4_900));
    }

    #[test]
    fn the_same_payment_always_gets_the_same_decision() {
        for n in 0..500 {
            let payment = card(n, "4242");
            assert_eq!(
                decide_payment(&payment, ProcessingMode::Simulated),
                decide_payment(&payment.clone(), ProcessingMode::Simulated)
            );
        }
    }

    #[test]
    fn remaining_never_exceeds_the_delay() {
        let delay = Duration::from_secs(5);
        assert_eq!(remaining(delay, None), delay);
        assert_eq!(
            remaining(delay, Some(Duration::from_secs(2))),
            Duration::from_secs(3)
        );
        assert_eq!(
            remaining(delay, Some(Duration::from_secs(60))),
            Duration::ZERO
        );
    }

    #[test]
    fn longest_delays() {
        assert_eq!(
            ProcessingMode::Simulated.longest_delay(),
            Duration::from_secs(10)
        );
        assert_eq!(TEST_OK.longest_delay(), Duration::from_secs(1));
    }
}
