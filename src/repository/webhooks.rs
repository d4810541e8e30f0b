//! Webhook subscriptions and the delivery outbox.
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, ExprTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::Expr,
};
use uuid::Uuid;

use super::tags;
use crate::{
    auth::Owner,
    domain::ids::{new_id, now},
    entities::{
        webhook::{ActiveModel, Column, Entity, Model},
        webhook_delivery as delivery,
    },
};

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

pub struct NewWebhook<'a> {
    pub owner: &'a Owner,
    pub url: &'a str,
    pub events: &'a [&'a str],
    pub secret: &'a str,
    pub created_by: &'a str,
}

pub async fn insert(db: &impl ConnectionTrait, new: &NewWebhook<'_>) -> Result<Model, DbErr> {
    let at = now();
    ActiveModel {
        id: Set(new_id()),
        org: Set(new.owner.org.clone()),
        owner_kind: Set(new.owner.kind.as_str().to_owned()),
        url: Set(new.url.to_owned()),
        events: Set(tags::join(new.events)),
        secret: Set(new.secret.to_owned()),
        previous_secret: Set(None),
        previous_secret_until: Set(None),
        active: Set(true),
        created_by: Set(new.created_by.to_owned()),
        created_at: Set(at),
        updated_at: Set(at),
        version: Set(1),
    }
    .insert(db)
    .await
}

/// Webhooks owned by any of `owners`: kind and org must both match.
fn owned_by(owners: &[Owner]) -> Condition {
    let mut any = Condition::any();
    for owner in owners {
        any = any.add(
            Condition::all().add(Column::OwnerKind.eq(owner.kind.as_str())).add(Column::Org.eq(owner.org.clone())),
        );
    }
    if owners.is_empty() {
        // No owner: nothing (an empty `any` would match everything).
        any = any.add(Expr::val(1).eq(0));
    }
    any
}

/// A webhook, if `owners` is `None` (admin) or one of them owns it.
pub async fn find(db: &impl ConnectionTrait, owners: Option<&[Owner]>, id: Uuid) -> Result<Option<Model>, DbErr> {
    let mut select = Entity::find_by_id(id);
    if let Some(owners) = owners {
        select = select.filter(owned_by(owners));
    }
    select.one(db).await
}

pub async fn list(
    db: &impl ConnectionTrait,
    owners: Option<&[Owner]>,
    after: Option<Uuid>,
    newest_first: bool,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let mut select = Entity::find();
    if let Some(owners) = owners {
        select = select.filter(owned_by(owners));
    }
    super::keyset(db, select, Column::Id, after, newest_first, limit).await
}

pub async fn update(
    db: &impl ConnectionTrait,
    current: &Model,
    url: &str,
    events: &[&str],
    active: bool,
) -> Result<Option<Model>, DbErr> {
    let model = ActiveModel {
        url: Set(url.to_owned()),
        events: Set(tags::join(events)),
        active: Set(active),
        updated_at: Set(now()),
        version: Set(current.version + 1),
        ..Default::default()
    };
    super::update_versioned(db, model, Column::Id, Column::Version, current.id, current.version).await
}

/// Replaces the secret; the old one keeps signing until `previous_until`.
pub async fn rotate_secret(
    db: &impl ConnectionTrait,
    current: &Model,
    secret: &str,
    previous_until: DateTime<Utc>,
) -> Result<Option<Model>, DbErr> {
    let model = ActiveModel {
        secret: Set(secret.to_owned()),
        previous_secret: Set(Some(current.secret.clone())),
        previous_secret_until: Set(Some(previous_until)),
        updated_at: Set(now()),
        version: Set(current.version + 1),
        ..Default::default()
    };
    super::update_versioned(db, model, Column::Id, Column::Version, current.id, current.version).await
}

pub async fn delete(db: &impl ConnectionTrait, id: Uuid, version: i32) -> Result<bool, DbErr> {
    super::delete_versioned::<Entity, _>(db, Column::Id, Column::Version, id, version).await
}

/// Active subscriptions to `event` of any of `owners` (`None`: every owner).
pub async fn subscribers(
    db: &impl ConnectionTrait,
    event: &str,
    owners: Option<&[Owner]>,
) -> Result<Vec<Model>, DbErr> {
    let mut select = Entity::find().filter(Column::Active.eq(true)).filter(tags::contains(Column::Events, event));
    if let Some(owners) = owners {
        select = select.filter(owned_by(owners));
    }
    select.all(db).await
}

