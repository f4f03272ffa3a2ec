//! SSRF guard: webhooks go only where the deployment profile allows.
//!
//! Which addresses are allowed is [`paystream_domain::validation::address`]'s
//! rule, the same one the command API applies when a URL is configured:
//! production allows public addresses only; dev and tests allow loopback
//! too, except on the ports the system itself listens on (the configured
//! [`SystemPorts`]). Host names no endpoint may have (a final dot,
//! `.internal`, a single label other than `localhost`:
//! [`check_target_name`]) are refused in every profile, for URLs configured
//! before that rule too. The URL is checked again here, before every
//! attempt, because DNS answers change after configuration.
//!
//! * Every address a host name resolves to is checked; one refused address
//!   refuses the target.
//! * The HTTP client connects only to addresses this module resolved and
//!   checked (it is the client's DNS resolver), so a second DNS answer
//!   (rebinding) cannot slip a private address in. IP literals, which need no
//!   resolution, are checked before the request. A resolver is not told the
//!   port, so the system-port rule is checked against the URL before the
//!   request (in dev only: production refuses loopback whatever the port).
//! * Redirects are never followed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

#[cfg(doc)]
use paystream_domain::validation::SystemPorts;
use paystream_domain::validation::{check_target_name, AddressPolicy, AddressRefusal};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why a target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("webhook target {host} resolves to a forbidden address ({address})")]
    Forbidden { host: String, address: IpAddr },
    #[error(
        "webhook target {host} uses port {port}, which Paystream itself listens on (loopback)"
    )]
    SystemPort { host: String, port: u16 },
    #[error("webhook target {host} could not be resolved: {reason}")]
    Unresolvable { host: String, reason: String },
    #[error("webhook URL is not usable: {0}")]
    BadUrl(String),
}

/// The guard's policy.
#[derive(Debug, Clone)]
pub struct Guard {
    policy: Arc<AddressPolicy>,
}

impl Guard {
    /// [`AddressPolicy::PublicOnly`] in production; in dev and tests
    /// [`AddressPolicy::PublicAndLoopback`] with the system's ports.
    pub fn new(policy: AddressPolicy) -> Self {
        Self {
            policy: Arc::new(policy),
        }
    }

    /// The shared address rule this guard applies.
    pub fn policy(&self) -> &AddressPolicy {
        &self.policy
    }

    /// Checks every address; `port` is `None` when unknown (the resolver).
    fn check(
        &self,
        host: &str,
        addresses: &[SocketAddr],
        port: Option<u16>,
    ) -> Result<(), GuardError> {
        if addresses.is_empty() {
            return Err(GuardError::Unresolvable {
                host: host.to_owned(),
                reason: "no addresses".into(),
            });
        }
        let policy = self.policy();
        for address in addresses {
            match policy.check(address.ip(), port) {
                Ok(()) => {}
                Err(AddressRefusal::NotPublic(_)) => {
                    return Err(GuardError::Forbidden {
                        host: host.to_owned(),
                        address: address.ip(),
                    })
                }
                Err(AddressRefusal::SystemPort(port)) => {
                    return Err(GuardError::SystemPort {
                        host: host.to_owned(),
                        port,
                    })
                }
            }
        }
        Ok(())
    }

    /// Resolves `host` and checks every address (with `port`, when known).
    async fn resolve_checked(
        &self,
        host: &str,
        port: Option<u16>,
    ) -> Result<Vec<SocketAddr>, GuardError> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            let addresses = [SocketAddr::new(ip, 0)];
            self.check(host, &addresses, port)?;
            return Ok(addresses.to_vec());
        }
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|error| GuardError::Unresolvable {
                host: host.to_owned(),
                reason: error.to_string(),
            })?
            .collect();
        self.check(host, &addresses, port)?;
        Ok(addresses)
    }

    /// Resolves `host` and checks every address.
    pub async fn resolve(&self, host: &str) -> Result<Vec<SocketAddr>, GuardError> {
        self.resolve_checked(host, None).await
    }

    /// Checks a URL's host and port before sending (IP literals never reach
    /// the resolver, so they are checked here; names are checked again by
    /// the resolver at connect time).
    pub async fn check_url(&self, url: &reqwest::Url) -> Result<(), GuardError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(GuardError::BadUrl(format!(
                "scheme {} is not http(s)",
                url.scheme()
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(GuardError::BadUrl("credentials in the URL".into()));
        }
        let host = url
            .host_str()
            .ok_or_else(|| GuardError::BadUrl("no host".into()))?;
        // The parser gives IPv4 addresses in dotted form and IPv6 ones in
        // brackets: anything else is a name.
        if !host.starts_with('[') && host.parse::<IpAddr>().is_err() {
            check_target_name(host).map_err(|error| GuardError::BadUrl(error.to_string()))?;
        }
        let port = url
            .port_or_known_default()
            .ok_or_else(|| GuardError::BadUrl("no port".into()))?;
        self.resolve_checked(host, Some(port)).await.map(|_| ())
    }
}

