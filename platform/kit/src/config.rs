//! Configuration pieces: each service's clap `Config` flattens the ones it
//! needs, so every service reads the same `PAYSTREAM_*` variables with the
//! same defaults.

use std::fmt;
use std::time::Duration;

use clap::{Args, ValueEnum};
use paystream_domain::validation::SystemPorts;
use paystream_store::relay::RelayConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// Seeds the contract's test merchant and users; allows loopback webhooks.
    Dev,
    /// Seeds nothing.
    Production,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, for log collectors.
    Json,
    /// Human-readable lines, for a terminal.
    Pretty,
}

/// A value that never prints (connection strings carry passwords).
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Self(value.to_owned()))
    }
}

/// Settings every service has.
#[derive(Debug, Clone, Args)]
pub struct RuntimeArgs {
    #[arg(long, env = "PAYSTREAM_PROFILE", value_enum, default_value = "dev")]
    pub profile: Profile,

    /// Log lines as JSON (for collectors) or pretty (for a terminal).
    #[arg(
        long,
        env = "PAYSTREAM_LOG_FORMAT",
        value_enum,
        default_value = "pretty"
    )]
    pub log_format: LogFormat,
}

impl RuntimeArgs {
    pub fn new(profile: Profile) -> Self {
        Self {
            profile,
            log_format: LogFormat::Pretty,
        }
    }
}

/// The PostgreSQL database that holds the event store and the read models.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    #[arg(
        long,
        env = "PAYSTREAM_DATABASE_URL",
        default_value = "postgres://paystream:paystream@127.0.0.1:5432/paystream"
    )]
    pub database_url: Secret,

    /// Pool size; a request or a batch holds at most one connection, briefly.
    #[arg(long, env = "PAYSTREAM_DATABASE_MAX_CONNECTIONS", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(2..=256))]
    pub database_max_connections: u32,
}

impl DatabaseArgs {
    pub fn new(database_url: impl Into<String>, max_connections: u32) -> Self {
        Self {
            database_url: Secret::new(database_url),
            database_max_connections: max_connections,
        }
    }
}

/// NATS, and the JetStream stream that carries committed events.
#[derive(Debug, Clone, Args)]
pub struct NatsArgs {
    #[arg(
        long,
        env = "PAYSTREAM_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,

    /// JetStream stream that carries committed events.
    #[arg(
        long,
        env = "PAYSTREAM_EVENTS_STREAM",
        default_value = "PAYSTREAM_EVENTS"
    )]
    pub events_stream: String,

    /// Subjects are `{prefix}.{category}.{event_type}`.
    #[arg(
        long,
        env = "PAYSTREAM_EVENTS_SUBJECT_PREFIX",
        default_value = "paystream.events"
    )]
    pub events_subject_prefix: String,
}

impl NatsArgs {
    /// How long a NATS request (a JetStream API call) may take.
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

    pub fn new(nats_url: impl Into<String>, events_stream: impl Into<String>) -> Self {
        Self {
            nats_url: nats_url.into(),
            events_stream: events_stream.into(),
            events_subject_prefix: RelayConfig::default().subject_prefix,
        }
    }

    /// The relay's stream and subjects, with its other settings at default.
    pub fn relay(&self) -> RelayConfig {
        RelayConfig {
            stream_name: self.events_stream.clone(),
            subject_prefix: self.events_subject_prefix.clone(),
            ..RelayConfig::default()
        }
    }
}

/// The ports of the default dev layout (deploy/dev): the edge 8000, the
/// command API 8081, the query API 8082, the projector 8083, the webhook
/// dispatcher 8084 (each serves its `/health` and `/metrics` there too), the
/// example shop 8085, the legacy dashboard and checkout ports 3000 and 3001,
/// PostgreSQL 5432, NATS 4222 and its monitoring port 8222. deploy/dev
/// computes the list from the ports it actually uses and passes it on.
pub const DEFAULT_SYSTEM_PORTS: &str = "3000,3001,4222,5432,8000,8081,8082,8083,8084,8085,8222";

/// The ports the system itself listens on, which a webhook must never be
/// aimed at on loopback (the dev profile's rule; production refuses
/// loopback altogether). Read by the command API, which checks a URL when it
/// is configured, and the webhook dispatcher, which checks it before every
/// attempt; each adds its own HTTP port.
#[derive(Debug, Clone, Args)]
pub struct SystemPortsArgs {
    /// Comma-separated ports the system listens on (the edge, the services
    /// with their health and metrics, the legacy, example and infrastructure
    /// ports): never a webhook target on loopback.
    #[arg(
        long,
        env = "PAYSTREAM_SYSTEM_PORTS",
        default_value = DEFAULT_SYSTEM_PORTS
    )]
    pub system_ports: SystemPorts,
}

impl Default for SystemPortsArgs {
    /// [`DEFAULT_SYSTEM_PORTS`].
    fn default() -> Self {
        Self {
            system_ports: default_system_ports(),
        }
    }
}

/// [`DEFAULT_SYSTEM_PORTS`], parsed.
pub fn default_system_ports() -> SystemPorts {
    DEFAULT_SYSTEM_PORTS
        .parse()
        .expect("DEFAULT_SYSTEM_PORTS is a list of ports")
}

#[cfg(test)]
mod tests {
    use super::*;

    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        ports: SystemPortsArgs,
    }

    #[test]
    fn system_ports_default_to_the_dev_layout_and_are_validated() {
        let ports = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("cli").chain(args.iter().copied()))
                .map(|cli| cli.ports.system_ports.to_string())
                .map_err(|error| error.to_string())
        };
        assert_eq!(ports(&[]).unwrap(), DEFAULT_SYSTEM_PORTS);
        assert_eq!(
            SystemPortsArgs::default().system_ports.to_string(),
            DEFAULT_SYSTEM_PORTS
        );
        assert_eq!(
            ports(&["--system-ports", "18000, 18081,13000"]).unwrap(),
            "13000,18000,18081"
        );
        for bad in ["", "8000,,8081", "0", "65536", "8081-8084", "web"] {
            let error = ports(&["--system-ports", bad]).unwrap_err();
            assert!(error.contains("--system-ports"), "{bad:?}: {error}");
        }
    }
}
