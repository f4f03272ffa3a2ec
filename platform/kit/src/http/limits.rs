//! Rate limits, answered as `429 RATE_LIMITED` with `Retry-After`
//! ([`ApiError::rate_limited`]). Budgets are GCRA cells (`governor`), kept
//! in this process's memory:
//!
//! * **logins**: per client address ([`RateArgs::rate_login_per_address`]
//!   a minute); per account, failures lock it for a growing time (kept in
//!   PostgreSQL, see `sessions`' lockouts, so every instance sees them);
//! * **wrong API secrets**: per API key and per address, at most
//!   [`RateArgs::rate_secret_failures`] a minute; once spent, every attempt
//!   with that key or from that address is refused, right secret or not
//!   (else the answer would tell which secret is right);
//! * **the checkout's public endpoints**: per address and per order (or
//!   payment), [`RateArgs::rate_public_per_address`] and
//!   [`RateArgs::rate_public_per_object`] a minute;
//! * **every authenticated merchant**: [`RateArgs::rate_merchant`] requests a
//!   second per merchant, a generous budget against runaway clients.
//!
//! The in-memory budgets are per instance: behind N replicas a client gets
//! up to N times each budget (the login lockout is shared). Idle keys are
//! forgotten, and each table holds at most [`MAX_KEYS`] keys.
//!
//! The client's address is the TCP peer's, or, when the peer is one of
//! [`RateArgs::trusted_proxies`] (the edge), the last `X-Forwarded-For`
//! entry, which the edge writes itself.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use clap::Args;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use paystream_domain::MerchantId;

use super::error::ApiError;

/// Most keys one budget table holds; past it, idle keys are dropped first.
pub const MAX_KEYS: usize = 100_000;

/// The limits (`PAYSTREAM_RATE_*`).
#[derive(Debug, Clone, Args)]
pub struct RateArgs {
    /// Apply the rate limits. Off only for benchmarks that measure the
    /// services' own capacity.
    #[arg(long, env = "PAYSTREAM_RATE_LIMITS", default_value_t = true, action = clap::ArgAction::Set)]
    pub rate_limits: bool,

    /// Login attempts a minute from one client address.
    #[arg(long, env = "PAYSTREAM_RATE_LOGIN_PER_ADDRESS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_login_per_address: u32,

    /// Failed logins of one account before each further failure locks it:
    /// 1 s after the next one, then 2, 4, … up to the maximum below.
    #[arg(long, env = "PAYSTREAM_RATE_LOGIN_FREE_FAILURES", default_value_t = 5)]
    pub rate_login_free_failures: u32,

    /// Longest lock-out of an account, in seconds (staff can lift it:
    /// `POST /api/v1/auth/unlock`).
    #[arg(long, env = "PAYSTREAM_RATE_LOGIN_LOCKOUT_MAX", default_value_t = 900,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub rate_login_lockout_max: u64,

    /// Wrong API secrets a minute, per API key and per client address.
    #[arg(long, env = "PAYSTREAM_RATE_SECRET_FAILURES", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_secret_failures: u32,

    /// Calls a minute to the checkout's public endpoints from one address.
    #[arg(long, env = "PAYSTREAM_RATE_PUBLIC_PER_ADDRESS", default_value_t = 120,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_public_per_address: u32,

    /// Calls a minute to the public endpoints for one order or payment (the
    /// checkout polls a payment once a second).
    #[arg(long, env = "PAYSTREAM_RATE_PUBLIC_PER_OBJECT", default_value_t = 90,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_public_per_object: u32,

    /// Requests a second per authenticated merchant.
    #[arg(long, env = "PAYSTREAM_RATE_MERCHANT", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_merchant: u32,