/// Writes one outbox row per subscriber (in the caller's transaction) for
/// the change-feed event `event_id`, which becomes their `webhook-id`.
pub async fn enqueue(
    db: &impl ConnectionTrait,
    hooks: &[Model],
    event_type: &str,
    event_id: Uuid,
    payload: &str,
) -> Result<(), DbErr> {
    if hooks.is_empty() {
        return Ok(());
    }
    let at = now();
    delivery::Entity::insert_many(hooks.iter().map(|h| delivery::ActiveModel {
        id: Set(new_id()),
        webhook_id: Set(h.id),
        event_type: Set(event_type.to_owned()),
        event_id: Set(event_id),
        payload: Set(payload.to_owned()),
        status: Set(PENDING.to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(at),
        locked_until: Set(None),
        last_status: Set(None),
        last_error: Set(None),
        created_at: Set(at),
        delivered_at: Set(None),
    }))
    .exec_without_returning(db)
    .await
    .map(|_| ())
}

/// `(delivery id, webhook id)` of deliveries due now and not leased by
/// another instance, oldest first, leaving out those of `skip_webhooks`
/// (the webhooks of organisations that already use their fair share).
pub async fn due(
    db: &impl ConnectionTrait,
    at: DateTime<Utc>,
    limit: u64,
    skip_webhooks: &[Uuid],
) -> Result<Vec<(Uuid, Uuid)>, DbErr> {
    let mut select = delivery::Entity::find()
        .select_only()
        .column(delivery::Column::Id)
        .column(delivery::Column::WebhookId)
        .filter(delivery::Column::Status.eq(PENDING))
        .filter(delivery::Column::NextAttemptAt.lte(at))
        .filter(
            Condition::any().add(delivery::Column::LockedUntil.is_null()).add(delivery::Column::LockedUntil.lt(at)),
        );
    if !skip_webhooks.is_empty() {
        select = select.filter(delivery::Column::WebhookId.is_not_in(skip_webhooks.iter().copied()));
    }
    select.order_by_asc(delivery::Column::NextAttemptAt).limit(limit).into_tuple().all(db).await
}

/// The webhooks with these ids (any organisation: for the delivery worker).
pub async fn find_many(db: &impl ConnectionTrait, ids: &[Uuid]) -> Result<Vec<Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Entity::find().filter(Column::Id.is_in(ids.iter().copied())).all(db).await
}

/// Ids of every webhook of these organisations.
pub async fn ids_of_owners(db: &impl ConnectionTrait, owners: &[Owner]) -> Result<Vec<Uuid>, DbErr> {
    if owners.is_empty() {
        return Ok(Vec::new());
    }
    Entity::find().select_only().column(Column::Id).filter(owned_by(owners)).into_tuple().all(db).await
}

/// How many subscriptions (active or not) `owner` has.
pub async fn count_of_owner(db: &impl ConnectionTrait, owner: &Owner) -> Result<u64, DbErr> {
    Entity::find().filter(owned_by(std::slice::from_ref(owner))).count(db).await
}

/// Leases a delivery until `until`; only one of racing instances gets it.
pub async fn lease(
    db: &impl ConnectionTrait,
    id: Uuid,
    at: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Option<delivery::Model>, DbErr> {
    let result = delivery::Entity::update_many()
        .col_expr(delivery::Column::LockedUntil, Expr::value(Some(until)))
        .filter(delivery::Column::Id.eq(id))
        .filter(delivery::Column::Status.eq(PENDING))
        .filter(Condition::any().add(delivery::Column::LockedUntil.is_null()).add(delivery::Column::LockedUntil.lt(at)))
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        return Ok(None);
    }
    delivery::Entity::find_by_id(id).one(db).await
}

/// Records an attempt: delivered, or back to pending at `retry_at`, or failed for good.
pub async fn record_attempt(
    db: &impl ConnectionTrait,
    d: &delivery::Model,
    status: &str,
    http_status: Option<u16>,
    error: Option<&str>,
    retry_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let at = now();
    delivery::Entity::update_many()
        .col_expr(delivery::Column::Status, Expr::value(status))
        .col_expr(delivery::Column::Attempts, Expr::value(d.attempts + 1))
        .col_expr(delivery::Column::LastStatus, Expr::value(http_status.map(i32::from)))
        .col_expr(delivery::Column::LastError, Expr::value(error.map(|e| e.chars().take(500).collect::<String>())))
        .col_expr(delivery::Column::NextAttemptAt, Expr::value(retry_at))
        .col_expr(delivery::Column::LockedUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(delivery::Column::DeliveredAt, Expr::value((status == DELIVERED).then_some(at)))
        .filter(delivery::Column::Id.eq(d.id))
        .exec(db)
        .await
        .map(|_| ())
}

pub async fn deliveries(
    db: &impl ConnectionTrait,
    webhook_id: Uuid,
    after: Option<Uuid>,
    newest_first: bool,
    limit: u64,
) -> Result<Vec<delivery::Model>, DbErr> {
    let select = delivery::Entity::find().filter(delivery::Column::WebhookId.eq(webhook_id));
    super::keyset(db, select, delivery::Column::Id, after, newest_first, limit).await
}

/// Deliveries still to be made (the `/metrics` backlog).
pub async fn backlog(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    delivery::Entity::find().filter(delivery::Column::Status.eq(PENDING)).count(db).await
}
