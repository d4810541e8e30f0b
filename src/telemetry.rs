//! Logging: `tracing` to stdout as text or JSON lines.
//!
//! Every request runs inside a `request` span carrying its `request_id`, so
//! every line logged while serving it names the request. Nothing here logs
//! headers, query strings or bodies: those carry tokens and personal data.
use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt};

/// Installs the global subscriber; safe to call more than once (later calls
/// are no-ops). `serve` logs to stdout; the other subcommands log to stderr so
/// that what they print (a token, the spec) stays clean on stdout.
pub fn init(filter: &str, format: &str, to_stderr: bool) {
    // `main` refuses an invalid filter before calling this (config::validate_log_filter).
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    // Colour codes only for a terminal: in files and log collectors they are noise.
    let ansi = if to_stderr {
        std::io::IsTerminal::is_terminal(&std::io::stderr())
    } else {
        std::io::IsTerminal::is_terminal(&std::io::stdout())
    };
    let writer = fmt::writer::BoxMakeWriter::new(move || -> Box<dyn std::io::Write> {
        if to_stderr { Box::new(std::io::stderr()) } else { Box::new(std::io::stdout()) }
    });
    let result = if format == "json" {
        registry
            .with(
                fmt::layer().json().with_ansi(false).with_current_span(true).with_span_list(false).with_writer(writer),
            )
            .try_init()
    } else {
        registry.with(fmt::layer().with_target(false).with_ansi(ansi).with_writer(writer)).try_init()
    };
    // A second init (tests start many apps in one process) is not an error.
    drop(result);
}
