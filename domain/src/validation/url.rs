//! Webhook endpoint URLs: absolute `http`/`https`, at most 2048 bytes.
//!
//! This is a syntactic check only. Refusing private and loopback targets needs
//! DNS and the deployment profile, so it belongs to the services.

use crate::error::DomainError;

/// Longest accepted webhook URL, in bytes.
pub const WEBHOOK_URL_MAX_LEN: usize = 2048;

/// Accepts `http://host[:port][/path][?query][#fragment]` (and `https`), where
/// host is a DNS name, an IPv4 address or a bracketed IPv6 address. Rejects
/// relative URLs, other schemes, empty hosts, bad ports, whitespace, control
/// and non-ASCII characters (send an IDN host in its `xn--` form).
pub fn validate_webhook_url(url: &str) -> Result<(), DomainError> {
    if url.len() > WEBHOOK_URL_MAX_LEN {
        return Err(DomainError::invalid(
            "url",
            format!("url must be at most {WEBHOOK_URL_MAX_LEN} characters"),
        ));
    }
    if is_absolute_http_url(url) {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "url",
            "url must be an absolute http or https URL",
        ))
    }
}

fn is_absolute_http_url(url: &str) -> bool {
    if !url.bytes().all(|byte| byte.is_ascii_graphic()) {
        return false;
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return false;
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    // Drop user information, if any: the host is what follows the last '@'.
    let host_and_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let (host, port) = match split_host_port(host_and_port) {
        Some(parts) => parts,
        None => return false,
    };
    is_valid_host(host) && port.is_none_or(is_valid_port)
}

/// Splits `host[:port]` / `[v6][:port]`. `None` when the brackets are unbalanced.
fn split_host_port(host_and_port: &str) -> Option<(&str, Option<&str>)> {
    if let Some(bracketed) = host_and_port.strip_prefix('[') {
        let (inside, after) = bracketed.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        let is_ipv6 = !inside.is_empty()
            && inside.contains(':')
            && inside
                .bytes()
                .all(|byte| byte.is_ascii_hexdigit() || matches!(byte, b':' | b'.'));
        return is_ipv6.then_some((host_and_port, port));
    }
    Some(match host_and_port.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (host_and_port, None),
    })
}

fn is_valid_host(host: &str) -> bool {
    if host.starts_with('[') {
        return true; // already checked by split_host_port
    }
    // A fully qualified name may end with one dot.
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_'))
        })
}

fn is_valid_port(port: &str) -> bool {
    !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|byte| byte.is_ascii_digit())
        && port
            .parse::<u32>()
            .is_ok_and(|number| (1..=65_535).contains(&number))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_absolute_http_urls() {
        for url in [
            "https://merchant.example.com/webhooks",
            "http://localhost:4000/hook",
            "http://127.0.0.1:8080",
            "HTTPS://Example.COM/path?x=1&y=2#frag",
            "https://user:pass@example.com/x",
            "http://[::1]:9000/hook",
            "http://[2001:db8::1]/",
            "https://host.docker.internal:3000/webhook",
            "https://example.com./x",
            "https://my_service:443",
        ] {
            assert_eq!(validate_webhook_url(url), Ok(()), "{url:?}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        let too_long = format!("https://example.com/{}", "a".repeat(WEBHOOK_URL_MAX_LEN));
        for url in [
            "",
            "example.com/hook",
            "/relative/path",
            "ftp://example.com",
            "javascript:alert(1)",
            "https://",
            "https:///path",
            "https://:8080/x",
            "https://example.com:0/",
            "https://example.com:65536/",
            "https://example.com:80a/",
            "https://exa mple.com/",
            "https://example.com/a b",
            "https://example.com/\n",
            "https://exämple.com/",
            "https://-bad.example.com/",
            "https://example..com/",
            "https://example..com./",
            "https://./",
            "http://[::1/x",
            "http://[]/x",
            "http://[::1]x/",
            too_long.as_str(),
        ] {
            let error = validate_webhook_url(url).unwrap_err();
            assert_eq!(error.field(), Some("url"), "{url:?}");
            assert_eq!(error.code(), "BAD_REQUEST_ERROR");
        }
    }
}
