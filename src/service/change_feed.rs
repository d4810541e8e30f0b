//! The change feed (`GET /api/v1/events`): every change a caller may see,
//! in commit order, exactly once, resumable from any cursor.
//!
//! Writers call [`record`] in the transaction of the change itself — the
//! same row is the event the webhook outbox delivers (`service::webhooks`),
//! so the feed and the webhooks cannot disagree about what happened. Who
//! may read an event is decided when it is written, with the same rules as
//! the resource's own `WHERE` (the office everything; a job centre the
//! referrals it made and the clients it created or referred; a provider the
//! referrals into its measures; an employer those to its vacancies; measures
//! everybody), and stored as tags on the row.
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::cursor::{CursorCodec, Position};
use crate::{
    auth::{OFFICE_ORG, OrgKind, Owner, Principal},
    domain::{
        changes::ChangeType,
        ids::{new_id, now},
    },
    error::{ApiError, Problem},
    repository::{
        self,
        change_feed::{FeedFilter, FeedPosition, FeedRow, NewChange, OFFICE_TAG, PUBLIC_TAG},
    },
};

/// Who may read an event.
pub enum Audience {
    /// Everybody with a token (public catalogue data).
    Public,
    /// The office and these owners.
    Owners(Vec<Owner>),
}

fn tag(owner: &Owner) -> String {
    format!("{}:{}", owner.kind.as_str(), owner.org)
}

fn audience_tags(audience: &Audience) -> Vec<String> {
    let mut tags = vec![OFFICE_TAG.to_owned()];
    match audience {
        Audience::Public => tags.push(PUBLIC_TAG.to_owned()),
        Audience::Owners(owners) => tags.extend(owners.iter().map(tag)),
    }
    tags.sort();
    tags.dedup();
    tags
}

/// An event as recorded: its id (the webhook-id of its deliveries) and time.
pub struct Recorded {
    pub id: Uuid,
    pub at: DateTime<Utc>,
}

/// Appends an event in the caller's transaction.
pub async fn record(
    db: &impl ConnectionTrait,
    kind: ChangeType,
    resource_id: Uuid,
    status: Option<&str>,
    previous_status: Option<&str>,
    audience: &Audience,
) -> Result<Recorded, ApiError> {
    let recorded = Recorded { id: new_id(), at: now() };
    let tags = audience_tags(audience);
    repository::change_feed::insert(
        db,
        &NewChange {
            id: recorded.id,
            event_type: kind.as_str(),
            resource: kind.resource(),
            resource_id,
            status,
            previous_status,
            audience: &tags,
            at: recorded.at,
        },
    )
    .await?;
    Ok(recorded)
}

/// Who may read a client: the office, the job centre that created it and
/// every job centre that referred it (the client list's own `WHERE`).
pub async fn client_audience(db: &impl ConnectionTrait, id: Uuid, created_by_org: &str) -> Result<Audience, ApiError> {
    let mut orgs = repository::referrals::referring_orgs_of_client(db, id).await?;
    orgs.push(created_by_org.to_owned());
    let owners =
        orgs.into_iter().filter(|o| o != OFFICE_ORG).map(|org| Owner { kind: OrgKind::Jobcenter, org }).collect();
    Ok(Audience::Owners(owners))
}

/// Records a client change: its id and status, nothing personal.
pub async fn client_changed(
    db: &impl ConnectionTrait,
    kind: ChangeType,
    id: Uuid,
    created_by_org: &str,
    status: &str,
) -> Result<(), ApiError> {
    let audience = client_audience(db, id, created_by_org).await?;
    record(db, kind, id, Some(status), None, &audience).await.map(|_| ())
}

/// The audience tags `principal` reads with; `None`: everything (the office).
pub fn reader_tags(principal: &Principal) -> Option<Vec<String>> {
    if principal.is_office() {
        return None;
    }
    let mut tags: Vec<String> = principal.owners().iter().map(tag).collect();
    tags.push(PUBLIC_TAG.to_owned());
    Some(tags)
}

const ORDER: &str = "commit";

/// What a feed cursor is bound to: the path and the `types` filter.
fn scope(types: &[ChangeType]) -> String {
    let mut names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
    names.sort_unstable();
    format!("/api/v1/events?types={}", names.join(","))
}

pub struct FeedRequest {
    pub after: Option<String>,
    pub types: Vec<ChangeType>,
    pub limit: u64,
    /// Long-poll: how long to wait for the first event when there is none.
    pub wait: Duration,
}

pub struct FeedPage {
    pub items: Vec<FeedRow>,
    /// Where to continue: after the last item, or where the request started.
    pub next_cursor: String,
}

/// How often a long poll looks again. A quarter second keeps the promise
/// of "within about a second" at one indexed query per waiting caller per
/// tick; the rejected alternative, a notification from the writer, does not
/// reach the pollers of other instances on the same database.
const POLL_EVERY: Duration = Duration::from_millis(250);

pub async fn read(
    db: &impl ConnectionTrait,
    codec: &CursorCodec,
    principal: &Principal,
    req: &FeedRequest,
) -> Result<FeedPage, ApiError> {
    let scope = scope(&req.types);
    let after = match &req.after {
        None => FeedPosition::default(),
        Some(cursor) => {
            let p = codec.decode(cursor, ORDER, &scope)?;
            let invalid = || ApiError::new(Problem::InvalidCursor, "The cursor is invalid.");
            match p.key.as_slice() {
                [txid, seq] => FeedPosition {
                    txid: txid.parse().map_err(|_| invalid())?,
                    seq: seq.parse().map_err(|_| invalid())?,
                },
                _ => return Err(invalid()),
            }
        }
    };
    let tags = reader_tags(principal);
    let types: Vec<String> = req.types.iter().map(|t| t.as_str().to_owned()).collect();
    let filter = FeedFilter { audience: tags.as_deref(), types: &types };
    let deadline = tokio::time::Instant::now() + req.wait;
    let items = loop {
        let items = repository::change_feed::page(db, after, &filter, req.limit).await?;
        if !items.is_empty() || tokio::time::Instant::now() + POLL_EVERY > deadline {
            break items;
        }
        tokio::time::sleep(POLL_EVERY).await;
    };
    let last = items.last().map(FeedRow::position).unwrap_or(after);
    let next_cursor = codec.encode(&Position {
        order: ORDER.to_owned(),
        key: vec![last.txid.to_string(), last.seq.to_string()],
        scope,
    });
    Ok(FeedPage { items, next_cursor })
}
