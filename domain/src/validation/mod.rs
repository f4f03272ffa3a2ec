//! Input rules from the contract, shared by the aggregates, the services and
//! the web crate. Each check returns a [`DomainError`] naming the field.

pub mod address;
pub mod card;
pub mod email;
pub mod origin;
pub mod url;
pub mod vpa;

pub use address::{is_public, AddressPolicy, AddressRefusal, SystemPorts, SystemPortsError};
pub use card::{validate_card, CardInput, CardNetwork, CardRejection, ValidatedCard};
pub use email::validate_email;
pub use origin::{normalize_checkout_origins, normalize_origin, CHECKOUT_ORIGINS_MAX};
pub use url::{check_target_name, validate_webhook_url, webhook_target, TargetHost, WebhookTarget};
pub use vpa::{is_valid_vpa, validate_vpa};

use crate::error::DomainError;

/// `value` has at most `max` characters (Unicode scalar values, not bytes),
/// and no bidirectional override or isolate ([`is_bidi_control`]): text
/// that staff and merchants read must show what it says.
pub fn at_most_chars(field: &'static str, value: &str, max: usize) -> Result<(), DomainError> {
    if value.chars().any(is_bidi_control) {
        return Err(DomainError::invalid(
            field,
            format!("{field} must not contain bidirectional control characters (U+202A–U+202E, U+2066–U+2069)"),
        ));
    }
    if value.chars().count() <= max {
        Ok(())
    } else {
        Err(DomainError::invalid(
            field,
            format!("{field} must be at most {max} characters"),
        ))
    }
}

/// The bidirectional embeddings, overrides and isolates (U+202A–U+202E,
/// U+2066–U+2069): they reorder the text around them on screen, so
/// `"Refund\u{202E}gnp.exe"` reads as something it is not ("Trojan Source").
pub fn is_bidi_control(character: char) -> bool {
    matches!(character, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Unicode's format characters (general category Cf): invisible marks such
/// as U+FEFF (byte order mark), U+200B–U+200F (zero-width and direction
/// marks), the bidi controls, soft hyphens and tag characters. None belongs
/// in an identifier such as an e-mail address.
pub fn is_format_char(character: char) -> bool {
    matches!(
        character,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
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
    fn text_refuses_bidi_overrides() {
        for text in ["Acme\u{202E}gnp", "\u{2066}x\u{2069}", "a\u{202A}"] {
            let error = required_text("name", text, 100).unwrap_err();
            assert_eq!(error.field(), Some("name"), "{text:?}");
        }
        // Scripts written right to left are text like any other.
        assert!(required_text("name", "שלום עולם", 100).is_ok());
        assert!(required_text("name", "مرحبا", 100).is_ok());
    }

    #[test]
    fn format_characters_are_known() {
        for c in [
            '\u{FEFF}',
            '\u{200B}',
            '\u{200D}',
            '\u{202E}',
            '\u{2066}',
            '\u{00AD}',
            '\u{E0041}',
        ] {
            assert!(is_format_char(c), "{c:?}");
        }
        for c in ['a', 'é', ' ', 'ש', '\u{2028}'] {
            assert!(!is_format_char(c), "{c:?}");
        }
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
