//! The one back-off every reconnecting loop uses (relay, acquirer, webhook
//! dispatcher, projector).

use std::time::Duration;

use rand::Rng;

/// 100 ms, doubling with each consecutive failure, capped at `max`, with
/// ±50 % jitter so that restarted services do not retry in step.
pub fn backoff(failures: u32, max: Duration) -> Duration {
    Duration::from_millis(100)
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(max)
        .mul_f64(rand::thread_rng().gen_range(0.5..1.5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter() {
        for _ in 0..100 {
            let first = backoff(1, Duration::from_secs(5));
            assert!((50..=150).contains(&first.as_millis()), "{first:?}");
            let third = backoff(3, Duration::from_secs(5));
            assert!((200..=600).contains(&third.as_millis()), "{third:?}");
            assert!(backoff(40, Duration::from_secs(5)) <= Duration::from_millis(7500));
        }
    }
}
