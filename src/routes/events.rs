//! `/api/v1/events`: the change feed partners poll (commit order, long-poll).
use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use crate::{
    auth::{Access, AuthUser, Role::*},
    domain::changes::{ChangeType, parse_types},
    error::{ApiError, FieldError},
    repository::change_feed::FeedRow,
    service::change_feed::{self, FeedRequest},
    startup::AppState,
};

pub const LIST: Access = Access::new("list_events", &[Admin, Caseworker, Jobcenter, Provider, Employer, Analyst]);
pub const ACCESS: &[&Access] = &[&LIST];

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_events);
}

const DEFAULT_LIMIT: u64 = 100;
const MAX_LIMIT: u64 = 500;
const MAX_WAIT_SECS: u64 = 30;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// `next_cursor` of the previous answer, with the same `types` (else
    /// `400 invalid-cursor`). Absent: from the first event.
    #[param(min_length = 1, max_length = 400)]
    pub after: Option<String>,
    /// Events per answer, 1–500 (default 100).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 500)]
    pub limit: Option<String>,
    /// Only these event types: a comma list, e.g. `referral.created,referral.status_changed`.
    #[param(
        pattern = "^(referral\\.created|referral\\.status_changed|client\\.created|client\\.updated|client\\.erased|measure\\.changed|vacancy\\.filled)(,(referral\\.created|referral\\.status_changed|client\\.created|client\\.updated|client\\.erased|measure\\.changed|vacancy\\.filled))*$",
        example = "referral.created,referral.status_changed"
    )]
    pub types: Option<String>,
    /// Long poll: when there is no event yet, wait up to this many seconds
    /// (0–30, default 0) and answer as soon as one arrives.
    #[param(value_type = Option<u64>, minimum = 0, maximum = 30)]
    pub wait: Option<String>,
}

impl FeedQuery {
    fn validate(self) -> Result<FeedRequest, ApiError> {
        let mut errors = Vec::new();
        let limit = match self.limit.as_deref() {
            None => DEFAULT_LIMIT,
            Some(v) => v.trim().parse::<u64>().unwrap_or(0),
        };
        if !(1..=MAX_LIMIT).contains(&limit) {
            errors.push(FieldError::new("limit", format!("must be between 1 and {MAX_LIMIT}")));
        }
        let wait = match self.wait.as_deref() {
            None => Some(0),
            Some(v) => v.trim().parse::<u64>().ok().filter(|w| *w <= MAX_WAIT_SECS),
        };
        if wait.is_none() {
            errors.push(FieldError::new("wait", format!("must be between 0 and {MAX_WAIT_SECS} seconds")));
        }
        let types = match self.types.as_deref() {
            None => Vec::new(),
            Some(v) => parse_types(v).unwrap_or_else(|m| {
                errors.push(FieldError::new("types", m));
                Vec::new()
            }),
        };
        if !errors.is_empty() {
            return Err(ApiError::bad_request("Invalid query parameters.").with_errors(errors));
        }
        Ok(FeedRequest { after: self.after, types, limit, wait: Duration::from_secs(wait.unwrap_or(0)) })
    }
}

/// One change: what happened to which resource — never its content.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeEventDto {
    /// The event's id; the `webhook-id` of its webhook deliveries, if any.
    pub id: Uuid,
    #[serde(rename = "type")]
    pub type_: ChangeType,
    /// `referral`, `client`, `measure` or `vacancy`.
    #[schema(pattern = "^(referral|client|measure|vacancy)$", example = "referral")]
    pub resource: String,
    pub resource_id: Uuid,
    /// The resource's status after the change (`deleted` for a deleted measure).
    #[schema(example = "accepted")]
    pub status: Option<String>,
    /// The status before a `referral.status_changed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "requested", nullable = false)]
    pub previous_status: Option<String>,
    /// The resource's path, to fetch it with the caller's own token.
    #[schema(
        format = "uri-reference",
        pattern = "^/api/v1/",
        example = "/api/v1/referrals/0193a000-0000-7000-8000-0000000f0001"
    )]
    pub link: String,
    /// When the change was made (the order of the feed is commit order, not this).
    pub at: DateTime<Utc>,
}

impl ChangeEventDto {
    /// `None` for a type this version does not know (written by a newer
    /// instance during a rolling update): left out rather than mislabelled.
    fn from_row(r: FeedRow) -> Option<Self> {
        let kind = ChangeType::parse(&r.event_type)?;
        Some(Self {
            id: r.id,
            type_: kind,
            link: format!("/api/v1/{}/{}", kind.collection(), r.resource_id),
            resource: r.resource,
            resource_id: r.resource_id,
            status: r.status,
            previous_status: r.previous_status,
            at: r.at,
        })
    }
}

/// One answer of the change feed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeFeedPage {
    /// Oldest first, in commit order.
    pub items: Vec<ChangeEventDto>,
    /// Always present: pass it as `after` next time, also after an empty answer.
    #[schema(
        example = "eyJvIjoiY29tbWl0IiwiayI6WyIwIiwiMTIiXSwicyI6Ii9hcGkvdjEvZXZlbnRzP3R5cGVzPSJ9.q5G1pYz8mX3v0Ue2bH7rKg"
    )]
    pub next_cursor: String,
}

/// The change feed
///
/// Every change the caller may see — referrals created and changed (expiry
/// included), clients created, updated and erased (ids only), measures
/// changed (capacity, seats, status, deletion), vacancies filled — in
/// **commit order**, each exactly once. Resume from any `next_cursor`: a
/// position, once passed, can never be filled by a transaction committing
/// later. Visibility follows the resources: the office sees everything, a
/// job centre its referrals and the clients it created or referred, a
/// provider the referrals into its measures, an employer those to its
/// vacancies; measure changes everybody. No personal data: ids, types,
/// statuses, timestamps and links. With `wait=N` an empty feed answers as
/// soon as an event arrives (within about a second), else after `N` seconds
/// with no items and the same position. Webhook deliveries carry the same
/// event id as `webhook-id`.
#[utoipa::path(
    tag = "events",
    params(FeedQuery),
    responses((status = 200, description = "The next events (possibly none) and where to continue", body = ChangeFeedPage)),
)]
#[get("/events")]
pub async fn list_events(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<FeedQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(&LIST)?;
    let req = query.into_inner().validate()?;
    let page = change_feed::read(&state.db, &state.cursors, &user, &req).await?;
    Ok(HttpResponse::Ok().json(ChangeFeedPage {
        items: page.items.into_iter().filter_map(ChangeEventDto::from_row).collect(),
        next_cursor: page.next_cursor,
    }))
}
