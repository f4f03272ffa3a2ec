//! The acquirer's settings: defaults, the contract's `TEST_*` variables and
//! `PAYSTREAM_ACQUIRER_*`, validated.

use std::time::Duration;

use paystream_store::relay::RelayConfig;

use super::outcome::ProcessingMode;

/// Environment variables read by [`AcquirerConfig::from_env`].
pub mod env {
    pub const TEST_MODE: &str = "TEST_MODE";
    pub const TEST_PROCESSING_DELAY: &str = "TEST_PROCESSING_DELAY";
    pub const TEST_PAYMENT_SUCCESS: &str = "TEST_PAYMENT_SUCCESS";
    pub const CONSUMER: &str = "PAYSTREAM_ACQUIRER_CONSUMER";
    pub const MAX_IN_FLIGHT: &str = "PAYSTREAM_ACQUIRER_MAX_IN_FLIGHT";
    pub const ACK_WAIT_MS: &str = "PAYSTREAM_ACQUIRER_ACK_WAIT_MS";
}

/// Longest `TEST_PROCESSING_DELAY`, in milliseconds.
pub const MAX_TEST_DELAY_MS: u64 = 300_000;
/// Most messages in flight at once.
pub const MAX_IN_FLIGHT: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquirerConfig {
    /// Durable consumer name (`PAYSTREAM_ACQUIRER_CONSUMER`, default `acquirer`).
    pub consumer_name: String,
    /// `TEST_MODE`, `TEST_PROCESSING_DELAY`, `TEST_PAYMENT_SUCCESS`.
    pub mode: ProcessingMode,
    /// Messages processed at once, and the consumer's `max_ack_pending`
    /// (`PAYSTREAM_ACQUIRER_MAX_IN_FLIGHT`, default 1024).
    pub max_in_flight: usize,
    /// How long JetStream waits for an ack before redelivering
    /// (`PAYSTREAM_ACQUIRER_ACK_WAIT_MS`, default 30 000); longer than the
    /// longest delay.
    pub ack_wait: Duration,
    /// Longest back-off between attempts to (re)connect the consumer.
    pub backoff_max: Duration,
    /// The server sends a heartbeat this often while idle; two missed ones
    /// make the acquirer re-create its message stream.
    pub idle_heartbeat: Duration,
}

impl Default for AcquirerConfig {
    fn default() -> Self {
        Self {
            consumer_name: "acquirer".into(),
            mode: ProcessingMode::Simulated,
            max_in_flight: 1024,
            ack_wait: Duration::from_secs(30),
            backoff_max: Duration::from_secs(5),
            idle_heartbeat: Duration::from_secs(5),
        }
    }
}

/// A setting that cannot be used; the message names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("acquirer configuration: {0}")]
pub struct AcquirerConfigError(String);

impl AcquirerConfig {
    /// Reads the process environment (see [`env`]) over the defaults.
    pub fn from_env() -> Result<Self, AcquirerConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env) with any source of variables (an
    /// empty value counts as unset).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, AcquirerConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        let mut config = Self::default();
        let test_mode = get(env::TEST_MODE)
            .map(|value| parse_bool(env::TEST_MODE, &value))
            .transpose()?
            .unwrap_or(false);
        let delay = get(env::TEST_PROCESSING_DELAY)
            .map(|value| parse_u64(env::TEST_PROCESSING_DELAY, &value, 0..=MAX_TEST_DELAY_MS))
            .transpose()?
            .unwrap_or(1000);
        let payment_success = get(env::TEST_PAYMENT_SUCCESS)
            .map(|value| parse_bool(env::TEST_PAYMENT_SUCCESS, &value))
            .transpose()?
            .unwrap_or(true);
        if test_mode {
            config.mode = ProcessingMode::Test {
                delay: Duration::from_millis(delay),
                payment_success,
            };
        }
        if let Some(name) = get(env::CONSUMER) {
            config.consumer_name = name;
        }
        if let Some(value) = get(env::MAX_IN_FLIGHT) {
            config.max_in_flight =
                parse_u64(env::MAX_IN_FLIGHT, &value, 1..=MAX_IN_FLIGHT as u64)? as usize;
        }
        if let Some(value) = get(env::ACK_WAIT_MS) {
            config.ack_wait =
                Duration::from_millis(parse_u64(env::ACK_WAIT_MS, &value, 1..=24 * 3600 * 1000)?);
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the settings together.
    pub fn validate(&self) -> Result<(), AcquirerConfigError> {
        let name = &self.consumer_name;
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(AcquirerConfigError(format!(
                "{} must be 1 to 64 letters, digits, '-' or '_', got {name:?}",
                env::CONSUMER
            )));
        }
        if !(1..=MAX_IN_FLIGHT).contains(&self.max_in_flight) {
            return Err(AcquirerConfigError(format!(
                "{} must be between 1 and {MAX_IN_FLIGHT}, got {}",
                env::MAX_IN_FLIGHT,
                self.max_in_flight
            )));
        }
        let longest = self.mode.longest_delay();
        if self.ack_wait <= longest {
            return Err(AcquirerConfigError(format!(
                "{} ({} ms) must be longer than the longest processing delay ({} ms)",
                env::ACK_WAIT_MS,
                self.ack_wait.as_millis(),
                longest.as_millis()
            )));
        }
        if self.backoff_max.is_zero() || self.idle_heartbeat.is_zero() {
            return Err(AcquirerConfigError(
                "backoff_max and idle_heartbeat must be positive".into(),
            ));
        }
        Ok(())
    }

    /// The subject the consumer filters on.
    pub fn filter_subject(relay: &RelayConfig) -> String {
        format!("{}.payment.>", relay.subject_prefix)
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool, AcquirerConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(AcquirerConfigError(format!(
            "{name} must be true or false, got {value:?}"
        ))),
    }
}