    /// Peers whose `X-Forwarded-For` is believed (the edge), comma-separated.
    #[arg(
        long,
        env = "PAYSTREAM_TRUSTED_PROXIES",
        value_delimiter = ',',
        default_value = "127.0.0.1,::1"
    )]
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for RateArgs {
    fn default() -> Self {
        Self {
            rate_limits: true,
            rate_login_per_address: 30,
            rate_login_free_failures: 5,
            rate_login_lockout_max: 900,
            rate_secret_failures: 10,
            rate_public_per_address: 120,
            rate_public_per_object: 90,
            rate_merchant: 1000,
            trusted_proxies: vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ],
        }
    }
}

/// A keyed budget: `governor`'s table, bounded to [`MAX_KEYS`].
#[derive(Debug)]
struct Budget<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    /// When the full table was last swept, in ms after `created`.
    swept_at: AtomicU64,
    created: Instant,
}

/// How often a full table is swept of idle keys, at most.
const FULL_SWEEP_EVERY: Duration = Duration::from_secs(1);

impl<K: Hash + Eq + Clone> Budget<K> {
    fn new(quota: Quota) -> Self {
        Self {
            limiter: RateLimiter::keyed(quota),
            swept_at: AtomicU64::new(0),
            created: Instant::now(),
        }
    }

    /// Takes one cell; `Err(wait)` when the budget is spent. A full table
    /// is swept of idle keys at most once a [`FULL_SWEEP_EVERY`]; while it
    /// stays full (that many distinct clients inside one budget window, an
    /// attack) every key is refused rather than the table growing.
    fn take(&self, key: &K) -> Result<(), Duration> {
        if self.limiter.len() >= MAX_KEYS {
            let now = self.created.elapsed().as_millis() as u64;
            let last = self.swept_at.load(Ordering::Relaxed);
            let due = now.saturating_sub(last) >= FULL_SWEEP_EVERY.as_millis() as u64;
            if due
                && self
                    .swept_at
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                self.limiter.retain_recent();
            }
            if self.limiter.len() >= MAX_KEYS {
                return Err(FULL_SWEEP_EVERY);
            }
        }
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// Failures, not attempts: each failure takes a cell; once the budget is
/// spent the key is refused until a cell is back, whatever it sends.
#[derive(Debug)]
struct FailureGate<K: Hash + Eq + Clone> {
    budget: Budget<K>,
    blocked: Mutex<HashMap<K, Instant>>,
}

impl<K: Hash + Eq + Clone> FailureGate<K> {
    fn new(quota: Quota) -> Self {
        Self {
            budget: Budget::new(quota),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    fn blocked(&self) -> std::sync::MutexGuard<'_, HashMap<K, Instant>> {
        self.blocked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `Err(wait)` while `key` is blocked.
    fn check<Q>(&self, key: &Q) -> Result<(), Duration>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = Instant::now();
        match self.blocked().get(key) {
            Some(until) if *until > now => Err(*until - now),
            _ => Ok(()),
        }
    }

    fn failed(&self, key: &K) {
        if let Err(wait) = self.budget.take(key) {
            let mut blocked = self.blocked();
            let now = Instant::now();
            if blocked.len() >= MAX_KEYS {
                blocked.retain(|_, until| *until > now);
            }
            if blocked.len() < MAX_KEYS {
                blocked.insert(key.clone(), now + wait);
            }
        }
    }

    fn forget_idle(&self) {
        self.budget.forget_idle();
        let now = Instant::now();
        self.blocked().retain(|_, until| *until > now);
    }
}

fn per_minute(count: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(count).unwrap_or(NonZeroU32::MIN))
}

#[derive(Debug)]
struct Tables {
    login_address: Budget<IpAddr>,
    secret_key: FailureGate<String>,
    secret_address: FailureGate<IpAddr>,
    public_address: Budget<IpAddr>,
    public_object: Budget<String>,
    merchant: Budget<MerchantId>,
}

/// Every limit of one API instance; cheap to clone.
#[derive(Debug, Clone)]
pub struct RateLimits {
    args: Arc<RateArgs>,
    tables: Arc<Tables>,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::new(RateArgs::default())
    }
}

