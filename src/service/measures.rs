//! Measures: providers publish their own; everybody may browse.
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::{cursor::CursorCodec, paging};
use crate::{
    auth::{Principal, Role},
    domain::{ids::new_id, measures::MeasureFields},
    entities::measure::Model,
    error::{ApiError, FieldError, Problem},
    http::IfMatch,
    repository::{self, Page, measures::MeasureFilter},
    routes::common::PageRequest,
};

fn not_found() -> ApiError {
    ApiError::not_found("Measure")
}

/// Office staff may publish for any provider, a provider only for itself.
fn may_publish_for(principal: &Principal, provider_id: Uuid) -> bool {
    principal.is_office() || principal.acts_for(Role::Provider, &provider_id.to_string())
}

/// Rules that need the database: the provider exists, the number is free.
async fn check(db: &impl ConnectionTrait, fields: &MeasureFields, own_id: Option<Uuid>) -> Result<(), ApiError> {
    if repository::providers::find(db, fields.provider_id).await?.is_none() {
        return Err(ApiError::validation(vec![FieldError::new("provider_id", "names no provider")]));
    }
    if let Some(number) = &fields.measure_number
        && let Some(existing) = repository::measures::id_by_number(db, number).await?
        && Some(existing) != own_id
    {
        return Err(duplicate_number(existing));
    }
    Ok(())
}

/// A capacity below the seats already taken would overbook the measure: a
/// conflict with its current state (`409`), which the provider resolves by
/// cancelling or failing referrals first — not an invalid value (`422`).
fn capacity_below_seats(capacity: i32, seats_taken: i32) -> ApiError {
    ApiError::new(
        Problem::CapacityBelowSeatsTaken,
        format!("The capacity cannot be lowered to {capacity}: {seats_taken} seats are taken."),
    )
    .with_extension("seats_taken", seats_taken)
}

fn duplicate_number(existing: Uuid) -> ApiError {
    ApiError::new(Problem::Conflict, format!("Another measure already has this measure_number: {existing}."))
        .with_extension("existing_id", existing.to_string())
}

fn on_unique(fields: &MeasureFields) -> impl FnOnce(&str) -> Option<ApiError> + '_ {
    move |_| {
        fields
            .measure_number
            .as_ref()
            .map(|_| ApiError::new(Problem::Conflict, "Another measure already has this measure_number."))
    }
}

pub async fn create(
    db: &impl ConnectionTrait,
    principal: &Principal,
    fields: &MeasureFields,
) -> Result<Model, ApiError> {
    if !may_publish_for(principal, fields.provider_id) {
        return Err(ApiError::forbidden(
            "A provider may only create measures of its own organisation (provider_id = org).",
        ));
    }
    check(db, fields, None).await?;
    let model = repository::measures::insert(db, new_id(), fields)
        .await
        .map_err(|e| repository::constraint(e, on_unique(fields), |_| None))?;
    super::webhooks::measure_changed(db, &model, false).await?;
    Ok(model)
}

pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<Model, ApiError> {
    repository::measures::find(db, id).await?.ok_or_else(not_found)
}

pub async fn list(
    db: &impl ConnectionTrait,
    cursors: &CursorCodec,
    filter: &MeasureFilter,
    page: &PageRequest,
) -> Result<Page<Model>, ApiError> {
    let after = paging::start(cursors, page)?;
    let rows = repository::measures::list(db, filter, after, paging::newest_first(page), page.limit).await?;
    Ok(paging::finish(cursors, page, rows, |m| m.id))
}

/// A measure the caller may change; another provider's reads as `404`.
pub async fn get_for_change(db: &impl ConnectionTrait, principal: &Principal, id: Uuid) -> Result<Model, ApiError> {
    let model = get(db, id).await?;
    if may_publish_for(principal, model.provider_id) { Ok(model) } else { Err(not_found()) }
}

pub async fn update(
    db: &impl ConnectionTrait,
    principal: &Principal,
    current: &Model,
    if_match: &IfMatch,
    fields: &MeasureFields,
) -> Result<Model, ApiError> {
    if_match.check(current.version)?;
    if !may_publish_for(principal, fields.provider_id) {
        return Err(ApiError::forbidden("A provider may not hand a measure to another provider."));
    }
    if fields.capacity < current.seats_taken {
        return Err(capacity_below_seats(fields.capacity, current.seats_taken));
    }
    check(db, fields, Some(current.id)).await?;
    let kind_changed = fields.kind.as_str() != current.kind;
    if kind_changed {
        repository::demand::lock_measure(db, current.id).await?;
    }
    let Some(model) = repository::measures::update(db, current.id, current.version, fields)
        .await
        .map_err(|e| repository::constraint(e, on_unique(fields), |_| None))?
    else {
        // The conditional update refused: an accept took a seat the new
        // capacity lacks (→ 409), or the measure changed otherwise (→ 412).
        return Err(match repository::measures::find(db, current.id).await? {
            Some(now) if now.seats_taken > fields.capacity => capacity_below_seats(fields.capacity, now.seats_taken),
            Some(_) => ApiError::stale("measure"),
            None => not_found(),
        });
    };
    if kind_changed {
        // The demand statistics count active referrals (and their clients) by their measure's kind.
        let clients = repository::demand::clients_in_measure(db, current.id).await?;
        repository::demand::refresh_all(db, clients).await?;
    }
    super::webhooks::measure_changed(db, &model, false).await?;
    Ok(model)
}

pub async fn delete(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: Uuid,
    if_match: &IfMatch,
) -> Result<(), ApiError> {
    let current = get_for_change(db, principal, id).await?;
    if_match.check(current.version)?;
    let deleted = repository::measures::delete(db, id, current.version).await.map_err(|e| {
        repository::constraint(
            e,
            |_| None,
            |_| Some(ApiError::new(Problem::InUse, "The measure has referrals; close it (status closed) instead.")),
        )
    })?;
    if !deleted {
        return Err(ApiError::stale("measure"));
    }
    super::webhooks::measure_changed(db, &current, true).await
}
