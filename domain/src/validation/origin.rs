//! Web origins (`scheme://host[:port]`): where a merchant's pages embed the
//! checkout. The checkout posts its result only to one of the merchant's
//! origins, and only those pages may frame it (`frame-ancestors`).

use url::Url;

use crate::error::DomainError;

/// At most this many checkout origins per merchant.
pub const CHECKOUT_ORIGINS_MAX: usize = 20;

/// Longest accepted origin, in bytes.
pub const ORIGIN_MAX_LEN: usize = 255;

const FIELD: &str = "checkout_origins";

fn invalid(message: impl Into<String>) -> DomainError {
    DomainError::invalid(FIELD, message)
}

/// `text` as an origin in its serialized form (`https://shop.example`,
/// `http://localhost:8000`): lowercase, the scheme's default port left
/// out, an internationalised name in its `xn--` form. Refuses other
/// schemes, credentials, paths, queries, fragments and wildcards.
pub fn normalize_origin(text: &str) -> Result<String, DomainError> {
    let shown: String = text.chars().take(80).collect();
    let bad = || {
        invalid(format!(
            "{shown:?} is not an origin: give scheme://host[:port] with http or https, no path"
        ))
    };
    if text.len() > ORIGIN_MAX_LEN {
        return Err(invalid(format!(
            "an origin must be at most {ORIGIN_MAX_LEN} characters"
        )));
    }
    if text.contains('*') || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let url = Url::parse(text).map_err(|_| bad())?;
    let origin_only = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        // `https://shop.example/` is fine; `https://shop.example/?` is not.
        && !text.trim_end_matches('/').contains(['?', '#'])
        && text.matches('/').count() <= 3;
    if !origin_only {
        return Err(bad());
    }
    // The list is also the checkout's CSP `frame-ancestors`, whose sources
    // cannot name an IPv6 address.
    if matches!(url.host(), Some(url::Host::Ipv6(_))) {
        return Err(invalid(format!(
            "{shown:?}: an IPv6 address cannot be a checkout origin (a Content-Security-Policy cannot name one); use a host name"
        )));
    }
    Ok(url.origin().ascii_serialization())
}

/// A merchant's checkout origins, each normalised, without duplicates, in
/// the order given.
pub fn normalize_checkout_origins(origins: &[String]) -> Result<Vec<String>, DomainError> {
    if origins.len() > CHECKOUT_ORIGINS_MAX {
        return Err(invalid(format!(
            "checkout_origins holds at most {CHECKOUT_ORIGINS_MAX} origins"
        )));
    }
    let mut normalized: Vec<String> = Vec::with_capacity(origins.len());
    for origin in origins {
        let origin = normalize_origin(origin)?;
        if !normalized.contains(&origin) {
            normalized.push(origin);
        }
    }
    Ok(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised() {
        for (given, origin) in [
            ("https://shop.example", "https://shop.example"),
            ("https://Shop.Example/", "https://shop.example"),
            ("https://shop.example:443", "https://shop.example"),
            ("http://localhost:8000", "http://localhost:8000"),
            ("http://127.0.0.1:4995/", "http://127.0.0.1:4995"),
            ("https://bücher.example", "https://xn--bcher-kva.example"),
        ] {
            assert_eq!(normalize_origin(given).unwrap(), origin, "{given}");
        }
    }

    #[test]
    fn anything_but_an_origin_is_refused() {
        for bad in [
            "",
            "shop.example",
            "ftp://shop.example",
            "javascript:alert(1)",
            "null",
            "https://shop.example/pay",
            "https://shop.example/?x=1",
            "https://shop.example/#x",
            "https://user:pw@shop.example",
            "https://*.shop.example",
            "https://shop.example //",
            "file:///etc/passwd",
            "http://[::1]:8000",
        ] {
            let error = normalize_origin(bad).unwrap_err();
            assert_eq!(error.field(), Some("checkout_origins"), "{bad}");
        }
        assert!(normalize_origin(&format!("https://{}.example", "a".repeat(250))).is_err());
    }

    #[test]
    fn lists_are_bounded_and_deduplicated() {
        let list = vec![
            "https://a.example".to_string(),
            "https://A.example/".to_string(),
            "https://b.example".to_string(),
        ];
        assert_eq!(
            normalize_checkout_origins(&list).unwrap(),
            ["https://a.example", "https://b.example"]
        );
        let many: Vec<String> = (0..=CHECKOUT_ORIGINS_MAX)
            .map(|i| format!("https://{i}.example"))
            .collect();
        assert!(normalize_checkout_origins(&many).is_err());
        assert!(normalize_checkout_origins(&[]).unwrap().is_empty());
    }
}
