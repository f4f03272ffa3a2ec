//! Webhook endpoint URLs: absolute `http`/`https`, at most 2048 bytes, no
//! credentials.
//!
//! [`validate_webhook_url`] is a syntactic check; every path that accepts or
//! schedules a URL shares it. [`webhook_target`] tells where a valid URL
//! points (an IP address or a name, and the port), read by the same WHATWG
//! URL parser the dispatcher's HTTP client uses, so odd IPv4 forms (`127.1`,
//! `2130706433`, `0x7f000001`, `0`) are the addresses they stand for; it
//! also refuses the names no endpoint may have, in every profile
//! ([`check_target_name`]). Configuring an endpoint goes through it;
//! scheduling a delivery to a URL already configured checks the syntax only
//! (the dispatcher applies the name rule again before sending). Resolving
//! names and judging addresses ([`super::address`]) needs DNS and the
//! deployment profile, so the services do it.

use std::net::IpAddr;

use url::{Host, Url};

use crate::error::DomainError;

/// Longest accepted webhook URL, in bytes.
pub const WEBHOOK_URL_MAX_LEN: usize = 2048;

/// Accepts `http://host[:port][/path][?query][#fragment]` (and `https`), where
/// host is a DNS name, an IPv4 address or a bracketed IPv6 address. Rejects
/// relative URLs, other schemes, empty hosts, bad ports, whitespace, control
/// and non-ASCII characters (send an IDN host in its `xn--` form), and user
/// information (`user:password@`): a URL is shown back to the merchant and
/// kept in the event log, so it must not carry credentials.
pub fn validate_webhook_url(url: &str) -> Result<(), DomainError> {
    parse(url).map(|_| ())
}

/// Where a webhook URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    pub host: TargetHost,
    /// The URL's port, or the scheme's (80, 443).
    pub port: u16,
}

/// The host of a [`WebhookTarget`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetHost {
    /// An address literal, in whatever form the URL wrote it.
    Ip(IpAddr),
    /// A DNS name (lowercase, as written otherwise, a final dot kept).
    Name(String),
}

/// Validates `url` ([`validate_webhook_url`]), refuses its host if it is a
/// name no endpoint may have ([`check_target_name`]), and tells where it
/// points.
pub fn webhook_target(url: &str) -> Result<WebhookTarget, DomainError> {
    let parsed = parse(url)?;
    let port = parsed.port_or_known_default().ok_or_else(not_absolute)?;
    let host = match parsed.host().ok_or_else(not_absolute)? {
        Host::Domain(name) => {
            check_target_name(name)?;
            TargetHost::Name(name.to_owned())
        }
        Host::Ipv4(address) => TargetHost::Ip(address.into()),
        Host::Ipv6(address) => TargetHost::Ip(address.into()),
    };
    Ok(WebhookTarget { host, port })
}

/// The one single-label name an endpoint may have: dev receives webhooks
/// on loopback (production refuses it for the address it resolves to).
const LOCALHOST: &str = "localhost";

/// Refuses, in every profile, the host names that never name a webhook
/// endpoint, whatever they resolve to at this moment (a 400 on `url`):
///
/// * a final dot (`localhost.`, `example.com.`): the fully qualified
///   spelling of a name skips the resolver's own rules for it (`localhost.`
///   is not `localhost` to every resolver) and is a second spelling of a
///   name that needs none;
/// * `.internal` names (`metadata.google.internal`): reserved for private
///   use, never public;
/// * single-label names (`metadata`, `kubernetes`, `my_service`) other than
///   `localhost`: no public endpoint has one; the resolver completes them
///   with its search domains, inside the network it runs in (`metadata`
///   becomes `metadata.google.internal` on Google Cloud).
///
/// `name` is a host as the URL parser gives it (lowercase); it is compared
/// without regard to case anyway.
pub fn check_target_name(name: &str) -> Result<(), DomainError> {
    let lower = name.to_ascii_lowercase();
    if let Some(without_dot) = lower.strip_suffix('.') {
        return Err(bad_name(format!(
            "url host {name} ends with a dot; write it without the final dot ({without_dot})"
        )));
    }
    if lower == "internal" || lower.ends_with(".internal") {
        return Err(bad_name(format!(
            "url host {name} is an internal name (.internal); webhooks go to public names"
        )));
    }
    if !lower.contains('.') && lower != LOCALHOST {
        return Err(bad_name(format!(
            "url host {name} is a single-label name; use a fully qualified name such as \
             hooks.example.com (localhost is the only single-label name allowed)"
        )));
    }
    Ok(())
}

