//! UPI virtual payment address: the contract's `^[a-zA-Z0-9._-]+@[a-zA-Z0-9]+$`,
//! checked by hand (no regex engine needed for one fixed pattern).

use crate::error::DomainError;

/// True when `vpa` matches `^[a-zA-Z0-9._-]+@[a-zA-Z0-9]+$` exactly: no
/// surrounding whitespace, exactly one `@`, a non-empty handle of letters,
/// digits, `.`, `_` or `-`, and a non-empty provider of letters and digits.
pub fn is_valid_vpa(vpa: &str) -> bool {
    let Some((handle, provider)) = vpa.split_once('@') else {
        return false;
    };
    let handle_ok = !handle.is_empty()
        && handle
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'));
    let provider_ok =
        !provider.is_empty() && provider.bytes().all(|byte| byte.is_ascii_alphanumeric());
    handle_ok && provider_ok
}

/// [`is_valid_vpa`] as a result: [`DomainError::InvalidVpa`] (`INVALID_VPA`).
pub fn validate_vpa(vpa: &str) -> Result<(), DomainError> {
    if is_valid_vpa(vpa) {
        Ok(())
    } else {
        Err(DomainError::InvalidVpa)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_addresses() {
        for vpa in [
            "user@paytm",
            "john.doe@okicici",
            "a_b-c.d@ybl",
            "9876543210@upi",
            "X@Y",
            "..@a1",
        ] {
            assert!(is_valid_vpa(vpa), "{vpa:?}");
            assert_eq!(validate_vpa(vpa), Ok(()));
        }
    }

    #[test]
    fn rejects_invalid_addresses() {
        for vpa in [
            "",
            "user",
            "@paytm",
            "user@",
            "user@@paytm",
            "user@pay@tm",
            "user@pay.tm", // the provider is letters and digits only
            "user@pay-tm",
            "us er@paytm",
            "user@paytm ",
            " user@paytm",
            "user@paytm\n",
            "usér@paytm",
            "user+tag@paytm",
        ] {
            assert!(!is_valid_vpa(vpa), "{vpa:?}");
            let error = validate_vpa(vpa).unwrap_err();
            assert_eq!(error.code(), "INVALID_VPA");
            assert_eq!(error.field(), Some("vpa"));
        }
    }
}
