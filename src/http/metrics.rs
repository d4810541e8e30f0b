//! Prometheus metrics: request counts and latency by route and status, the
//! database pool and health, background jobs, build info. One global
//! recorder per process (tests start many apps).
use std::{cell::RefCell, collections::HashMap, sync::OnceLock, time::Duration};

use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

const LATENCY: &str = "http_request_duration_seconds";
const ACQUIRE_WAIT: &str = "db_pool_acquire_wait_seconds";

pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(LATENCY.to_owned()),
                    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(ACQUIRE_WAIT.to_owned()),
                        &[0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0],
                    )
                })
                .ok()
                .and_then(|b| b.install_recorder().ok());
            if handle.is_some() {
                metrics::gauge!("ostwerk_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            }
            handle
        })
        .as_ref()
}

/// The method label has a fixed set of values: any method a client can
/// invent would otherwise add a time series (a label-cardinality attack).
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// A request's counter and latency histogram.
type RequestHandles = (Counter, Histogram);
/// A route's handles by method and status.
type RouteHandles = HashMap<(&'static str, u16), RequestHandles>;

thread_local! {
    /// Each thread's handles by route, then method and status. Looking a
    /// series up in the recorder (building and hashing its labels) was a
    /// measurable part of a fast request (issue 8); the handles stay valid
    /// for the process, as the recorder does. Bounded: routes are the
    /// declared patterns (or "unmatched"), methods a fixed set.
    static REQUEST_HANDLES: RefCell<HashMap<String, RouteHandles>> = RefCell::new(HashMap::new());
}

pub fn record_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let method = method_label(method);
    let handles = || {
        let labels = [("method", method.to_owned()), ("route", route.to_owned()), ("status", status.to_string())];
        (metrics::counter!("http_requests_total", &labels), metrics::histogram!(LATENCY, &labels))
    };
    let record = |(counter, histogram): &RequestHandles| {
        counter.increment(1);
        histogram.record(elapsed.as_secs_f64());
    };
    // Before the recorder is installed a handle is a no-op one: not kept.
    if !matches!(HANDLE.get(), Some(Some(_))) {
        return record(&handles());
    }
    REQUEST_HANDLES.with_borrow_mut(|by_route| {
        let by_key = match by_route.get_mut(route) {
            Some(by_key) => by_key,
            None => by_route.entry(route.to_owned()).or_default(),
        };
        record(by_key.entry((method, status)).or_insert_with(handles));
    });
}

pub fn record_pool(open: u32, idle: usize, max: u32) {
    metrics::gauge!("db_pool_connections").set(f64::from(open));
    metrics::gauge!("db_pool_idle_connections").set(idle as f64);
    metrics::gauge!("db_pool_max_connections").set(f64::from(max));
}

/// How long taking a connection from the pool took (sampled at each scrape
/// and readiness check: sea-orm exposes no per-request hook for it).
pub fn record_acquire_wait(elapsed: Duration) {
    metrics::histogram!(ACQUIRE_WAIT).record(elapsed.as_secs_f64());
}

/// `1` when the last check reached the database, else `0`.
pub fn record_database_up(up: bool) {
    metrics::gauge!("db_up").set(if up { 1.0 } else { 0.0 });
}

/// A request answered `503 busy`: by cause, so an operator can tell a too
/// small pool (`acquire_timeout`) from lock contention (`lock_timeout`).
pub fn record_db_busy(cause: &'static str) {
    if cause == "acquire_timeout" {
        metrics::counter!("db_pool_acquire_timeouts_total").increment(1);
    }
    metrics::counter!("db_busy_total", "cause" => cause).increment(1);
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

pub fn record_audit_write_error() {
    metrics::counter!("audit_write_errors_total").increment(1);
}

/// One run of a background job (`expiry`, `audit_purge`) and its outcome.
pub fn record_job_run(job: &'static str, ok: bool) {
    metrics::counter!("job_runs_total", "job" => job, "outcome" => if ok { "ok" } else { "error" }).increment(1);
}

pub fn record_referrals_expired(n: u64) {
    metrics::counter!("referrals_expired_total").increment(n);
}

pub fn record_audit_purged(n: u64) {
    metrics::counter!("audit_events_purged_total").increment(n);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_methods_share_one_label() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("FOOBAR"), "other");
        assert_eq!(method_label("get"), "other");
    }
}
