//! Card checks from the contract: number (strip spaces and dashes, 13–19
//! digits, Luhn), network by prefix, expiry (month 1–12, two-digit year means
//! 20YY, not before the current month) and CVV (3 or 4 digits).
//!
//! The full number and the CVV never leave this module: [`ValidatedCard`]
//! keeps the network and the last four digits only, [`CardInput`]'s `Debug`
//! redacts them, and no error message contains them (contract invariant 11).
//!
//! A month outside 1–12 (e.g. 13) is malformed input, so it is `INVALID_CARD`;
//! `EXPIRED_CARD` is kept for well-formed dates in the past.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::DomainError;
use crate::validation::at_most_chars;

/// Longest card holder name, in characters. The name is checked and dropped
/// (never stored), but no input is unbounded.
pub const HOLDER_NAME_MAX_CHARS: usize = 255;

/// Card details as the shopper typed them.
///
/// Every field is text; when deserializing, a JSON integer is also accepted
/// for the number, month, year and CVV (clients of the original design send
/// either). Deliberately not `Serialize`: a `CardInput` is never stored.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct CardInput {
    #[serde(deserialize_with = "string_or_integer")]
    pub number: String,
    #[serde(deserialize_with = "string_or_integer")]
    pub expiry_month: String,
    #[serde(deserialize_with = "string_or_integer")]
    pub expiry_year: String,
    #[serde(deserialize_with = "string_or_integer")]
    pub cvv: String,
    #[serde(default)]
    pub holder_name: String,
}

/// Shows at most the last four digits of the number (and only when it looks
/// like a card number, 13+ digits), never the CVV nor the holder's name.
impl fmt::Debug for CardInput {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits: Vec<char> = self.number.chars().filter(char::is_ascii_digit).collect();
        let number = if digits.len() >= 13 {
            let last4: String = digits[digits.len() - 4..].iter().collect();
            format!("**** {last4}")
        } else {
            "<redacted>".to_owned()
        };
        formatter
            .debug_struct("CardInput")
            .field("number", &number)
            .field("expiry_month", &self.expiry_month)
            .field("expiry_year", &self.expiry_year)
            .field("cvv", &"***")
            .field("holder_name", &"<redacted>")
            .finish()
    }
}

fn string_or_integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    struct TextVisitor;

    impl serde::de::Visitor<'_> for TextVisitor {
        type Value = String;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a string or a non-negative integer")
        }

        fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<String, E> {
            Ok(value.to_owned())
        }

        fn visit_string<E: serde::de::Error>(self, value: String) -> Result<String, E> {
            Ok(value)
        }

        fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<String, E> {
            Ok(value.to_string())
        }

        fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<String, E> {
            // Negative numbers stay text and fail validation with a proper message.
            Ok(value.to_string())
        }
    }

    deserializer.deserialize_any(TextVisitor)
}

/// Card network, from the number's prefix. Serialized lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CardNetwork {
    Visa,
    Mastercard,
    Amex,
    Rupay,
    Unknown,
}

impl CardNetwork {
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Visa => "visa",
            Self::Mastercard => "mastercard",
            Self::Amex => "amex",
            Self::Rupay => "rupay",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for CardNetwork {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Why a card was `INVALID_CARD`. Messages never include the card's digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CardRejection {
    #[error("card number must contain only digits, spaces and dashes")]
    NumberFormat,
    #[error("card number must have 13 to 19 digits")]
    NumberLength,
    #[error("card number is invalid")]
    Luhn,
    #[error("expiry month must be between 1 and 12")]
    ExpiryMonth,
    #[error("expiry year must have 2 or 4 digits")]
    ExpiryYear,
    #[error("CVV must be 3 or 4 digits")]
    Cvv,
}

impl CardRejection {
    /// The input to blame, named as in the API body.
    pub const fn field(&self) -> &'static str {
        match self {
            Self::NumberFormat | Self::NumberLength | Self::Luhn => "card.number",
            Self::ExpiryMonth => "card.expiry_month",
            Self::ExpiryYear => "card.expiry_year",
            Self::Cvv => "card.cvv",
        }
    }
}

impl From<CardRejection> for DomainError {
    fn from(reason: CardRejection) -> Self {
        DomainError::InvalidCard { reason }
    }
}

/// What survives validation: enough to show and store, nothing sensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedCard {
    pub network: CardNetwork,
    /// The last four digits of the number.
    pub last4: String,
    pub expiry_month: u32,
    /// Four-digit year (a two-digit input `YY` means `20YY`).
    pub expiry_year: i32,
}

