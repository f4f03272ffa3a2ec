//! The dispatcher's configuration: defaults, overridden by `PAYSTREAM_*`
//! environment variables or flags.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use paystream_domain::validation::{AddressPolicy, SystemPorts};
use paystream_domain::webhook::{RETRY_INTERVALS_SECONDS, TEST_RETRY_INTERVALS_SECONDS};
pub use paystream_kit::config::{
    DatabaseArgs, NatsArgs, Profile, RuntimeArgs, Secret, SystemPortsArgs,
};
use paystream_store::relay::RelayConfig;

#[derive(Debug, Clone, Args)]
pub struct Config {
    #[command(flatten)]
    pub runtime: RuntimeArgs,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub nats: NatsArgs,

    /// Ports never sent to on loopback (dev); the dispatcher's own port is
    /// added.
    #[command(flatten)]
    pub system_ports: SystemPortsArgs,

    #[arg(
        long,
        env = "PAYSTREAM_WEBHOOK_DISPATCHER_ADDR",
        default_value = "127.0.0.1:8084"
    )]
    pub http_addr: SocketAddr,

    /// Durable JetStream consumer name.
    #[arg(
        long,
        env = "PAYSTREAM_WEBHOOK_CONSUMER",
        default_value = "webhook-dispatcher"
    )]
    pub consumer_name: String,

    /// Allow targets on loopback addresses (127.0.0.0/8, ::1), except on
    /// the ports the system itself listens on (PAYSTREAM_SYSTEM_PORTS and
    /// this dispatcher's own); other private, link-local, CGNAT and ULA
    /// addresses stay refused. Default: true in the dev profile, false in
    /// production (public addresses only).
    #[arg(long, env = "PAYSTREAM_WEBHOOK_ALLOW_PRIVATE", action = clap::ArgAction::Set)]
    pub allow_private: Option<bool>,

    /// The short retry schedule (0, 5, 10, 15, 20 s).
    #[arg(long, env = "WEBHOOK_RETRY_INTERVALS_TEST", default_value_t = false, action = clap::ArgAction::Set)]
    pub retry_intervals_test: bool,

    /// Deliveries sent at once, over all endpoints.
    #[arg(long, env = "PAYSTREAM_WEBHOOK_MAX_IN_FLIGHT", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_in_flight: u32,

    /// Deliveries sent at once to one endpoint (URL origin).
    #[arg(long, env = "PAYSTREAM_WEBHOOK_MAX_PER_ENDPOINT", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub max_per_endpoint: u32,
}

impl Config {
    pub fn settings(&self) -> Settings {
        Settings {
            relay: self.nats.relay(),
            consumer_name: self.consumer_name.clone(),
            allow_private: self
                .allow_private
                .unwrap_or(self.runtime.profile == Profile::Dev),
            system_ports: self
                .system_ports
                .system_ports
                .clone()
                .with(self.http_addr.port()),
            retry_intervals: if self.retry_intervals_test {
                TEST_RETRY_INTERVALS_SECONDS.to_vec()
            } else {
                RETRY_INTERVALS_SECONDS.to_vec()
            },
            max_in_flight: self.max_in_flight as usize,
            max_per_endpoint: self.max_per_endpoint as usize,
            ..Settings::default()
        }
    }
}

impl Settings {
    /// The SSRF guard's rule.
    pub fn address_policy(&self) -> AddressPolicy {
        if self.allow_private {
            AddressPolicy::PublicAndLoopback {
                system_ports: self.system_ports.clone(),
            }
        } else {
            AddressPolicy::PublicOnly
        }
    }
}

/// What the dispatcher's tasks need, independent of how it was configured.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Stream and subject prefix of the relay's JetStream stream.
    pub relay: RelayConfig,
    pub consumer_name: String,
    /// The SSRF guard's dev policy (loopback allowed too, but not on
    /// `system_ports`) when true; public addresses only when false.
    pub allow_private: bool,
    /// The ports the system listens on: never a target on loopback.
    pub system_ports: SystemPorts,
    /// Retry schedule of new deliveries.
    pub retry_intervals: Vec<u32>,
    /// Global bound on deliveries in flight.
    pub max_in_flight: usize,
    /// Bound per endpoint (URL origin).
    pub max_per_endpoint: usize,
    /// Most rows claimed per round.
    pub claim_batch: usize,
    /// Idle wait between claims.
    pub poll_interval: Duration,
    /// How long a claimed row is held before another dispatcher may take it.
    pub lease: Duration,
    /// Timeout of one HTTP attempt (contract: 5 s).
    pub request_timeout: Duration,
    /// Events handled at once by the consumer, and its `max_ack_pending`.
    pub intake_in_flight: usize,
    /// JetStream ack wait of the consumer.
    pub ack_wait: Duration,
    /// Longest back-off after NATS or PostgreSQL errors.
    pub backoff_max: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            relay: RelayConfig::default(),
            consumer_name: "webhook-dispatcher".into(),
            allow_private: false,
            system_ports: paystream_kit::config::default_system_ports(),
            retry_intervals: RETRY_INTERVALS_SECONDS.to_vec(),
            max_in_flight: 256,
            max_per_endpoint: 8,
            claim_batch: 128,
            poll_interval: Duration::from_millis(50),
            lease: Duration::from_secs(30),
            request_timeout: Duration::from_secs(5),
            intake_in_flight: 1024,
            ack_wait: Duration::from_secs(30),
            backoff_max: Duration::from_secs(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use clap::Parser;
    use paystream_domain::validation::AddressRefusal;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    fn settings(args: &[&str]) -> Settings {
        Cli::try_parse_from(std::iter::once("webhook-dispatcher").chain(args.iter().copied()))
            .unwrap()
            .config
            .settings()
    }

    #[test]
    fn the_guard_refuses_the_configured_ports_and_its_own() {
        let settings = settings(&[
            "--profile",
            "dev",
            "--system-ports",
            "18000,18081,13000",
            "--http-addr",
            "127.0.0.1:18084",
        ]);
        let policy = settings.address_policy();
        let loopback = "127.0.0.1".parse().unwrap();
        for port in [18000, 18081, 13000, 18084] {
            assert_eq!(
                policy.check(loopback, Some(port)),
                Err(AddressRefusal::SystemPort(port))
            );
        }
        for port in [8000, 8081, 8084, 4000] {
            assert_eq!(policy.check(loopback, Some(port)), Ok(()), "{port}");
        }
        let production = self::settings(&["--profile", "production"]);
        assert_eq!(production.address_policy(), AddressPolicy::PublicOnly);
    }
}
