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
//!   addresses and loopback (`127.0.0.0/8`, `::1`), but never, on loopback,
//!   a port the system itself listens on ([`SystemPorts`]: the edge, the
//!   services, their health and metrics, the legacy and example sites, the
//!   infrastructure), so that a webhook cannot be aimed at Paystream itself.
//!   Which ports those are is configuration (`PAYSTREAM_SYSTEM_PORTS`), not
//!   known here. Other private ranges stay refused in dev too.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are judged as the IPv4
//! address they carry.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The ports the system itself listens on (on loopback, in dev): never a
/// webhook target there. Parsed from a comma-separated list (`8000,8081`),
/// shown the same way, in ascending order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemPorts(BTreeSet<u16>);

impl SystemPorts {
    pub fn new(ports: impl IntoIterator<Item = u16>) -> Self {
        Self(ports.into_iter().collect())
    }

    /// These ports and `port` (a service adds the port it is bound to).
    #[must_use]
    pub fn with(mut self, port: u16) -> Self {
        self.0.insert(port);
        self
    }

    pub fn contains(&self, port: u16) -> bool {
        self.0.contains(&port)
    }

    /// In ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.0.iter().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Why a list of system ports was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SystemPortsError {
    #[error(
        "the list of system ports is empty; give comma-separated port numbers, e.g. 8000,8081"
    )]
    Empty,
    #[error(
        "{0:?} is not a port number (1-65535); give comma-separated port numbers, e.g. 8000,8081"
    )]
    NotAPort(String),
}

impl FromStr for SystemPorts {
    type Err = SystemPortsError;

    /// Comma-separated port numbers, spaces around them allowed; at least
    /// one, none empty, none 0.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.trim().is_empty() {
            return Err(SystemPortsError::Empty);
        }
        text.split(',')
            .map(|item| {
                let item = item.trim();
                item.parse::<u16>()
                    .ok()
                    .filter(|&port| port != 0 && item.bytes().all(|byte| byte.is_ascii_digit()))
                    .ok_or_else(|| SystemPortsError::NotAPort(item.to_owned()))
            })
            .collect::<Result<BTreeSet<u16>, _>>()
            .map(Self)
    }
}

impl fmt::Display for SystemPorts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, port) in self.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            write!(f, "{port}")?;
        }
        Ok(())
    }
}

/// Which targets a deployment profile allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressPolicy {
    /// Production: public addresses only.
    PublicOnly,
    /// Dev and tests: public addresses, and loopback on any port but the
    /// system's own.
    PublicAndLoopback { system_ports: SystemPorts },
}

/// Why an address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddressRefusal {
    /// Private, loopback (in production), link-local, CGNAT, reserved,
    /// multicast, …
    #[error("{0} is not a public address")]
    NotPublic(IpAddr),
    /// A port the system itself listens on, on loopback.
    #[error("port {0} on loopback is one Paystream itself listens on")]
    SystemPort(u16),
}

impl AddressPolicy {
    /// Whether a webhook may be sent to `address`. `port` is `None` where it
    /// is not known (a DNS resolver sees names only); the port rule is then
    /// left to a check that knows it.
    pub fn check(&self, address: IpAddr, port: Option<u16>) -> Result<(), AddressRefusal> {
        let address = address.to_canonical();
        if is_public(address) {
            return Ok(());
        }
        match self {
            Self::PublicAndLoopback { system_ports } if address.is_loopback() => match port {
                Some(port) if system_ports.contains(port) => Err(AddressRefusal::SystemPort(port)),
                _ => Ok(()),
            },
            _ => Err(AddressRefusal::NotPublic(address)),
        }
    }

