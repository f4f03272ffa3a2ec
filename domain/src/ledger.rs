//! The double-entry ledger's rules: which entries a payment's capture and
//! refunds post, and the fee arithmetic.
//!
//! Every [`Entry`] moves a positive amount from one account (debit) to another
//! (credit), so each entry balances by construction and the trial balance of
//! any set of entries is zero. Accounts:
//!
//! * [`Account::AcquirerClearing`]: what the acquirer owes us (captured money
//!   not yet settled, less refunds paid back through it);
//! * [`Account::FeeRevenue`]: our fees;
//! * [`Account::MerchantPayable`]: what we owe one merchant. Its balance is
//!   captured − refunded − net fees.
//!
//! A [`PaymentBook`] keeps one payment's totals. After each event it works out
//! what the totals *should* be and posts the difference, so the postings
//! always add up to the totals, whatever the order of captures and refunds:
//!
//! * the fee is charged once, at capture, on the captured amount, at the
//!   merchant's rate then (basis points, rounded half up);
//! * refunds reverse the fee in proportion to the share of the captured
//!   amount refunded (rounded down), so a full refund returns the whole fee
//!   exactly and partial refunds never return more than was charged.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::currency::Currency;
use crate::id::{MerchantId, RefundId};
use crate::payment::PaymentEvent;

/// One basis point is 1/10,000.
pub const BPS_PER_UNIT: i64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Account {
    AcquirerClearing,
    FeeRevenue,
    MerchantPayable(MerchantId),
}

impl Account {
    /// The merchant this account belongs to, if any.
    pub fn merchant(&self) -> Option<MerchantId> {
        match self {
            Account::MerchantPayable(merchant) => Some(*merchant),
            _ => None,
        }
    }
}

/// `acquirer_clearing`, `fee_revenue`, `merchant_payable:<merchant id>`.
impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Account::AcquirerClearing => f.write_str("acquirer_clearing"),
            Account::FeeRevenue => f.write_str("fee_revenue"),
            Account::MerchantPayable(merchant) => write!(f, "merchant_payable:{merchant}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Capture,
    Fee,
    Refund,
    FeeReversal,
}

impl EntryKind {
    pub const fn as_str(&self) -> &'static str {
        match self {
            EntryKind::Capture => "capture",
            EntryKind::Fee => "fee",
            EntryKind::Refund => "refund",
            EntryKind::FeeReversal => "fee_reversal",
        }
    }
}

/// `amount` (> 0, minor units) debited to `debit` and credited to `credit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: EntryKind,
    pub amount: i64,
    pub debit: Account,
    pub credit: Account,
    /// The refund that caused it (refund and fee reversal entries).
    pub refund_id: Option<RefundId>,
}

impl Entry {
    /// The two postings: (account, signed amount), debit positive.
    pub fn postings(&self) -> [(Account, i64); 2] {
        [(self.debit, self.amount), (self.credit, -self.amount)]
    }
}

/// The fee on `amount` at `fee_bps` basis points, rounded half up.
pub fn fee(amount: i64, fee_bps: u32) -> i64 {
    let units = i128::from(BPS_PER_UNIT);
    let raw = (i128::from(amount) * i128::from(fee_bps) + units / 2) / units;
    i64::try_from(raw).unwrap_or(i64::MAX)
}

/// One payment's ledger totals so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentBook {
    pub merchant_id: MerchantId,
    pub currency: Currency,
    /// The rate charged, fixed at capture.
    pub fee_bps: u32,
    pub captured: i64,
    /// Processed refunds.
    pub refunded: i64,
    pub fee_charged: i64,
    pub fee_reversed: i64,
    /// Requested refunds not yet processed, by id: their amounts.
    pub pending_refunds: BTreeMap<RefundId, i64>,
}

impl PaymentBook {
    pub fn new(merchant_id: MerchantId, currency: Currency) -> Self {
        Self {
            merchant_id,
            currency,
            fee_bps: 0,
            captured: 0,
            refunded: 0,
            fee_charged: 0,
            fee_reversed: 0,
            pending_refunds: BTreeMap::new(),
        }
    }

    /// What the merchant is owed for this payment: captured − refunded − net fee.
    pub fn merchant_balance(&self) -> i64 {
        self.captured - self.refunded - (self.fee_charged - self.fee_reversed)
    }