impl RateLimits {
    pub fn new(args: RateArgs) -> Self {
        let merchant =
            Quota::per_second(NonZeroU32::new(args.rate_merchant).unwrap_or(NonZeroU32::MIN));
        let tables = Tables {
            login_address: Budget::new(per_minute(args.rate_login_per_address)),
            secret_key: FailureGate::new(per_minute(args.rate_secret_failures)),
            secret_address: FailureGate::new(per_minute(args.rate_secret_failures)),
            public_address: Budget::new(per_minute(args.rate_public_per_address)),
            public_object: Budget::new(per_minute(args.rate_public_per_object)),
            merchant: Budget::new(merchant),
        };
        Self {
            args: Arc::new(args),
            tables: Arc::new(tables),
        }
    }

    pub fn args(&self) -> &RateArgs {
        &self.args
    }

    /// Forgets idle keys every minute, for as long as the process runs.
    pub fn spawn_housekeeping(&self) {
        let tables = Arc::downgrade(&self.tables);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            loop {
                every.tick().await;
                let Some(tables) = tables.upgrade() else {
                    return;
                };
                tables.login_address.forget_idle();
                tables.secret_key.forget_idle();
                tables.secret_address.forget_idle();
                tables.public_address.forget_idle();
                tables.public_object.forget_idle();
                tables.merchant.forget_idle();
            }
        });
    }

    fn verdict(&self, result: Result<(), Duration>, what: &str) -> Result<(), ApiError> {
        match result {
            Ok(()) => Ok(()),
            Err(_) if !self.args.rate_limits => Ok(()),
            Err(wait) => Err(ApiError::rate_limited(
                format!("Too many {what}; retry later"),
                wait,
            )),
        }
    }

    /// The client's address (see the module's notes); `None` when the
    /// server was not started with connection info.
    pub fn client_address(&self, parts: &Parts) -> Option<IpAddr> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| address.ip().to_canonical())?;
        if !self.args.trusted_proxies.contains(&peer) {
            return Some(peer);
        }
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .last()
            .and_then(|last| last.trim().parse::<IpAddr>().ok());
        Some(forwarded.map_or(peer, |address| address.to_canonical()))
    }

    /// A login attempt from `address`.
    pub fn login_attempt(&self, address: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(address) = address else {
            return Ok(());
        };
        self.verdict(
            self.tables.login_address.take(&address),
            "login attempts from this address",
        )
    }

    /// Before a secret is checked: is this key or address blocked?
    pub fn secret_allowed(&self, key: &str, address: Option<IpAddr>) -> Result<(), ApiError> {
        self.verdict(
            self.tables.secret_key.check(key),
            "wrong API secrets for this key",
        )?;
        if let Some(address) = address {
            self.verdict(
                self.tables.secret_address.check(&address),
                "wrong API secrets from this address",
            )?;
        }
        Ok(())
    }

    /// A wrong secret for `key` from `address`.
    pub fn secret_failed(&self, key: &str, address: Option<IpAddr>) {
        self.tables.secret_key.failed(&key.to_owned());
        if let Some(address) = address {
            self.tables.secret_address.failed(&address);
        }
    }

    /// A call to a public checkout endpoint about `object` (an order or
    /// payment id) from `address`.
    pub fn public_call(&self, address: Option<IpAddr>, object: &str) -> Result<(), ApiError> {
        if let Some(address) = address {
            self.verdict(
                self.tables.public_address.take(&address),
                "checkout requests from this address",
            )?;
        }
        let object: String = object.chars().take(64).collect();
        self.verdict(
            self.tables.public_object.take(&object),
            "checkout requests for this order",
        )
    }

    /// One request of an authenticated merchant.
    pub fn merchant_request(&self, merchant: MerchantId) -> Result<(), ApiError> {
        self.verdict(
            self.tables.merchant.take(&merchant),
            "requests for this merchant",
        )
    }
}

