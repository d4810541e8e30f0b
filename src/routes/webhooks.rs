//! `/api/v1/webhooks`: partner subscriptions to referral and measure events.
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::common::{ListOf, PageParams, created, list_response, merge_patch, ok_with_etag};
use crate::{
    auth::{Access, AuthUser, Role::*},
    domain::webhooks::WebhookEvent,
    entities::{webhook::Model, webhook_delivery},
    error::{ApiError, ProblemDetails},
    extract::JsonBody,
    http::IfMatch,
    repository::{self, tags},
    service::{
        idempotency::{self, IdempotencyKey},
        paging,
        webhooks::{self, Subscription, parse_events},
    },
    startup::AppState,
};

const ROLES: &[crate::auth::Role] = &[Admin, Caseworker, Jobcenter, Provider, Employer];
pub const LIST: Access = Access::new("list_webhooks", ROLES);
pub const GET: Access = Access::new("get_webhook", ROLES);
pub const CREATE: Access = Access::new("create_webhook", ROLES);
pub const UPDATE: Access = Access::new("update_webhook", ROLES);
pub const DELETE: Access = Access::new("delete_webhook", ROLES);
pub const DELIVERIES: Access = Access::new("list_webhook_deliveries", ROLES);
pub const ROTATE: Access = Access::new("rotate_webhook_secret", ROLES);
pub const ACCESS: &[&Access] = &[&LIST, &GET, &CREATE, &UPDATE, &DELETE, &DELIVERIES, &ROTATE];

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_webhooks)
        .service(create_webhook)
        .service(get_webhook)
        .service(update_webhook)
        .service(delete_webhook)
        .service(list_webhook_deliveries)
        .service(rotate_webhook_secret);
}

/// A subscription as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://partner.example.org/ostwerk/events", "events": ["referral.created", "referral.status_changed"]}))]
pub struct WebhookInput {
    /// Required. http(s). Unless `OSTWERK_WEBHOOK_ALLOW_PRIVATE=true`, the host
    /// must be a public address, or a name that resolves (within 2 s) to public
    /// addresses only: loopback, private, link-local, unique-local, CGNAT,
    /// documentation and other special ranges are refused, also when embedded
    /// in IPv6 (IPv4-mapped, NAT64, 6to4, Teredo); a name that does not resolve
    /// is refused.
    #[schema(required = true, nullable = false, min_length = 1, max_length = 2000, pattern = "\\S")]
    pub url: Option<String>,
    /// Required, at least one.
    #[schema(value_type = Vec<WebhookEvent>, required = true, max_items = 3)]
    pub events: Option<Vec<String>>,
    /// Admins only: the organisation subscribing (default: the caller's).
    #[schema(max_length = 200)]
    pub org: Option<String>,
    /// Default `true`.
    pub active: Option<bool>,
}

impl WebhookInput {
    fn validate(self) -> Result<Subscription, ApiError> {
        let mut c = crate::domain::validate::Checker::new();
        let url = c.required("url", self.url.as_deref()).map(|u| c.text("url", u, 2000));
        let events = c.required("events", self.events);
        // Bounded like the column (VARCHAR(200)): PostgreSQL refuses longer.
        let org = c.opt_text("org", self.org.as_deref(), 200);
        c.finish()?;
        Ok(Subscription {
            url: url.unwrap_or_default(),
            events: parse_events(&events.unwrap_or_default())?,
            org,
            active: self.active.unwrap_or(true),
        })
    }
}

/// A subscription as read (the secret only in the answer to its creation).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDto {
    pub id: Uuid,
    pub org: String,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    pub active: bool,
    /// `whsec_<base64>`: present only in the `201` of the creation and the
    /// answer of a rotation. Verify deliveries with any Standard Webhooks library.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// After a secret rotation: until when deliveries also carry a signature
    /// made with the previous secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

impl WebhookDto {
    fn new(m: &Model, with_secret: bool) -> Self {
        Self {
            id: m.id,
            org: m.org.clone(),
            url: m.url.clone(),
            events: tags::split(&m.events).iter().filter_map(|e| WebhookEvent::parse(e)).collect(),
            active: m.active,
            secret: with_secret.then(|| m.secret.clone()),
            previous_secret_expires_at: m
                .previous_secret_until
                .filter(|until| m.previous_secret.is_some() && *until > crate::domain::ids::now()),
            created_at: m.created_at,
            updated_at: m.updated_at,
            version: m.version,
        }
    }
}