fn parse_u64(
    name: &str,
    value: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, AcquirerConfigError> {
    value
        .parse::<u64>()
        .ok()
        .filter(|number| range.contains(number))
        .ok_or_else(|| {
            AcquirerConfigError(format!(
                "{name} must be a whole number from {} to {}, got {value:?}",
                range.start(),
                range.end()
            ))
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<AcquirerConfig, AcquirerConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        AcquirerConfig::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_are_the_contract_simulation() {
        let config = config(&[]).unwrap();
        assert_eq!(config, AcquirerConfig::default());
        assert_eq!(config.mode, ProcessingMode::Simulated);
        assert_eq!(config.consumer_name, "acquirer");
        assert_eq!(config.max_in_flight, 1024);
        assert_eq!(config.ack_wait, Duration::from_secs(30));
        // Test settings without TEST_MODE are checked but not used.
        assert_eq!(
            self::config(&[("TEST_PROCESSING_DELAY", "5")])
                .unwrap()
                .mode,
            ProcessingMode::Simulated
        );
    }

    #[test]
    fn test_mode_reads_delay_and_success() {
        assert_eq!(
            config(&[("TEST_MODE", "true")]).unwrap().mode,
            ProcessingMode::Test {
                delay: Duration::from_millis(1000),
                payment_success: true
            }
        );
        let config = config(&[
            ("TEST_MODE", " TRUE "),
            ("TEST_PROCESSING_DELAY", "3000"),
            ("TEST_PAYMENT_SUCCESS", "false"),
            ("PAYSTREAM_ACQUIRER_ACK_WAIT_MS", "4000"),
            ("PAYSTREAM_ACQUIRER_MAX_IN_FLIGHT", "8"),
            ("PAYSTREAM_ACQUIRER_CONSUMER", "acquirer-2"),
        ])
        .unwrap();
        assert_eq!(
            config.mode,
            ProcessingMode::Test {
                delay: Duration::from_millis(3000),
                payment_success: false
            }
        );
        assert_eq!(config.ack_wait, Duration::from_millis(4000));
        assert_eq!(config.max_in_flight, 8);
        assert_eq!(config.consumer_name, "acquirer-2");
    }

    #[test]
    fn bad_values_are_clear_errors() {
        for (vars, names) in [
            (vec![("TEST_MODE", "maybe")], "TEST_MODE"),
            (
                vec![("TEST_MODE", "true"), ("TEST_PROCESSING_DELAY", "-1")],
                "TEST_PROCESSING_DELAY",
            ),
            (
                vec![("TEST_PROCESSING_DELAY", "1s")],
                "TEST_PROCESSING_DELAY",
            ),
            (
                vec![("TEST_PAYMENT_SUCCESS", "yes please")],
                "TEST_PAYMENT_SUCCESS",
            ),
            (
                vec![("PAYSTREAM_ACQUIRER_MAX_IN_FLIGHT", "0")],
                "MAX_IN_FLIGHT",
            ),
            (vec![("PAYSTREAM_ACQUIRER_CONSUMER", "a.b")], "CONSUMER"),
            // The ack wait must outlast the longest delay (10 s simulated).
            (
                vec![("PAYSTREAM_ACQUIRER_ACK_WAIT_MS", "10000")],
                "ACK_WAIT",
            ),
            (
                vec![
                    ("TEST_MODE", "1"),
                    ("TEST_PROCESSING_DELAY", "3000"),
                    ("PAYSTREAM_ACQUIRER_ACK_WAIT_MS", "2000"),
                ],
                "ACK_WAIT",
            ),
        ] {
            let error = config(&vars).unwrap_err().to_string();
            assert!(error.contains(names), "{vars:?}: {error}");
        }
    }
}