/// The HTTP client's DNS resolver: resolves with the system resolver and
/// returns only addresses the guard allows (or an error).
#[derive(Debug, Clone)]
pub struct GuardedResolver(pub Guard);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.0.clone();
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

    use paystream_domain::validation::SystemPorts;

    /// The configured ports of these tests: the smoke run's layout.
    const SYSTEM_PORTS: &str = "18000,18081,18082,18083,18084,18085,13000,13001";

    fn production() -> Guard {
        Guard::new(AddressPolicy::PublicOnly)
    }

    fn dev() -> Guard {
        Guard::new(AddressPolicy::PublicAndLoopback {
            system_ports: SYSTEM_PORTS.parse().unwrap(),
        })
    }

    #[tokio::test]
    async fn non_public_targets_are_refused_in_production_and_only_loopback_allowed_in_dev() {
        let loopback = [
            "http://127.0.0.1/hook",
            "http://127.1:3000/hook",
            "http://2130706433:3000/hook",
            "http://0x7f000001:3000/hook",
            "http://[::1]:8080/hook",
            "http://[::ffff:127.0.0.1]:9000/hook",
            "http://localhost:3000/hook",
            "https://localhost/hook",
        ];
        let private = [
            "http://10.0.0.1/hook",
            "http://172.16.5.4/hook",
            "http://192.168.1.1/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/hook",
            "http://[fd00::1]/hook",
            "http://[fe80::1]/hook",
            "http://[::ffff:10.1.2.3]/hook",
            "http://[64:ff9b::a9fe:a9fe]/hook",
            "http://0.0.0.0/hook",
            "http://0:3000/hook",
            "http://255.255.255.255/hook",
            "http://224.0.0.1/hook",
        ];
        for url in loopback.iter().chain(&private) {
            let parsed = reqwest::Url::parse(url).unwrap();
            let error = production().check_url(&parsed).await.unwrap_err();
            assert!(
                matches!(error, GuardError::Forbidden { .. }),
                "{url}: {error}"
            );
        }
        for url in loopback {
            let parsed = reqwest::Url::parse(url).unwrap();
            dev()
                .check_url(&parsed)
                .await
                .unwrap_or_else(|error| panic!("{url} refused in dev: {error}"));
        }
        for url in private {
            let parsed = reqwest::Url::parse(url).unwrap();
            let error = dev().check_url(&parsed).await.unwrap_err();
            assert!(
                matches!(error, GuardError::Forbidden { .. }),
                "{url} allowed in dev: {error}"
            );
        }
    }

    #[tokio::test]
    async fn dev_never_allows_the_configured_system_ports_on_loopback() {
        let ports: SystemPorts = SYSTEM_PORTS.parse().unwrap();
        for port in ports.iter() {
            for host in ["127.0.0.1", "[::1]", "localhost", "127.0.0.2"] {
                let parsed = reqwest::Url::parse(&format!("http://{host}:{port}/x")).unwrap();
                let error = dev().check_url(&parsed).await.unwrap_err();
                assert_eq!(
                    error,
                    GuardError::SystemPort {
                        host: host.trim_matches(['[', ']']).to_owned(),
                        port
                    },
                    "{host}:{port}"
                );
            }
        }
        // The set is the configured one: other ports are free.
        for port in [8000, 8081, 8084, 3000] {
            let parsed = reqwest::Url::parse(&format!("http://127.0.0.1:{port}/x")).unwrap();
            dev()
                .check_url(&parsed)
                .await
                .unwrap_or_else(|error| panic!("{port}: {error}"));
        }
        // Public hosts may use those ports.
        let parsed = reqwest::Url::parse("http://93.184.216.34:18081/x").unwrap();
        production().check_url(&parsed).await.unwrap();
    }

    #[tokio::test]
    async fn names_no_endpoint_may_have_are_refused_in_every_profile() {
        for url in [
            "http://localhost.:4000/x",
            "https://example.com./x",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://metadata/computeMetadata/v1/",
            "http://metadata./x",
        ] {
            let parsed = reqwest::Url::parse(url).unwrap();
            for guard in [production(), dev()] {
                let error = guard.check_url(&parsed).await.unwrap_err();
                assert!(matches!(error, GuardError::BadUrl(_)), "{url}: {error}");
            }
        }
        let parsed = reqwest::Url::parse("http://localhost.:4000/x").unwrap();
        assert_eq!(
            dev().check_url(&parsed).await.unwrap_err().to_string(),
            "webhook URL is not usable: url host localhost. ends with a dot; write it without \
             the final dot (localhost)"
        );
    }

    #[tokio::test]
    async fn credentials_are_refused() {
        let parsed = reqwest::Url::parse("http://user:pass@127.0.0.1:3000/x").unwrap();
        assert!(matches!(
            dev().check_url(&parsed).await,
            Err(GuardError::BadUrl(_))
        ));
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
            production()
                .check_url(&parsed)
                .await
                .unwrap_or_else(|error| panic!("{url}: {error}"));
        }
    }

    #[tokio::test]
    async fn other_schemes_are_refused() {
        let parsed = reqwest::Url::parse("file:///etc/passwd").unwrap();
        assert!(matches!(
            dev().check_url(&parsed).await,
            Err(GuardError::BadUrl(_))
        ));
    }

    #[tokio::test]
    async fn the_resolver_refuses_a_name_resolving_to_loopback() {
        let resolver = GuardedResolver(production());
        let result = resolver.resolve("localhost".parse().unwrap()).await;
        assert!(result.is_err());
        let resolver = GuardedResolver(dev());
        let addrs: Vec<_> = resolver
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}
