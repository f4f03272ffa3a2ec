//! SSRF guard: in production, webhooks may only go to public addresses.
//!
//! * Every address a host name resolves to is checked; one forbidden address
//!   refuses the target.
//! * The HTTP client connects only to addresses this module resolved and
//!   checked (it is the client's DNS resolver), so a second DNS answer
//!   (rebinding) cannot slip a private address in. IP literals, which need no
//!   resolution, are checked before the request.
//! * Redirects are never followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why a target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("webhook target {host} resolves to a forbidden address ({address})")]
    Forbidden { host: String, address: IpAddr },
    #[error("webhook target {host} could not be resolved: {reason}")]
    Unresolvable { host: String, reason: String },
    #[error("webhook URL is not usable: {0}")]
    BadUrl(String),
}

/// True for addresses a production webhook must not reach: unspecified,
/// loopback, private (RFC 1918), link-local (incl. cloud metadata),
/// CGNAT (100.64/10), broadcast, documentation, benchmarking and reserved
/// ranges, multicast, and the IPv6 equivalents (ULA fc00::/7, link-local
/// fe80::/10, IPv4-mapped and -compatible forms, NAT64 of forbidden IPv4).
pub fn is_forbidden(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_forbidden_v4(v4);
    }
    let segments = ip.segments();
    // IPv4-compatible (deprecated) ::a.b.c.d
    if segments[..6].iter().all(|&s| s == 0) && !ip.is_loopback() && !ip.is_unspecified() {
        return is_forbidden_v4(Ipv4Addr::new(
            (segments[6] >> 8) as u8,
            segments[6] as u8,
            (segments[7] >> 8) as u8,
            segments[7] as u8,
        ));
    }
    // NAT64 64:ff9b::/96
    if segments[0] == 0x64 && segments[1] == 0xff9b && segments[2..6].iter().all(|&s| s == 0) {
        return is_forbidden_v4(Ipv4Addr::new(
            (segments[6] >> 8) as u8,
            segments[6] as u8,
            (segments[7] >> 8) as u8,
            segments[7] as u8,
        ));
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // ULA fc00::/7
        || (segments[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
}

/// The guard's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guard {
    /// Dev and tests: every address is allowed.
    pub allow_private: bool,
}

impl Guard {
    fn check(&self, host: &str, addresses: &[SocketAddr]) -> Result<(), GuardError> {
        if addresses.is_empty() {
            return Err(GuardError::Unresolvable {
                host: host.to_owned(),
                reason: "no addresses".into(),
            });
        }
        if self.allow_private {
            return Ok(());
        }
        match addresses.iter().find(|a| is_forbidden(a.ip())) {
            Some(address) => Err(GuardError::Forbidden {
                host: host.to_owned(),
                address: address.ip(),
            }),
            None => Ok(()),
        }
    }

    /// Resolves `host` and checks every address.
    pub async fn resolve(&self, host: &str) -> Result<Vec<SocketAddr>, GuardError> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            let addresses = [SocketAddr::new(ip, 0)];
            self.check(host, &addresses)?;
            return Ok(addresses.to_vec());
        }
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|error| GuardError::Unresolvable {
                host: host.to_owned(),
                reason: error.to_string(),
            })?
            .collect();
        self.check(host, &addresses)?;
        Ok(addresses)
    }

    /// Checks a URL's host before sending (IP literals never reach the
    /// resolver, so they are checked here; names are checked again by the
    /// resolver at connect time).
    pub async fn check_url(&self, url: &reqwest::Url) -> Result<(), GuardError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(GuardError::BadUrl(format!(
                "scheme {} is not http(s)",
                url.scheme()
            )));
        }
        let host = url
            .host_str()
            .ok_or_else(|| GuardError::BadUrl("no host".into()))?;
        self.resolve(host).await.map(|_| ())
    }
}

/// The HTTP client's DNS resolver: resolves with the system resolver and
/// returns only addresses the guard allows (or an error).
#[derive(Debug, Clone)]
pub struct GuardedResolver(pub Guard);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.0;
        Box::pin(async move {
            let addresses = guard.resolve(name.as_str()).await?;
            let addrs: Addrs = Box::new(addresses.into_iter());
            Ok(addrs)
        })
    }
}

impl GuardedResolver {
    pub fn shared(guard: Guard) -> Arc<Self> {
        Arc::new(Self(guard))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRODUCTION: Guard = Guard {
        allow_private: false,
    };
    const DEV: Guard = Guard {
        allow_private: true,
    };

    #[tokio::test]
    async fn forbidden_targets_are_refused_in_production_and_allowed_in_dev() {
        for url in [
            "http://127.0.0.1/hook",
            "http://10.0.0.1/hook",
            "http://172.16.5.4/hook",
            "http://192.168.1.1/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]:8080/hook",
            "http://100.64.0.1/hook",
            "http://[fd00::1]/hook",
            "http://[fe80::1]/hook",
            "http://[::ffff:127.0.0.1]/hook",
            "http://[::ffff:10.1.2.3]/hook",
            "http://[64:ff9b::a9fe:a9fe]/hook",
            "http://0.0.0.0/hook",
            "http://localhost:3000/hook",
            "https://localhost/hook",
        ] {
            let parsed = reqwest::Url::parse(url).unwrap();
            let error = PRODUCTION.check_url(&parsed).await.unwrap_err();
            assert!(
                matches!(error, GuardError::Forbidden { .. }),
                "{url}: {error}"
            );
            DEV.check_url(&parsed)
                .await
                .unwrap_or_else(|error| panic!("{url} refused in dev: {error}"));
        }
    }

    #[tokio::test]
    async fn public_addresses_are_allowed() {
        for url in [
            "https://93.184.216.34/hook",
            "http://8.8.8.8/",
            "http://100.128.0.1/",
            "http://[2606:4700:4700::1111]/",
        ] {
            let parsed = reqwest::Url::parse(url).unwrap();
            PRODUCTION
                .check_url(&parsed)
                .await
                .unwrap_or_else(|error| panic!("{url}: {error}"));
        }
    }

    #[tokio::test]
    async fn other_schemes_are_refused() {
        let parsed = reqwest::Url::parse("file:///etc/passwd").unwrap();
        assert!(matches!(
            DEV.check_url(&parsed).await,
            Err(GuardError::BadUrl(_))
        ));
    }

    #[tokio::test]
    async fn the_resolver_refuses_a_name_resolving_to_loopback() {
        let resolver = GuardedResolver(PRODUCTION);
        let result = resolver.resolve("localhost".parse().unwrap()).await;
        assert!(result.is_err());
        let resolver = GuardedResolver(DEV);
        let addrs: Vec<_> = resolver
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}