fn bad_name(description: String) -> DomainError {
    DomainError::invalid("url", description)
}

fn not_absolute() -> DomainError {
    DomainError::invalid("url", "url must be an absolute http or https URL")
}

fn parse(url: &str) -> Result<Url, DomainError> {
    if url.len() > WEBHOOK_URL_MAX_LEN {
        return Err(DomainError::invalid(
            "url",
            format!("url must be at most {WEBHOOK_URL_MAX_LEN} characters"),
        ));
    }
    match is_absolute_http_url(url) {
        Syntax::Valid => {}
        Syntax::Credentials => return Err(credentials()),
        Syntax::Invalid => return Err(not_absolute()),
    }
    // The WHATWG parser (the dispatcher's HTTP client reads URLs with it too)
    // has the last word: a host like `1.2.3.999` is a malformed IPv4 address
    // to it, not a name.
    let parsed = Url::parse(url).map_err(|_| not_absolute())?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(credentials());
    }
    Ok(parsed)
}

fn credentials() -> DomainError {
    DomainError::invalid(
        "url",
        "url must not contain a user name or password (user:password@)",
    )
}

#[derive(Debug, PartialEq, Eq)]
enum Syntax {
    Valid,
    Invalid,
    Credentials,
}

fn is_absolute_http_url(url: &str) -> Syntax {
    let Some(authority) = http_authority(url) else {
        return Syntax::Invalid;
    };
    if authority.contains('@') {
        return Syntax::Credentials;
    }
    let Some((host, port)) = split_host_port(authority) else {
        return Syntax::Invalid;
    };
    if is_valid_host(host) && port.is_none_or(is_valid_port) {
        Syntax::Valid
    } else {
        Syntax::Invalid
    }
}