    /// The ports refused on loopback (none in production, where loopback
    /// is refused on every port).
    pub fn system_ports(&self) -> Option<&SystemPorts> {
        match self {
            Self::PublicOnly => None,
            Self::PublicAndLoopback { system_ports } => Some(system_ports),
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

    use AddressPolicy::PublicOnly;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// A dev policy with a configured set: the smoke run's moved ports.
    fn dev() -> AddressPolicy {
        AddressPolicy::PublicAndLoopback {
            system_ports: "18000,18081,18082,18083,18084,18085,13000,13001,8222"
                .parse()
                .unwrap(),
        }
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
            for policy in [PublicOnly, dev()] {
                for port in [None, Some(443), Some(8081), Some(18000)] {
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
    fn dev_allows_loopback_only_and_never_the_configured_system_ports() {
        let policy = dev();
        let configured: Vec<u16> = policy.system_ports().unwrap().iter().collect();
        assert_eq!(
            configured,
            [8222, 13000, 13001, 18000, 18081, 18082, 18083, 18084, 18085]
        );
        for address in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            // Only the configured ports are refused: the default layout's
            // ports are free when the system has moved.
            for port in [
                None,
                Some(80),
                Some(3000),
                Some(8000),
                Some(8081),
                Some(8084),
                Some(43_210),
            ] {
                assert_eq!(
                    policy.check(ip(address), port),
                    Ok(()),
                    "{address} {port:?}"
                );
            }
            for &port in &configured {
                assert_eq!(
                    policy.check(ip(address), Some(port)),
                    Err(AddressRefusal::SystemPort(port)),
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
            for port in [Some(4000), Some(18000)] {
                assert!(
                    matches!(
                        policy.check(ip(address), port),
                        Err(AddressRefusal::NotPublic(_))
                    ),
                    "{address}"
                );
            }
        }
    }

    #[test]
    fn a_port_added_to_the_set_is_refused() {
        let policy = AddressPolicy::PublicAndLoopback {
            system_ports: SystemPorts::new([8000]).with(43_210),
        };
        assert_eq!(
            policy.check(ip("127.0.0.1"), Some(43_210)),
            Err(AddressRefusal::SystemPort(43_210))
        );
        assert_eq!(
            policy.check(ip("127.0.0.1"), Some(8000)),
            Err(AddressRefusal::SystemPort(8000))
        );
        assert_eq!(policy.check(ip("127.0.0.1"), Some(8001)), Ok(()));
        assert_eq!(PublicOnly.system_ports(), None);
    }

    #[test]
    fn system_ports_parse_from_a_comma_separated_list() {
        let ports: SystemPorts = " 8084,8000 , 3000,8000".parse().unwrap();
        assert_eq!(ports.iter().collect::<Vec<_>>(), [3000, 8000, 8084]);
        assert_eq!(ports.to_string(), "3000,8000,8084");
        assert_eq!(ports.to_string().parse::<SystemPorts>(), Ok(ports));
        assert_eq!("65535".parse::<SystemPorts>().unwrap().to_string(), "65535");
        for empty in ["", " ", "\t"] {
            assert_eq!(empty.parse::<SystemPorts>(), Err(SystemPortsError::Empty));
        }
        for (list, bad) in [
            ("0", "0"),
            ("8000,0", "0"),
            ("65536", "65536"),
            ("8000,,8081", ""),
            ("8000,", ""),
            ("8000;8081", "8000;8081"),
            ("8000 8081", "8000 8081"),
            ("+8000", "+8000"),
            ("-1", "-1"),
            ("8081-8084", "8081-8084"),
            ("http", "http"),
        ] {
            assert_eq!(
                list.parse::<SystemPorts>(),
                Err(SystemPortsError::NotAPort(bad.into())),
                "{list:?}"
            );
        }
        assert_eq!(
            "8000,x".parse::<SystemPorts>().unwrap_err().to_string(),
            "\"x\" is not a port number (1-65535); give comma-separated port numbers, e.g. 8000,8081"
        );
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
            AddressRefusal::SystemPort(8082).to_string(),
            "port 8082 on loopback is one Paystream itself listens on"
        );
    }
}
