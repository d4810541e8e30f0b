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

/// The id of the current request as the caller sees it: echoed in
/// `X-Request-Id` and named in problem `instance`. It is the caller's own
/// `X-Request-Id` when sane (see [`RequestIds`]), else the id made here.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Both ids of a request. `own` is always made here and is what the audit
/// log records as `request_id`: a caller chooses its `X-Request-Id` freely,
/// so trusting it there would let a caller make its audit rows look like
/// somebody else's request (or collide them on purpose). The caller's id is
/// kept apart as `client` (audit column `client_request_id`) so partners
/// can still correlate; logs carry both (`request_id`, `own_request_id`).
#[derive(Debug, Clone)]
pub struct RequestIds {
    pub own: String,
    pub client: Option<String>,
}

/// Longest caller `X-Request-Id` kept; longer ones (or ones with anything
/// but visible ASCII — control characters, spaces, non-ASCII) are ignored.
pub const MAX_CLIENT_REQUEST_ID: usize = 128;

fn request_ids_of(req: &ServiceRequest) -> RequestIds {
    let client = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= MAX_CLIENT_REQUEST_ID && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned);
    RequestIds { own: uuid::Uuid::now_v7().to_string(), client }
}

/// Longest request target (path and query) answered normally; above it a
/// `414` problem. actix-web's own hard limit on the whole request head is
/// 128 KiB (and 96 header fields), above which it answers an empty `431`
/// with no hook to change that; these lower limits make every realistic
/// oversize request get a problem+json answer instead.
pub const MAX_URI_BYTES: usize = 16 * 1024;
/// Longest single header field (name + value) and all fields together.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
pub const MAX_HEADERS_TOTAL_BYTES: usize = 32 * 1024;

/// `414` / `431` for a request whose target or headers exceed the limits above.
fn oversize(req: &ServiceRequest) -> Option<ApiError> {
    let target = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > MAX_URI_BYTES {
        return Some(ApiError::new(
            Problem::UriTooLong,
            format!("The request target is {target} bytes long; at most {MAX_URI_BYTES} are accepted."),
        ));
    }
    let mut total = 0;
    for (name, value) in req.headers() {
        let size = name.as_str().len() + value.len();
        total += size;
        if size > MAX_HEADER_BYTES {
            return Some(ApiError::new(
                Problem::HeaderFieldsTooLarge,
                format!("The header {name} is {size} bytes long; at most {MAX_HEADER_BYTES} are accepted."),
            ));
        }
    }
    (total > MAX_HEADERS_TOTAL_BYTES).then(|| {
        ApiError::new(
            Problem::HeaderFieldsTooLarge,
            format!("The request headers are {total} bytes long; at most {MAX_HEADERS_TOTAL_BYTES} are accepted."),
        )
    })
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
    let ids = request_ids_of(&req);
    let request_id = ids.client.clone().unwrap_or_else(|| ids.own.clone());
    req.extensions_mut().insert(RequestId(request_id.clone()));
    req.extensions_mut().insert(ids.clone());
    let german = prefers_german(&req);
    let method = if is_head { "HEAD".to_owned() } else { req.method().to_string() };
    let path = req.path().to_owned();
    // `request_id` is the id the caller sees (SPEC §1: carried in every log
    // line); `own_request_id` is ours, the one audit rows record, so a log
    // line can be found from either.
    let span = tracing::info_span!("request", request_id = %request_id, own_request_id = %ids.own, method = %method);
    // The matched pattern is not known yet; the path without its query
    // (query strings may hold names) is what an aborted request is logged with.
    let mut in_flight = InFlight::start(&method, &path);

    // Handlers' errors arrive as `Ok` error responses; an `Err` here comes
    // from a middleware and is rendered by actix itself.
    let res = match oversize(&req) {
        Some(err) => req.into_response(err.error_response()),
        None => {
            let res = next.call(req).instrument(span.clone()).await;
            in_flight.answered = true;
            res?.map_into_boxed_body()
        }
    };
    in_flight.answered = true;

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
    security_headers(res.headers_mut(), &path);
    Ok(res)
}

/// The Content-Security-Policy of the documentation UI. The vendored
/// Swagger UI loads only its own scripts and style sheets (no inline
/// script, no eval), fetches the spec from this origin, draws icons from
/// `data:` URIs and sets inline styles (hence `'unsafe-inline'` for styles
/// only). Nothing may frame it (clickjacking).
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; font-src 'self' data:; connect-src 'self'; manifest-src 'self'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

/// Headers every answer gets:
/// - `X-Content-Type-Options: nosniff` everywhere, so no browser reads a
///   JSON or problem body as HTML or script;
/// - `Cache-Control: no-store` on every `/api/v1` answer (errors too): most
///   carry personal data, and telling the few that do not apart (code
///   lists, statistics) is not worth a shared or browser cache keeping a
///   client record by mistake; `no-store` on errors also keeps a proxy from
///   caching a `401`/`404` for a URL that another token may read;
/// - on the documentation UI a CSP and `X-Frame-Options: DENY`.
fn security_headers(headers: &mut header::HeaderMap, path: &str) {
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    if path == "/api/v1" || path.starts_with("/api/v1/") {
        headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    }
    if path == "/docs" || path.starts_with("/docs/") || path == "/swagger-ui" || path.starts_with("/swagger-ui/") {
        headers.insert(header::CONTENT_SECURITY_POLICY, header::HeaderValue::from_static(DOCS_CSP));
        headers.insert(header::X_FRAME_OPTIONS, header::HeaderValue::from_static("DENY"));
    }
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
    // The FHIR view answers errors the FHIR way: an OperationOutcome.
    let fhir = crate::fhir::is_fhir_path(res.request().path());
    let (body, content_type) = if fhir {
        (crate::fhir::operation_outcome(&api_error, request_id, german).to_string(), crate::fhir::MEDIA_TYPE)
    } else {
        (api_error.body(request_id, german).to_string(), "application/problem+json")
    };
    res.map_body(|head, _| {
        head.headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
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
