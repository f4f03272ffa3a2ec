//! The Prometheus text format's shared pieces, for every service's
//! `GET /metrics`: the content type, label escaping, and the gauges of the
//! bounded in-memory caches. (Request metrics are `http::metrics`.)

use std::fmt::Write as _;

/// The content type of the text exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A label value: backslash, quote and newline escaped.
pub fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A bounded in-memory cache as `/metrics` shows it: (name, entries, most
/// entries it keeps).
pub type CacheSize = (&'static str, usize, usize);

/// Appends `{prefix}_cache_entries` and `{prefix}_cache_capacity`, one
/// series per cache, to a Prometheus text exposition.
pub fn render_caches(out: &mut String, prefix: &str, caches: &[CacheSize]) {
    for (suffix, help, capacity) in [
        (
            "cache_entries",
            "Entries in each bounded in-memory cache.",
            false,
        ),
        (
            "cache_capacity",
            "Most entries each cache keeps (the oldest go first).",
            true,
        ),
    ] {
        let family = format!("{prefix}_{suffix}");
        let _ = writeln!(out, "# HELP {family} {help}\n# TYPE {family} gauge");
        for (cache, entries, most) in caches {
            let value = if capacity { most } else { entries };
            let _ = writeln!(out, "{family}{{cache=\"{cache}\"}} {value}");
        }
    }
}