/// One attempt series of one event to one subscriber.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDto {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_type: String,
    /// The `webhook-id` header: the same on every retry.
    pub event_id: Uuid,
    /// `pending`, `delivered` or `failed` (after 24 h of retries).
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    /// The signed body as sent (the same schema as the top-level `webhooks`).
    #[schema(value_type = crate::domain::webhooks::WebhookPayload)]
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<&webhook_delivery::Model> for DeliveryDto {
    fn from(m: &webhook_delivery::Model) -> Self {
        Self {
            id: m.id,
            webhook_id: m.webhook_id,
            event_type: m.event_type.clone(),
            event_id: m.event_id,
            status: m.status.clone(),
            attempts: m.attempts,
            next_attempt_at: m.next_attempt_at,
            last_status: m.last_status,
            last_error: m.last_error.clone(),
            payload: serde_json::from_str(&m.payload).unwrap_or(serde_json::Value::Null),
            created_at: m.created_at,
            delivered_at: m.delivered_at,
        }
    }
}

/// List webhooks
///
/// An admin sees every organisation's, everybody else their own organisation's.
#[utoipa::path(tag = "webhooks", params(PageParams), responses((status = 200, description = "One page of webhooks", body = ListOf<WebhookDto>)))]
#[get("/webhooks")]
pub async fn list_webhooks(
    state: web::Data<AppState>,
    user: AuthUser,
    page: PageParams,
) -> Result<HttpResponse, ApiError> {
    user.require(&LIST)?;
    let page = page.validate()?;
    let after = paging::start(&state.cursors, &page)?;
    let rows = repository::webhooks::list(
        &state.db,
        webhooks::org_scope(&user).as_deref(),
        after,
        paging::newest_first(&page),
        page.limit,
    )
    .await?;
    let result = paging::finish(&state.cursors, &page, rows, |m| m.id);
    Ok(list_response(result, |m| WebhookDto::new(&m, false)))
}

/// Subscribe to events
///
/// Ostwerk POSTs each event the subscribing organisation may see, signed the
/// Standard Webhooks way (`webhook-id`, `webhook-timestamp`,
/// `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`)
/// with the `secret` returned here once. The body is
/// `{"type", "timestamp", "data": {"resource", "id", "status", "previous_status"?, "link"}}`
/// — no personal data. Delivery is at-least-once from a durable outbox,
/// retried with exponential backoff for 24 h. Accepts an `Idempotency-Key`.
/// One organisation holds at most `OSTWERK_WEBHOOK_MAX_PER_ORG` (default 20)
/// subscriptions; beyond that the answer is `409` `webhook-limit-reached`.
#[utoipa::path(
    tag = "webhooks",
    request_body = WebhookInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried create safe")),
    responses(
        (status = 201, description = "Subscribed; the only answer that shows the secret", body = WebhookDto, headers(("Location" = String), ("ETag" = String))),
        (status = 409, description = "The organisation holds the most subscriptions allowed (`webhook-limit-reached`, with `limit`), or the Idempotency-Key is still in use",
            body = ProblemDetails, content_type = "application/problem+json"),
    ),
)]
#[post("/webhooks")]
pub async fn create_webhook(
    state: web::Data<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    req: HttpRequest,
    body: JsonBody<WebhookInput>,
) -> Result<HttpResponse, ApiError> {
    user.require(&CREATE)?;
    let sub = body.value.validate()?;
    let target = webhooks::check_url(&sub.url, state.settings.webhook_allow_private).await?;
    let max_per_org = state.settings.webhook_max_per_org;
    idempotency::run(&state.db, &user, &key, ("POST", req.path(), &body.raw), async |txn| {
        let model = webhooks::create(txn, &user, &sub, &target, max_per_org).await?;
        created(format!("/api/v1/webhooks/{}", model.id), &WebhookDto::new(&model, true))
    })
    .await
}

/// Get a webhook
#[utoipa::path(tag = "webhooks", params(("id" = Uuid, Path, description = "Webhook id")),
    responses((status = 200, description = "The webhook (without its secret)", body = WebhookDto, headers(("ETag" = String)))))]
