//! Which IP addresses and ports a webhook may be sent to.
//!
//! One classification, pure, shared by the command API (which checks a URL
//! when it is configured, after resolving its host) and the webhook
//! dispatcher (which checks again before every attempt and at connect time,
//! because DNS answers change). Resolving names is the services' job; this
//! module only judges addresses.
//!
//! * [`AddressPolicy::PublicOnly`] (the production profile): public unicast
//!   addresses only ([`is_public`]).
//! * [`AddressPolicy::PublicAndLoopback`] (the dev profile, tests): public
//!   addresses and loopback (`127.0.0.0/8`, `::1`), but never the
//!   Paystream services' own ports on loopback ([`SERVICE_PORTS`]), so that a
//!   webhook cannot be aimed at an internal service. Other private ranges stay
//!   refused in dev too.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are judged as the IPv4
//! address they carry.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;

/// The ports the Paystream services listen on by default (command API 8081,
/// query API 8082, projector 8083, webhook dispatcher 8084): never a webhook
/// target on loopback.
pub const SERVICE_PORTS: RangeInclusive<u16> = 8081..=8084;

/// Which targets a deployment profile allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressPolicy {
    /// Production: public addresses only.
    PublicOnly,
    /// Dev and tests: public addresses, and loopback on any port but
    /// [`SERVICE_PORTS`].
    PublicAndLoopback,
}

/// Why an address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddressRefusal {
    /// Private, loopback (in production), link-local, CGNAT, reserved,
    /// multicast, …
    #[error("{0} is not a public address")]
    NotPublic(IpAddr),
    /// A Paystream service's port on loopback.
    #[error("port {0} on loopback belongs to a Paystream service")]
    ServicePort(u16),
}

impl AddressPolicy {
    /// Whether a webhook may be sent to `address`. `port` is `None` where it
    /// is not known (a DNS resolver sees names only); the port rule is then
    /// left to a check that knows it.
    pub fn check(self, address: IpAddr, port: Option<u16>) -> Result<(), AddressRefusal> {
        let address = address.to_canonical();
        if is_public(address) {
            return Ok(());
        }
        match self {
            Self::PublicAndLoopback if address.is_loopback() => match port {
                Some(port) if SERVICE_PORTS.contains(&port) => {
                    Err(AddressRefusal::ServicePort(port))
                }
                _ => Ok(()),
            },
            _ => Err(AddressRefusal::NotPublic(address)),
        }
    }
}

/// False for every address a production webhook must not reach:
/// unspecified, loopback, private (RFC 1918), link-local (incl. cloud
/// metadata `169.254.169.254`), CGNAT (`100.64.0.0/10`), `0.0.0.0/8`,
/// broadcast, documentation, benchmarking, IETF-assigned and reserved
/// ranges, multicast, and the IPv6 equivalents (ULA `fc00::/7`, link-local
/// `fe80::/10`, site-local, documentation; IPv4-mapped, IPv4-compatible and
/// NAT64 forms of refused IPv4 addresses).
pub fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0 // "this network" 0.0.0.0/8
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn embedded_v4(segments: [u16; 8]) -> Ipv4Addr {
    let [.., high, low] = segments;
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    if ip.is_unspecified() || ip.is_loopback() {
        return false;
    }
    // IPv4-compatible (deprecated) ::a.b.c.d
    if segments[..6].iter().all(|&s| s == 0) {
        return is_public_v4(embedded_v4(segments));
    }
    // NAT64 64:ff9b::/96
    if segments[0] == 0x64 && segments[1] == 0xff9b && segments[2..6].iter().all(|&s| s == 0) {
        return is_public_v4(embedded_v4(segments));
    }
    !(ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // ULA fc00::/7
        || (segments[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (segments[0] == 0x2001 && segments[1] == 0x0db8)) // documentation
}

#[cfg(test)]
mod tests {
    use super::*;

    use AddressPolicy::{PublicAndLoopback, PublicOnly};

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn public_addresses_are_allowed_by_both_policies_on_any_port() {
        for address in [
            "93.184.216.34",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            for policy in [PublicOnly, PublicAndLoopback] {
                for port in [None, Some(443), Some(8081)] {
                    assert_eq!(policy.check(ip(address), port), Ok(()), "{address}");
                }
            }
        }
    }

    #[test]
    fn every_non_public_range_is_refused_in_production() {
        for address in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "255.255.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!is_public(ip(address)), "{address}");
            assert_eq!(
                PublicOnly.check(ip(address), Some(443)),
                Err(AddressRefusal::NotPublic(ip(address).to_canonical())),
                "{address}"
            );
        }
    }

    #[test]
    fn dev_allows_loopback_only_and_never_the_service_ports() {
        for address in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            for port in [
                None,
                Some(80),
                Some(3000),
                Some(8080),
                Some(8085),
                Some(43_210),
            ] {
                assert_eq!(
                    PublicAndLoopback.check(ip(address), port),
                    Ok(()),
                    "{address} {port:?}"
                );
            }
            for port in SERVICE_PORTS {
                assert_eq!(
                    PublicAndLoopback.check(ip(address), Some(port)),
                    Err(AddressRefusal::ServicePort(port)),
                    "{address}:{port}"
                );
            }
        }
        for address in [
            "0.0.0.0",
            "10.0.0.1",
            "192.168.1.1",
            "172.16.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "fd00::1",
            "fe80::1",
            "::",
            "::ffff:10.0.0.1",
        ] {
            assert!(
                matches!(
                    PublicAndLoopback.check(ip(address), Some(4000)),
                    Err(AddressRefusal::NotPublic(_))
                ),
                "{address}"
            );
        }
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(
            PublicOnly
                .check(ip("::ffff:10.0.0.1"), None)
                .unwrap_err()
                .to_string(),
            "10.0.0.1 is not a public address"
        );
        assert_eq!(
            AddressRefusal::ServicePort(8082).to_string(),
            "port 8082 on loopback belongs to a Paystream service"
        );
    }
}
