//! The acquirer's live counters, for the job status and `/metrics`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;

/// Live counters, for `/api/v1/test/jobs/status` and metrics.
#[derive(Debug, Default)]
pub struct AcquirerStats {
    pub(super) pending: AtomicU64,
    pub(super) processing: AtomicU64,
    pub(super) completed: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) running: AtomicBool,
}

/// One reading of [`AcquirerStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AcquirerStatsSnapshot {
    /// Jobs waiting out their processing delay.
    pub pending: u64,
    /// Jobs recording their outcome.
    pub processing: u64,
    /// Jobs done since start: outcome recorded, or found already recorded.
    pub completed: u64,
    /// Attempts that failed since start (each is retried later).
    pub failed: u64,
    /// The consumer is connected and pulling.
    pub running: bool,
}

impl AcquirerStats {
    pub fn snapshot(&self) -> AcquirerStatsSnapshot {
        AcquirerStatsSnapshot {
            pending: self.pending.load(Ordering::Relaxed),
            processing: self.processing.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            running: self.running.load(Ordering::Relaxed),
        }
    }

    /// `"running"` or `"stopped"`, as in the contract's job status.
    pub fn worker_status(&self) -> &'static str {
        if self.running.load(Ordering::Relaxed) {
            "running"
        } else {
            "stopped"
        }
    }
}

impl AcquirerStatsSnapshot {
    pub fn worker_status(&self) -> &'static str {
        if self.running {
            "running"
        } else {
            "stopped"
        }
    }
}

/// Counts one job in a gauge for as long as it lives (also on cancellation).
pub(super) struct Gauge<'a>(&'a AtomicU64);

impl<'a> Gauge<'a> {
    pub(super) fn enter(counter: &'a AtomicU64) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