/// The client's address (see [`RateLimits::client_address`]), and the
/// limits to check it against.
#[derive(Debug, Clone)]
pub struct Client {
    pub address: Option<IpAddr>,
    pub limits: RateLimits,
}

impl<S: Send + Sync> FromRequestParts<S> for Client
where
    RateLimits: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let limits = RateLimits::from_ref(state);
        Ok(Self {
            address: limits.client_address(parts),
            limits,
        })
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Request;

    use super::*;

    fn parts(peer: &str, forwarded: Option<&str>) -> Parts {
        let mut request = Request::builder().uri("/");
        if let Some(forwarded) = forwarded {
            request = request.header("x-forwarded-for", forwarded);
        }
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        parts
            .extensions
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        parts
    }

    #[test]
    fn the_client_is_the_peer_unless_the_edge_forwards() {
        let limits = RateLimits::default();
        let address = |peer, forwarded| limits.client_address(&parts(peer, forwarded));
        // The edge (loopback) forwards the client's address.
        assert_eq!(
            address("127.0.0.1:5000", Some("203.0.113.7")),
            Some("203.0.113.7".parse().unwrap())
        );
        // Only the last entry counts: the client's own are not believed.
        assert_eq!(
            address("127.0.0.1:5000", Some("1.1.1.1, 203.0.113.7")),
            Some("203.0.113.7".parse().unwrap())
        );
        // Anyone else is its own address, whatever it claims.
        assert_eq!(
            address("198.51.100.2:5000", Some("1.1.1.1")),
            Some("198.51.100.2".parse().unwrap())
        );
        assert_eq!(address("[::1]:5000", None), Some("::1".parse().unwrap()));
    }

    #[test]
    fn spent_secret_budgets_refuse_every_attempt() {
        let limits = RateLimits::new(RateArgs {
            rate_secret_failures: 3,
            ..RateArgs::default()
        });
        let address = Some("203.0.113.9".parse().unwrap());
        for _ in 0..3 {
            assert!(limits.secret_allowed("key_a", address).is_ok());
            limits.secret_failed("key_a", address);
        }
        limits.secret_failed("key_a", address);
        let refused = limits.secret_allowed("key_a", None).unwrap_err();
        assert_eq!(refused.status, 429);
        assert_eq!(refused.code, "RATE_LIMITED");
        // The address is spent too, for any key; another address is not.
        assert!(limits.secret_allowed("key_b", address).is_err());
        assert!(limits
            .secret_allowed("key_b", Some("203.0.113.10".parse().unwrap()))
            .is_ok());
    }

    #[test]
    fn a_full_table_refuses_instead_of_growing() {
        let budget = Budget::<u32>::new(per_minute(1));
        for key in 0..MAX_KEYS as u32 {
            assert!(budget.take(&key).is_ok());
        }
        // Every key is recent: the sweep frees nothing, and the table stays
        // at its bound.
        assert_eq!(budget.take(&u32::MAX), Err(FULL_SWEEP_EVERY));
        assert_eq!(budget.limiter.len(), MAX_KEYS);
    }

    #[test]
    fn public_budgets_count_addresses_and_orders() {
        let limits = RateLimits::new(RateArgs {
            rate_public_per_address: 5,
            rate_public_per_object: 100,
            ..RateArgs::default()
        });
        let address = Some("203.0.113.1".parse().unwrap());
        let answers: Vec<bool> = (0..8)
            .map(|i| limits.public_call(address, &format!("order_{i}")).is_ok())
            .collect();
        assert_eq!(answers, [true, true, true, true, true, false, false, false]);
        let off = RateLimits::new(RateArgs {
            rate_limits: false,
            rate_public_per_address: 1,
            ..RateArgs::default()
        });
        assert!((0..5).all(|_| off.public_call(address, "order_x").is_ok()));
    }
}
