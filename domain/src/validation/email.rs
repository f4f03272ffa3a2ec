//! A deliberately small e-mail check: the address is used as a login name and
//! a contact, not parsed for routing, so the rule is "one `@`, something on
//! both sides, a dot in the domain, no spaces", with RFC 5321 length limits.

use crate::error::DomainError;

const EMAIL_MAX_LEN: usize = 254;
const LOCAL_PART_MAX_LEN: usize = 64;

pub fn validate_email(email: &str) -> Result<(), DomainError> {
    if is_plausible_email(email) {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "email",
            "email must be a valid e-mail address",
        ))
    }
}

fn is_plausible_email(email: &str) -> bool {
    if email.len() > EMAIL_MAX_LEN
        || email.chars().any(|character| {
            character.is_whitespace() || character.is_control() || super::is_format_char(character)
        })
    {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= LOCAL_PART_MAX_LEN
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses() {
        for email in [
            "test@example.com",
            "first.last+tag@sub.example.co.in",
            "a@b.c",
        ] {
            assert_eq!(validate_email(email), Ok(()), "{email:?}");
        }
    }

    #[test]
    fn rejects_malformed_addresses() {
        let too_long = format!("{}@example.com", "a".repeat(250));
        let local_too_long = format!("{}@example.com", "a".repeat(65));
        for email in [
            "",
            "plain",
            "@example.com",
            "user@",
            "user@localhost",
            "user@@example.com",
            "us er@example.com",
            "user@example.com ",
            "user@.example.com",
            "user@example.com.",
            "user@example..com",
            "\u{FEFF}user@example.com",
            "user\u{202E}moc.elpmaxe@example.com",
            "us\u{200B}er@example.com",
            "user@exa\u{00AD}mple.com",
            too_long.as_str(),
            local_too_long.as_str(),
        ] {
            let error = validate_email(email).unwrap_err();
            assert_eq!(error.field(), Some("email"), "{email:?}");
            assert_eq!(error.code(), "BAD_REQUEST_ERROR");
        }
    }
}
