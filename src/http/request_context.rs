//! The outermost middleware: request id, request span, access log, metrics,
//! and the rendering of problem bodies.
use std::time::Instant;

use actix_web::{
    Error, HttpMessage, HttpResponse, ResponseError,
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{StatusCode, header},
    middleware::Next,
};
use tracing::Instrument;

use crate::error::{ApiError, PendingProblem, Problem};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The caller's organisation, put into the request by the token extractor
/// for the access log (the token itself is never logged).
#[derive(Debug, Clone)]
pub struct AccessLogOrg(pub String);

/// Requests started and not yet answered (read at shutdown).
static IN_FLIGHT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many requests are being served right now.
pub fn in_flight() -> usize {
    IN_FLIGHT.load(std::sync::atomic::Ordering::SeqCst)
}

/// Counts a request while it runs; dropped unanswered (the shutdown
/// timeout cut it, or the client went away) it logs that, so an operator
/// learns which requests a shutdown aborted.
struct InFlight {
    method: String,
    path: String,
    answered: bool,
}

impl InFlight {
    fn start(method: &str, path: &str) -> Self {
        IN_FLIGHT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self { method: method.to_owned(), path: path.to_owned(), answered: false }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        if !self.answered {
            tracing::warn!(target: "ostwerk::access", method = %self.method, path = %self.path, "request aborted before it was answered");
        }
    }
}

/// The id of the current request: the caller's `X-Request-Id` when it is
/// sane (1–128 visible ASCII characters), else a fresh UUID.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn request_id_of(req: &ServiceRequest) -> String {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

pub async fn request_context(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    // HEAD is answered as GET without the body (RFC 9110 §9.3.2): every
    // route is declared for GET only, so HEAD is routed as GET here.
    let is_head = req.method() == actix_web::http::Method::HEAD;
    if is_head {
        req.head_mut().method = actix_web::http::Method::GET;
    }
    let request_id = request_id_of(&req);
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let german = prefers_german(&req);
    let method = if is_head { "HEAD".to_owned() } else { req.method().to_string() };
    let span = tracing::info_span!("request", request_id = %request_id, method = %method);
    // The matched pattern is not known yet; the path without its query
    // (query strings may hold names) is what an aborted request is logged with.
    let mut in_flight = InFlight::start(&method, req.path());

    // Handlers' errors arrive as `Ok` error responses; an `Err` here comes
    // from a middleware and is rendered by actix itself.
    let res = next.call(req).instrument(span.clone()).await;
    in_flight.answered = true;
    let res = res?.map_into_boxed_body();

    let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status();
    let elapsed = started.elapsed();
    span.in_scope(|| {
        if let Some(err) = res.response().error().and_then(|e| e.as_error::<ApiError>())
            && status.is_server_error()
        {
            tracing::error!(error = %err, "request failed");
        }
        let org = res.request().extensions().get::<AccessLogOrg>().map(|o| o.0.clone());
        // For 401/403 the reason is the problem's detail, written for the
        // caller, so it never holds the token or a key.
        let reason = matches!(status.as_u16(), 401 | 403)
            .then(|| res.response().extensions().get::<PendingProblem>().map(|p| p.0.detail.clone()))
            .flatten();
        tracing::info!(
            target: "ostwerk::access",
            route = %route,
            status = status.as_u16(),
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            org = org.as_deref(),
            reason = reason.as_deref(),
            "{method} {route} {}", status.as_u16()
        );
    });
    super::metrics::record_request(&method, &route, status.as_u16(), elapsed);

    let mut res = render_problem(res, &request_id, german);
    if is_head {
        res = res.map_body(|_, _| BoxBody::new(()));
    }
    if let Ok(value) = header::HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(header::HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(res)
}

/// Replaces the body of any error response by an RFC 9457 problem naming the
/// request. Errors raised by actix itself (not an `ApiError`) are mapped by
/// status, so no error ever leaves without a problem body.
fn render_problem(res: ServiceResponse<BoxBody>, request_id: &str, german: bool) -> ServiceResponse<BoxBody> {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let pending = res.response().extensions().get::<PendingProblem>().cloned();
    let api_error = match pending {
        Some(PendingProblem(err)) => err,
        None => std::sync::Arc::new(ApiError::new(problem_for_status(status), generic_detail(status))),
    };
    let body = api_error.body(request_id, german).to_string();
    res.map_body(|head, _| {
        head.headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/problem+json"));
        if german {
            head.headers.insert(header::CONTENT_LANGUAGE, header::HeaderValue::from_static("de"));
        }
        BoxBody::new(body)
    })
}

fn problem_for_status(status: StatusCode) -> Problem {
    Problem::ALL.iter().copied().find(|p| p.status() == status).unwrap_or(if status.is_server_error() {
        Problem::Internal
    } else {
        Problem::BadRequest
    })
}

fn generic_detail(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("Error").to_owned()
}

/// `Accept-Language` whose first preference is German.
fn prefers_german(req: &ServiceRequest) -> bool {
    german_preferred(req.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()))
}

/// Whether an `Accept-Language` value puts German first (by q-value).
pub fn german_preferred(accept_language: Option<&str>) -> bool {
    accept_language
        .and_then(|v| {
            let mut langs: Vec<(f32, String)> = v
                .split(',')
                .filter_map(|part| {
                    let mut it = part.trim().split(';');
                    let tag = it.next()?.trim().to_ascii_lowercase();
                    let q =
                        it.find_map(|p| p.trim().strip_prefix("q=")).and_then(|q| q.parse::<f32>().ok()).unwrap_or(1.0);
                    Some((q, tag))
                })
                .collect();
            langs.sort_by(|a, b| b.0.total_cmp(&a.0));
            langs.into_iter().next().map(|(_, tag)| tag == "de" || tag.starts_with("de-"))
        })
        .unwrap_or(false)
}

/// Renders an `ApiError` outside the handler pipeline (fallback services).
pub fn error_response(err: ApiError) -> HttpResponse {
    err.error_response()
}