#[get("/webhooks/{id}")]
pub async fn get_webhook(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(&GET)?;
    let model = webhooks::get(&state.db, &user, id.into_inner()).await?;
    Ok(ok_with_etag(model.version, &WebhookDto::new(&model, false)))
}

/// Change a webhook
///
/// JSON merge patch of `url`, `events`, `active`.
#[utoipa::path(
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook id"),
           ("If-Match" = Option<String>, Header, description = "ETag of the version the change is based on")),
    request_body(content = WebhookInput, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The changed webhook", body = WebhookDto, headers(("ETag" = String)))),
)]
#[patch("/webhooks/{id}")]
pub async fn update_webhook(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: JsonBody<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    user.require(&UPDATE)?;
    let current = webhooks::get(&state.db, &user, id.into_inner()).await?;
    let as_written = WebhookInput {
        url: Some(current.url.clone()),
        events: Some(tags::split(&current.events)),
        org: None,
        active: Some(current.active),
    };
    let merged: WebhookInput = merge_patch(&as_written, &body.value)?;
    let sub = merged.validate()?;
    // A malformed change is named first (400/422); only a well-formed one is
    // weighed against the version it is based on (412).
    if_match.check(current.version)?;
    let target = webhooks::check_url(&sub.url, state.settings.webhook_allow_private).await?;
    let model = webhooks::update(&state.db, &current, &sub, &target).await?;
    Ok(ok_with_etag(model.version, &WebhookDto::new(&model, false)))
}

/// Delete a webhook
///
/// Its pending deliveries are dropped with it.
#[utoipa::path(tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook id"), ("If-Match" = Option<String>, Header, description = "ETag of the version to delete")),
    responses((status = 204, description = "Deleted")))]
#[delete("/webhooks/{id}")]
pub async fn delete_webhook(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    user.require(&DELETE)?;
    let current = webhooks::get(&state.db, &user, id.into_inner()).await?;
    if_match.check(current.version)?;
    webhooks::delete(&state.db, &current).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A webhook's deliveries
///
/// Newest first: every event sent or still to send, with its attempts.
#[utoipa::path(tag = "webhooks", params(("id" = Uuid, Path, description = "Webhook id"), PageParams),
    responses((status = 200, description = "One page of deliveries", body = ListOf<DeliveryDto>)))]
#[get("/webhooks/{id}/deliveries")]
pub async fn list_webhook_deliveries(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
    page: PageParams,
) -> Result<HttpResponse, ApiError> {
    user.require(&DELIVERIES)?;
    let page = page.validate()?;
    let hook = webhooks::get(&state.db, &user, id.into_inner()).await?;
    let after = paging::start(&state.cursors, &page)?;
    let rows =
        repository::webhooks::deliveries(&state.db, hook.id, after, paging::newest_first(&page), page.limit).await?;
    let result = paging::finish(&state.cursors, &page, rows, |m| m.id);
    Ok(list_response(result, |m| DeliveryDto::from(&m)))
}

/// Rotate a webhook's secret
///
/// Makes a new `whsec_` secret and answers it (the only time it is shown).
/// For `OSTWERK_WEBHOOK_SECRET_OVERLAP_SECS` (default 24 h) every delivery
/// carries two signatures in `webhook-signature`, space-separated — `v1,<new>`
/// and `v1,<previous>` — so receivers verifying with either secret go on
/// accepting while they switch; afterwards only the new one. Rotating again
/// within the overlap ends the older secret's at once. Same rules as `PATCH`:
/// the owning organisation or an admin; honours `If-Match`.
#[utoipa::path(
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook id"),
           ("If-Match" = Option<String>, Header, description = "ETag of the version the rotation is based on")),
    responses((status = 200, description = "The webhook with its new secret", body = WebhookDto, headers(("ETag" = String)))),
)]
#[post("/webhooks/{id}/rotate-secret")]
pub async fn rotate_webhook_secret(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    user.require(&ROTATE)?;
    let current = webhooks::get(&state.db, &user, id.into_inner()).await?;
    if_match.check(current.version)?;
    let overlap = chrono::Duration::seconds(i64::try_from(state.settings.webhook_secret_overlap_secs).unwrap_or(0));
    let model = webhooks::rotate_secret(&state.db, &current, overlap).await?;
    Ok(ok_with_etag(model.version, &WebhookDto::new(&model, true)))
}