    /// Applies one payment event and returns the entries it posts.
    /// `merchant_fee_bps` is the merchant's rate now (used by a capture).
    /// Events that move no money post nothing.
    pub fn post(&mut self, event: &PaymentEvent, merchant_fee_bps: u32) -> Vec<Entry> {
        let merchant = Account::MerchantPayable(self.merchant_id);
        let mut entries = Vec::new();
        let mut refund_id = None;
        match event {
            PaymentEvent::PaymentCaptured(captured) if captured.amount > 0 => {
                if self.captured == 0 {
                    self.fee_bps = merchant_fee_bps;
                }
                self.captured = self.captured.saturating_add(captured.amount);
                entries.push(Entry {
                    kind: EntryKind::Capture,
                    amount: captured.amount,
                    debit: Account::AcquirerClearing,
                    credit: merchant,
                    refund_id: None,
                });
            }
            PaymentEvent::RefundCreated(created) => {
                self.pending_refunds
                    .insert(created.refund_id.clone(), created.amount);
            }
            PaymentEvent::RefundProcessed(processed) => {
                if let Some(amount) = self.pending_refunds.remove(&processed.refund_id) {
                    self.refunded = self.refunded.saturating_add(amount);
                    refund_id = Some(processed.refund_id.clone());
                    if amount > 0 {
                        entries.push(Entry {
                            kind: EntryKind::Refund,
                            amount,
                            debit: merchant,
                            credit: Account::AcquirerClearing,
                            refund_id: refund_id.clone(),
                        });
                    }
                }
            }
            _ => return entries,
        }

        // Fees: post the difference between what is due on the new totals
        // and what was posted before.
        let fee_due = fee(self.captured, self.fee_bps);
        if fee_due > self.fee_charged {
            entries.push(Entry {
                kind: EntryKind::Fee,
                amount: fee_due - self.fee_charged,
                debit: merchant,
                credit: Account::FeeRevenue,
                refund_id: None,
            });
            self.fee_charged = fee_due;
        }
        let reversal_due = reversal(self.fee_charged, self.captured, self.refunded);
        if reversal_due > self.fee_reversed {
            entries.push(Entry {
                kind: EntryKind::FeeReversal,
                amount: reversal_due - self.fee_reversed,
                debit: Account::FeeRevenue,
                credit: merchant,
                refund_id,
            });
            self.fee_reversed = reversal_due;
        }
        entries
    }
}