/// Validates a card against "today" (`current_year`, `current_month` 1–12).
///
/// Checks, in order: number (format, length, Luhn), CVV, expiry format, that
/// the expiry month is not before the current month (a card is valid through
/// the end of its expiry month), and finally the holder's name's length.
pub fn validate_card(
    card: &CardInput,
    current_year: i32,
    current_month: u32,
) -> Result<ValidatedCard, DomainError> {
    let digits = card_digits(&card.number)?;
    validate_cvv(&card.cvv)?;
    let (expiry_year, expiry_month) = parse_expiry(&card.expiry_month, &card.expiry_year)?;
    if (expiry_year, expiry_month) < (current_year, current_month) {
        return Err(DomainError::ExpiredCard);
    }
    at_most_chars("card.holder_name", &card.holder_name, HOLDER_NAME_MAX_CHARS)?;
    Ok(ValidatedCard {
        network: card_network(&digits),
        last4: digits[digits.len() - 4..].to_owned(),
        expiry_month,
        expiry_year,
    })
}

/// Strips spaces and dashes, then requires 13–19 ASCII digits passing Luhn.
pub fn card_digits(number: &str) -> Result<String, CardRejection> {
    let mut digits = String::with_capacity(number.len());
    for character in number.chars() {
        match character {
            ' ' | '-' => {}
            '0'..='9' => digits.push(character),
            _ => return Err(CardRejection::NumberFormat),
        }
    }
    if !(13..=19).contains(&digits.len()) {
        return Err(CardRejection::NumberLength);
    }
    if !luhn_valid(&digits) {
        return Err(CardRejection::Luhn);
    }
    Ok(digits)
}

/// Luhn (mod 10) check over ASCII digits; false for anything else or empty input.
pub fn luhn_valid(digits: &str) -> bool {
    if digits.is_empty() {
        return false;
    }
    let mut sum = 0u32;
    for (position, byte) in digits.bytes().rev().enumerate() {
        if !byte.is_ascii_digit() {
            return false;
        }
        let mut digit = u32::from(byte - b'0');
        if position % 2 == 1 {
            digit *= 2;
            if digit > 9 {
                digit -= 9;
            }
        }
        sum += digit;
    }
    sum % 10 == 0
}

/// Network by prefix: Visa 4; Mastercard 51–55; Amex 34, 37; RuPay 60, 65,
/// 81–89; anything else `unknown`.
pub fn card_network(digits: &str) -> CardNetwork {
    let bytes = digits.as_bytes();
    match bytes {
        [b'4', ..] => CardNetwork::Visa,
        [b'5', b'1'..=b'5', ..] => CardNetwork::Mastercard,
        [b'3', b'4' | b'7', ..] => CardNetwork::Amex,
        [b'6', b'0' | b'5', ..] | [b'8', b'1'..=b'9', ..] => CardNetwork::Rupay,
        _ => CardNetwork::Unknown,
    }
}

/// CVV: 3 or 4 ASCII digits.
pub fn validate_cvv(cvv: &str) -> Result<(), CardRejection> {
    if (3..=4).contains(&cvv.len()) && cvv.bytes().all(|byte| byte.is_ascii_digit()) {
        Ok(())
    } else {
        Err(CardRejection::Cvv)
    }
}

