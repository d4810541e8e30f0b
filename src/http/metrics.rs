//! Prometheus metrics: request counts and latency by route and status, the
//! database pool. One global recorder per process (tests start many apps).
use std::{sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

const LATENCY: &str = "http_request_duration_seconds";

pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(LATENCY.to_owned()),
                    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
                )
                .ok()
                .and_then(|b| b.install_recorder().ok())
        })
        .as_ref()
}

pub fn record_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let labels = [("method", method.to_owned()), ("route", route.to_owned()), ("status", status.to_string())];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!(LATENCY, &labels).record(elapsed.as_secs_f64());
}

pub fn record_pool(open: u32, idle: usize) {
    metrics::gauge!("db_pool_connections").set(f64::from(open));
    metrics::gauge!("db_pool_idle_connections").set(idle as f64);
}

pub fn record_webhook_backlog(pending: u64) {
    metrics::gauge!("webhook_backlog").set(pending as f64);
}

/// A failed webhook delivery attempt, by reason class (`timeout`, `connect`,
/// `refused_target`, `http_status`, `deactivated`, `other`), and whether it
/// was the last one (24 h of retries over, or the webhook gone).
pub fn record_webhook_failure(reason: &'static str, permanently: bool) {
    metrics::counter!("ostwerk_webhook_delivery_failures_total", "reason" => reason).increment(1);
    if permanently {
        metrics::counter!("ostwerk_webhook_deliveries_failed_permanently_total").increment(1);
    }
}
