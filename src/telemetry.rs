//! Logging: `tracing` to stdout as text or JSON lines.
//!
//! Every request runs inside a `request` span carrying its `request_id`, so
//! every line logged while serving it names the request. Nothing here logs
//! headers, query strings or bodies: those carry tokens and personal data.
use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt};

/// Installs the global subscriber; safe to call more than once (later calls are no-ops).
pub fn init(filter: &str, format: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if format == "json" {
        registry.with(fmt::layer().json().with_current_span(true).with_span_list(false)).try_init()
    } else {
        registry.with(fmt::layer().with_target(false)).try_init()
    };
    // A second init (tests start many apps in one process) is not an error.
    drop(result);
}
