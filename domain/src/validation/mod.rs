//! Input rules from the contract, shared by the aggregates, the services and
//! the web crate. Each check returns a [`DomainError`] naming the field.

pub mod address;
pub mod card;
pub mod email;
pub mod url;
pub mod vpa;

pub use address::{is_public, AddressPolicy, AddressRefusal, SystemPorts, SystemPortsError};
pub use card::{validate_card, CardInput, CardNetwork, CardRejection, ValidatedCard};
pub use email::validate_email;
pub use url::{check_target_name, validate_webhook_url, webhook_target, TargetHost, WebhookTarget};
pub use vpa::{is_valid_vpa, validate_vpa};

use crate::error::DomainError;

/// `value` has at most `max` characters (Unicode scalar values, not bytes).
pub fn at_most_chars(field: &'static str, value: &str, max: usize) -> Result<(), DomainError> {
    if value.chars().count() <= max {
        Ok(())
    } else {
        Err(DomainError::invalid(
            field,
            format!("{field} must be at most {max} characters"),
        ))
    }
}

/// `value` is not empty or only whitespace, and has at most `max` characters.
pub fn required_text(field: &'static str, value: &str, max: usize) -> Result<(), DomainError> {
    if value.trim().is_empty() {
        return Err(DomainError::invalid(
            field,
            format!("{field} must not be empty"),
        ));
    }
    at_most_chars(field, value, max)
}

/// The longest prefix of `text` that fits in `max_bytes` and ends on a char boundary.
pub fn truncate_to_char_boundary(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_rules_count_characters() {
        assert!(at_most_chars("receipt", "é".repeat(40).as_str(), 40).is_ok());
        let error = at_most_chars("receipt", &"a".repeat(41), 40).unwrap_err();
        assert_eq!(error.to_string(), "receipt must be at most 40 characters");
        assert_eq!(error.field(), Some("receipt"));
        assert!(required_text("name", "  ", 10).is_err());
        assert!(required_text("name", "Acme", 10).is_ok());
        assert!(required_text("name", "Acme Corporation", 10).is_err());
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_to_char_boundary("hello", 10), "hello");
        assert_eq!(truncate_to_char_boundary("hello", 3), "hel");
        // "é" is two bytes: cutting inside it backs off to the boundary before it.
        assert_eq!(truncate_to_char_boundary("aé", 2), "a");
        assert_eq!(truncate_to_char_boundary("aé", 3), "aé");
        assert_eq!(truncate_to_char_boundary("€", 2), "");
    }
}