/// The part of `fee_charged` returned once `refunded` of `captured` is
/// refunded: in proportion, rounded down, never more than the fee.
fn reversal(fee_charged: i64, captured: i64, refunded: i64) -> i64 {
    if captured <= 0 {
        return 0;
    }
    let refunded = i128::from(refunded.clamp(0, captured));
    let share = i128::from(fee_charged) * refunded / i128::from(captured);
    i64::try_from(share).unwrap_or(fee_charged)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    use super::*;
    use crate::payment::{PaymentCaptured, RefundCreated, RefundProcessed};
    use crate::PaymentId;

    fn merchant() -> MerchantId {
        MerchantId::from(uuid::Uuid::from_u128(7))
    }

    fn book() -> PaymentBook {
        PaymentBook::new(merchant(), Currency::INR)
    }

    fn refund_id(n: u8) -> RefundId {
        RefundId::from_random_bytes([n; 16])
    }

    fn capture(amount: i64) -> PaymentEvent {
        PaymentCaptured {
            amount,
            captured_at: Utc.timestamp_opt(0, 0).unwrap(),
        }
        .into()
    }

    fn refund(n: u8, amount: i64) -> [PaymentEvent; 2] {
        let at = Utc.timestamp_opt(0, 0).unwrap();
        [
            RefundCreated {
                refund_id: refund_id(n),
                payment_id: PaymentId::from_random_bytes([1; 16]),
                amount,
                reason: None,
                created_at: at,
            }
            .into(),
            RefundProcessed {
                refund_id: refund_id(n),
                processed_at: at,
            }
            .into(),
        ]
    }

    fn balances(entries: &[Entry]) -> BTreeMap<Account, i64> {
        let mut sums = BTreeMap::new();
        for (account, amount) in entries.iter().flat_map(Entry::postings) {
            *sums.entry(account).or_insert(0) += amount;
        }
        sums
    }

    #[test]
    fn fees_round_half_up() {
        assert_eq!(fee(10_000, 250), 250);
        assert_eq!(fee(50, 100), 1); // 0.5 → 1
        assert_eq!(fee(49, 100), 0); // 0.49 → 0
        assert_eq!(fee(i64::MAX, 10_000), i64::MAX);
        assert_eq!(fee(123_456, 0), 0);
    }

    #[test]
    fn capture_posts_the_amount_and_the_fee() {
        let mut book = book();
        let entries = book.post(&capture(50_000), 200);
        let kinds: Vec<_> = entries.iter().map(|e| (e.kind, e.amount)).collect();
        assert_eq!(
            kinds,
            [(EntryKind::Capture, 50_000), (EntryKind::Fee, 1_000)]
        );
        let sums = balances(&entries);
        assert_eq!(sums[&Account::MerchantPayable(merchant())], -49_000);
        assert_eq!(sums[&Account::FeeRevenue], -1_000);
        assert_eq!(sums[&Account::AcquirerClearing], 50_000);
        assert_eq!(book.merchant_balance(), 49_000);
    }

    #[test]
    fn a_full_refund_in_parts_returns_the_whole_fee() {
        let mut book = book();
        let mut entries = book.post(&capture(1_000), 250); // fee 25
        for (n, amount) in [(1, 333), (2, 333), (3, 334)] {
            for event in refund(n, amount) {
                entries.extend(book.post(&event, 9_999));
            }
        }
        assert_eq!(book.fee_reversed, 25);
        assert_eq!(book.merchant_balance(), 0);
        let sums = balances(&entries);
        assert_eq!(sums[&Account::MerchantPayable(merchant())], 0);
        assert_eq!(sums[&Account::FeeRevenue], 0);
        assert_eq!(sums[&Account::AcquirerClearing], 0);
    }

    #[test]
    fn a_refund_before_capture_has_its_fee_returned_at_capture() {
        let mut book = book();
        let mut entries = Vec::new();
        for event in refund(1, 500) {
            entries.extend(book.post(&event, 100));
        }
        assert_eq!(entries.len(), 1, "only the refund itself: {entries:?}");
        entries.extend(book.post(&capture(1_000), 100)); // fee 10, half refunded
        assert_eq!((book.fee_charged, book.fee_reversed), (10, 5));
        assert_eq!(book.merchant_balance(), 1_000 - 500 - 5);
        assert_eq!(
            -balances(&entries)[&Account::MerchantPayable(merchant())],
            book.merchant_balance()
        );
    }

    #[test]
    fn events_that_move_no_money_post_nothing() {
        let mut book = book();
        assert!(book.post(&capture(0), 100).is_empty());
        let [created, _] = refund(1, 10);
        assert!(book.post(&created, 100).is_empty());
        // Processing an unknown refund (never requested) posts nothing.
        let [_, processed] = refund(2, 10);
        assert!(book.post(&processed, 100).is_empty());
    }

    #[test]
    fn account_names() {
        assert_eq!(Account::AcquirerClearing.to_string(), "acquirer_clearing");
        assert_eq!(Account::FeeRevenue.to_string(), "fee_revenue");
        assert_eq!(
            Account::MerchantPayable(merchant()).to_string(),
            format!("merchant_payable:{}", merchant())
        );
    }

    proptest! {
        /// Invariant 9 and the balance identity, for any order of one capture
        /// and refunds, any amounts and any rate.
        #[test]
        fn postings_balance_and_match_the_totals(
            captured in 1i64..10_000_000,
            fee_bps in 0u32..=10_000,
            refunds in proptest::collection::vec(1i64..3_000_000, 0..6),
            capture_after in 0usize..7,
        ) {
            let mut book = book();
            let mut entries = Vec::new();
            let mut refunded = 0;
            for (n, amount) in refunds.iter().enumerate() {
                if n == capture_after {
                    entries.extend(book.post(&capture(captured), fee_bps));
                }
                refunded += amount;
                for event in refund(u8::try_from(n).unwrap(), *amount) {
                    entries.extend(book.post(&event, fee_bps));
                }
            }
            if capture_after >= refunds.len() {
                entries.extend(book.post(&capture(captured), fee_bps));
            }
            let sums = balances(&entries);
            prop_assert_eq!(sums.values().sum::<i64>(), 0);
            prop_assert!(entries.iter().all(|e| e.amount > 0));
            let net_fee = fee(captured, fee_bps) - book.fee_reversed;
            prop_assert!(book.fee_reversed <= book.fee_charged);
            prop_assert_eq!(book.merchant_balance(), captured - refunded - net_fee);
            prop_assert_eq!(
                -sums.get(&Account::MerchantPayable(merchant())).copied().unwrap_or(0),
                book.merchant_balance()
            );
            if refunded >= captured {
                prop_assert_eq!(book.fee_reversed, book.fee_charged);
            }
        }
    }
}