/// What follows `http://` or `https://` up to the path, query or fragment;
/// `None` for other schemes, relative URLs, and any byte that is not
/// printable ASCII.
fn http_authority(url: &str) -> Option<&str> {
    if !url.bytes().all(|byte| byte.is_ascii_graphic()) {
        return None;
    }
    let (scheme, rest) = url.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..authority_end])
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
            "http://1.2.3.999/",
            "http://256.0.0.1/",
            "http://0x100000000/",
            too_long.as_str(),
        ] {
            let error = validate_webhook_url(url).unwrap_err();
            assert_eq!(error.field(), Some("url"), "{url:?}");
            assert_eq!(error.code(), "BAD_REQUEST_ERROR");
            assert_eq!(
                webhook_target(url).unwrap_err(),
                error,
                "{url:?}: both checks agree"
            );
        }
    }

    #[test]
    fn credentials_are_refused() {
        for url in [
            "https://user:pass@example.com/x",
            "https://user@example.com/x",
            "https://:pass@example.com/x",
            "https://@example.com/x",
            "http://user:pass@127.0.0.1:4000/hook",
            "http://a@b@example.com/",
        ] {
            let error = validate_webhook_url(url).unwrap_err();
            assert_eq!(error.field(), Some("url"), "{url:?}");
            assert_eq!(
                error.to_string(),
                "url must not contain a user name or password (user:password@)",
                "{url:?}"
            );
        }
        // An `@` after the authority is part of the path or query.
        assert_eq!(
            validate_webhook_url("https://example.com/a@b?c=d@e#f@g"),
            Ok(())
        );
    }

    #[test]
    fn targets_read_hosts_as_the_http_client_does() {
        let ip = |url: &str| match webhook_target(url).unwrap().host {
            TargetHost::Ip(address) => address.to_string(),
            TargetHost::Name(name) => panic!("{url}: a name, {name}"),
        };
        assert_eq!(ip("http://127.0.0.1/"), "127.0.0.1");
        assert_eq!(ip("http://127.1/"), "127.0.0.1");
        assert_eq!(ip("http://2130706433/"), "127.0.0.1");
        assert_eq!(ip("http://0x7f000001/"), "127.0.0.1");
        assert_eq!(ip("http://0x7f.1/"), "127.0.0.1");
        assert_eq!(ip("http://0177.0.0.1/"), "127.0.0.1");
        assert_eq!(ip("http://0/"), "0.0.0.0");
        assert_eq!(ip("http://169.254.169.254./latest"), "169.254.169.254");
        assert_eq!(ip("http://[::1]:9000/"), "::1");
        assert_eq!(ip("http://[::ffff:127.0.0.1]/"), "::ffff:127.0.0.1");
        assert_eq!(
            webhook_target("HTTPS://Shop.Example.COM/hooks").unwrap(),
            WebhookTarget {
                host: TargetHost::Name("shop.example.com".into()),
                port: 443,
            }
        );
        assert_eq!(
            webhook_target("http://hooks.example.internal.test/x").unwrap(),
            WebhookTarget {
                host: TargetHost::Name("hooks.example.internal.test".into()),
                port: 80,
            }
        );
        assert_eq!(
            webhook_target("http://localhost:4000/h").unwrap().port,
            4000
        );
        assert_eq!(webhook_target("https://[::1]/h").unwrap().port, 443);
    }

    #[test]
    fn names_no_endpoint_may_have_are_refused_in_every_profile() {
        let refused = |url: &str| {
            let error = webhook_target(url).unwrap_err();
            assert_eq!(error.field(), Some("url"), "{url}");
            assert_eq!(error.code(), "BAD_REQUEST_ERROR", "{url}");
            // Syntactically fine: a URL configured before keeps scheduling.
            assert_eq!(validate_webhook_url(url), Ok(()), "{url}");
            error.to_string()
        };
        for url in [
            "http://localhost.:8083/",
            "http://LOCALHOST.:4000/h",
            "https://example.com./hooks",
            "http://metadata./computeMetadata/v1/",
            "http://localtest.me.:4000/",
        ] {
            assert!(refused(url).contains("ends with a dot"), "{url}");
        }
        assert_eq!(
            refused("http://localhost.:8083/"),
            "url host localhost. ends with a dot; write it without the final dot (localhost)"
        );
        for url in [
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://METADATA.GOOGLE.INTERNAL/",
            "https://host.docker.internal:3000/webhook",
            "http://foo.internal:4000/",
            "http://internal/",
        ] {
            assert!(refused(url).contains("(.internal)"), "{url}");
        }
        assert_eq!(
            refused("http://metadata.google.internal/x"),
            "url host metadata.google.internal is an internal name (.internal); webhooks go to public names"
        );
        for url in [
            "http://metadata/computeMetadata/v1/",
            "http://Metadata:80/",
            "http://kubernetes/",
            "https://my_service:443",
            "http://webhook-receiver:4000/hook",
        ] {
            assert!(refused(url).contains("single-label name"), "{url}");
        }
        assert_eq!(
            refused("http://metadata/"),
            "url host metadata is a single-label name; use a fully qualified name such as \
             hooks.example.com (localhost is the only single-label name allowed)"
        );
        // Allowed names: judged later by what they resolve to.
        for url in [
            "http://localhost:4000/hook",
            "http://LocalHost:4000/hook",
            "https://shop.example.com/hooks",
            "https://internal.example.com/hooks",
            "https://example.internal-corp.com/hooks",
            "http://localtest.me:8081/",
            "http://127.0.0.1.nip.io:8081/",
            "http://foo.localhost:4000/",
        ] {
            assert!(
                matches!(webhook_target(url).unwrap().host, TargetHost::Name(_)),
                "{url}"
            );
        }
        // Address literals are not names (a final dot on an IPv4 address is
        // the address itself; the address rule judges it).
        assert!(matches!(
            webhook_target("http://127.0.0.1.:4000/").unwrap().host,
            TargetHost::Ip(_)
        ));
        assert_eq!(check_target_name("example.com"), Ok(()));
        assert!(check_target_name("example.com.").is_err());
    }
}