/// Parses the expiry into `(year, month)`. Month: 1–12, one or two digits
/// (`"3"` and `"03"`). Year: two digits mean 20YY, or four digits. Surrounding
/// whitespace is ignored.
pub fn parse_expiry(month: &str, year: &str) -> Result<(i32, u32), CardRejection> {
    let month = month.trim();
    let month = if (1..=2).contains(&month.len()) && month.bytes().all(|byte| byte.is_ascii_digit())
    {
        month
            .parse::<u32>()
            .map_err(|_| CardRejection::ExpiryMonth)?
    } else {
        return Err(CardRejection::ExpiryMonth);
    };
    if !(1..=12).contains(&month) {
        return Err(CardRejection::ExpiryMonth);
    }
    let year = year.trim();
    if !year.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(CardRejection::ExpiryYear);
    }
    let year = match year.len() {
        2 => 2000 + year.parse::<i32>().map_err(|_| CardRejection::ExpiryYear)?,
        4 => year.parse::<i32>().map_err(|_| CardRejection::ExpiryYear)?,
        _ => return Err(CardRejection::ExpiryYear),
    };
    Ok((year, month))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VISA: &str = "4111111111111111";

    fn card(number: &str, month: &str, year: &str, cvv: &str) -> CardInput {
        CardInput {
            number: number.to_owned(),
            expiry_month: month.to_owned(),
            expiry_year: year.to_owned(),
            cvv: cvv.to_owned(),
            holder_name: "Asha Rao".to_owned(),
        }
    }

    fn reason(result: Result<ValidatedCard, DomainError>) -> CardRejection {
        match result {
            Err(DomainError::InvalidCard { reason }) => reason,
            other => panic!("expected INVALID_CARD, got {other:?}"),
        }
    }

    #[test]
    fn luhn_vectors() {
        for valid in [
            "4111111111111111",
            "4012888888881881",
            "5555555555554444",
            "5105105105105100",
            "378282246310005",
            "371449635398431",
            "6011111111111117",
            "4222222222222",
            "79927398713",
            "0",
        ] {
            assert!(luhn_valid(valid), "{valid}");
        }
        for invalid in [
            "4111111111111112",
            "79927398710",
            "1234567812345678",
            "",
            "41111a1111111111",
        ] {
            assert!(!luhn_valid(invalid), "{invalid}");
        }
    }

    #[test]
    fn networks_by_prefix() {
        let cases = [
            ("4111111111111111", CardNetwork::Visa),
            ("5105105105105100", CardNetwork::Mastercard),
            ("5555555555554444", CardNetwork::Mastercard),
            ("5612345678901234", CardNetwork::Unknown), // 56 is not Mastercard here
            ("5012345678901234", CardNetwork::Unknown),
            ("2221000000000009", CardNetwork::Unknown), // 2-series is not in the contract
            ("340000000000009", CardNetwork::Amex),
            ("378282246310005", CardNetwork::Amex),
            ("350000000000000", CardNetwork::Unknown),
            ("6011111111111117", CardNetwork::Rupay), // 60 is RuPay in the contract
            ("6500000000000002", CardNetwork::Rupay),
            ("6200000000000000", CardNetwork::Unknown),
            ("8100000000000000", CardNetwork::Rupay),
            ("8900000000000000", CardNetwork::Rupay),
            ("8000000000000000", CardNetwork::Unknown),
            ("9000000000000000", CardNetwork::Unknown),
            ("", CardNetwork::Unknown),
        ];
        for (digits, network) in cases {
            assert_eq!(card_network(digits), network, "{digits}");
        }
        assert_eq!(
            serde_json::to_string(&CardNetwork::Rupay).unwrap(),
            "\"rupay\""
        );
        assert_eq!(CardNetwork::Mastercard.to_string(), "mastercard");
    }

    #[test]
    fn number_is_normalized_then_checked() {
        let ok = validate_card(&card("4111 1111-1111 1111", "12", "2030", "123"), 2025, 6).unwrap();
        assert_eq!(ok.network, CardNetwork::Visa);
        assert_eq!(ok.last4, "1111");
        assert_eq!((ok.expiry_year, ok.expiry_month), (2030, 12));
        assert_eq!(
            reason(validate_card(
                &card("4111.1111.1111.1111", "12", "30", "123"),
                2025,
                6
            )),
            CardRejection::NumberFormat
        );
        assert_eq!(
            reason(validate_card(
                &card("411111111111", "12", "30", "123"),
                2025,
                6
            )),
            CardRejection::NumberLength
        );
        assert_eq!(
            reason(validate_card(
                &card("41111111111111111111", "12", "30", "123"),
                2025,
                6
            )),
            CardRejection::NumberLength
        );
        assert_eq!(
            reason(validate_card(&card("", "12", "30", "123"), 2025, 6)),
            CardRejection::NumberLength
        );
        assert_eq!(
            reason(validate_card(
                &card("4111111111111112", "12", "30", "123"),
                2025,
                6
            )),
            CardRejection::Luhn
        );
        // 13 and 19 digits are the bounds.
        assert!(validate_card(&card("4222222222222", "12", "30", "123"), 2025, 6).is_ok());
        assert!(validate_card(&card("4000000000000000006", "12", "30", "123"), 2025, 6).is_ok());
    }

    #[test]
    fn cvv_has_three_or_four_digits() {
        assert!(validate_card(&card(VISA, "12", "30", "1234"), 2025, 6).is_ok());
        for cvv in ["", "12", "12345", "12a", " 123"] {
            assert_eq!(
                reason(validate_card(&card(VISA, "12", "30", cvv), 2025, 6)),
                CardRejection::Cvv,
                "{cvv:?}"
            );
        }
    }

    #[test]
    fn expiry_edge_cases() {
        // The current month is still valid; the previous month is expired.
        assert!(validate_card(&card(VISA, "6", "2025", "123"), 2025, 6).is_ok());
        assert_eq!(
            validate_card(&card(VISA, "5", "2025", "123"), 2025, 6),
            Err(DomainError::ExpiredCard)
        );
        assert_eq!(
            validate_card(&card(VISA, "12", "2024", "123"), 2025, 1),
            Err(DomainError::ExpiredCard)
        );
        assert!(validate_card(&card(VISA, "01", "2026", "123"), 2025, 12).is_ok());
        // Two-digit year means 20YY.
        let two_digit = validate_card(&card(VISA, "03", "27", "123"), 2025, 6).unwrap();
        assert_eq!(two_digit.expiry_year, 2027);
        assert_eq!(
            validate_card(&card(VISA, "06", "24", "123"), 2025, 6),
            Err(DomainError::ExpiredCard)
        );
        assert!(validate_card(&card(VISA, " 06 ", " 25 ", "123"), 2025, 6).is_ok());
        // Month 0 and 13 are malformed (INVALID_CARD), not expired.
        for month in ["0", "00", "13", "", "1a", "012", "-1"] {
            assert_eq!(
                reason(validate_card(&card(VISA, month, "2030", "123"), 2025, 6)),
                CardRejection::ExpiryMonth,
                "{month:?}"
            );
        }
        for year in ["", "2", "202", "20300", "2O30", "-25"] {
            assert_eq!(
                reason(validate_card(&card(VISA, "12", year, "123"), 2025, 6)),
                CardRejection::ExpiryYear,
                "{year:?}"
            );
        }
        assert_eq!(DomainError::ExpiredCard.code(), "EXPIRED_CARD");
    }

    #[test]
    fn nothing_sensitive_leaks() {
        let input = card("4111 1111 1111 1111", "12", "2030", "987");
        let debug = format!("{input:?}");
        assert!(debug.contains("**** 1111"), "{debug}");
        assert!(!debug.contains("4111"), "{debug}");
        assert!(!debug.contains("987"), "{debug}");
        assert!(!debug.contains("Asha"), "{debug}");
        let short = format!("{:?}", card("12345678", "12", "2030", "987"));
        assert!(!short.contains("5678"), "{short}");
        // Every rejection message is free of the number.
        for number in ["4111111111111112", "4111-1111-1111-111x", "41111"] {
            let error = validate_card(&card(number, "12", "30", "987"), 2025, 6).unwrap_err();
            let message = error.to_string();
            assert!(
                !message.contains("4111") && !message.contains("987"),
                "{message}"
            );
            assert_eq!(error.code(), "INVALID_CARD");
        }
    }

    #[test]
    fn the_holder_name_is_bounded() {
        let mut input = card("4111111111111111", "12", "30", "123");
        input.holder_name = "é".repeat(HOLDER_NAME_MAX_CHARS);
        assert!(validate_card(&input, 2025, 6).is_ok());
        input.holder_name.push('a');
        let error = validate_card(&input, 2025, 6).unwrap_err();
        assert_eq!(error.code(), "BAD_REQUEST_ERROR");
        assert_eq!(error.field(), Some("card.holder_name"));
        assert_eq!(
            error.to_string(),
            "card.holder_name must be at most 255 characters"
        );
    }

    #[test]
    fn deserializes_strings_or_integers() {
        let json = r#"{"number":"4111111111111111","expiry_month":12,"expiry_year":"2030","cvv":"123","holder_name":"A"}"#;
        let input: CardInput = serde_json::from_str(json).unwrap();
        assert_eq!(input.expiry_month, "12");
        assert_eq!(input.expiry_year, "2030");
        let json = r#"{"number":4111111111111111,"expiry_month":"01","expiry_year":30,"cvv":123}"#;
        let input: CardInput = serde_json::from_str(json).unwrap();
        assert_eq!(input.number, "4111111111111111");
        assert_eq!(input.holder_name, "");
        assert!(validate_card(&input, 2025, 6).is_ok());
        assert!(serde_json::from_str::<CardInput>(
            r#"{"number":true,"expiry_month":1,"expiry_year":30,"cvv":"123"}"#
        )
        .is_err());
    }
}
