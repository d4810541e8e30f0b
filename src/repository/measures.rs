//! Queries on `measures`.
use chrono::NaiveDate;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, ExprTrait, QueryFilter,
    sea_query::Expr,
};
use uuid::Uuid;

use super::{json_of, tags};
use crate::{
    domain::{ids::now, measures::MeasureFields},
    entities::measure::{ActiveModel, Column, Entity, Model},
};

fn active(f: &MeasureFields) -> ActiveModel {
    ActiveModel {
        provider_id: Set(f.provider_id),
        title: Set(f.title.clone()),
        description: Set(f.description.clone()),
        kind: Set(f.kind.as_str().to_owned()),
        measure_number: Set(f.measure_number.clone()),
        funding: Set(f.funding.as_str().to_owned()),
        target_groups: Set(tags::join(f.target_groups.iter().map(|t| t.as_str()))),
        occupation_codes: Set(tags::join(&f.occupation_codes)),
        district: Set(f.district.clone()),
        address: Set(json_of(&f.address)),
        start_date: Set(f.start_date),
        end_date: Set(f.end_date),
        hours_per_week: Set(f.hours_per_week),
        capacity: Set(f.capacity),
        min_age: Set(f.min_age),
        max_age: Set(f.max_age),
        status: Set(f.status.as_str().to_owned()),
        ..Default::default()
    }
}

pub async fn insert(db: &impl ConnectionTrait, id: Uuid, fields: &MeasureFields) -> Result<Model, DbErr> {
    let at = now();
    let mut model = active(fields);
    model.id = Set(id);
    model.seats_taken = Set(0);
    model.waitlisted = Set(0);
    model.created_at = Set(at);
    model.updated_at = Set(at);
    model.version = Set(1);
    model.insert(db).await
}

pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).one(db).await
}

pub async fn id_by_number(db: &impl ConnectionTrait, number: &str) -> Result<Option<Uuid>, DbErr> {
    use sea_orm::QuerySelect;
    Entity::find().select_only().column(Column::Id).filter(Column::MeasureNumber.eq(number)).into_tuple().one(db).await
}

#[derive(Debug, Default)]
pub struct MeasureFilter {
    pub kind: Option<String>,
    pub target_group: Option<String>,
    pub district: Option<String>,
    pub provider_id: Option<Uuid>,
    pub status: Option<String>,
    pub funding: Option<String>,
    pub has_free_seats: Option<bool>,
    pub starts_after: Option<NaiveDate>,
    pub occupation_code: Option<String>,
    pub q: Option<String>,
}

pub async fn list(
    db: &impl ConnectionTrait,
    f: &MeasureFilter,
    after: Option<Uuid>,
    newest_first: bool,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let mut select = Entity::find();
    if let Some(v) = &f.kind {
        select = select.filter(Column::Kind.eq(v.clone()));
    }
    if let Some(v) = &f.target_group {
        select = select.filter(tags::contains(Column::TargetGroups, v));
    }
    if let Some(v) = &f.district {
        select = select.filter(Column::District.eq(v.clone()));
    }
    if let Some(v) = f.provider_id {
        select = select.filter(Column::ProviderId.eq(v));
    }
    if let Some(v) = &f.status {
        select = select.filter(Column::Status.eq(v.clone()));
    }
    if let Some(v) = &f.funding {
        select = select.filter(Column::Funding.eq(v.clone()));
    }
    match f.has_free_seats {
        Some(true) => select = select.filter(Expr::col(Column::SeatsTaken).lt(Expr::col(Column::Capacity))),
        Some(false) => select = select.filter(Expr::col(Column::SeatsTaken).gte(Expr::col(Column::Capacity))),
        None => {}
    }
    if let Some(v) = f.starts_after {
        select = select.filter(Column::StartDate.gt(v));
    }
    if let Some(v) = &f.occupation_code {
        select = select.filter(tags::any_starts_with(Column::OccupationCodes, v));
    }
    if let Some(q) = &f.q {
        select = select.filter(super::name_contains(db.get_database_backend(), Column::Title, q));
    }
    super::keyset(db, select, Column::Id, after, newest_first, limit).await
}

/// Writes `fields` if the row is still at `version` **and** its seats taken
/// still fit the new capacity; `None` otherwise (the caller reads the row
/// again to tell which). The capacity check is in the statement, not before
/// it: an accept committing between a check and the write would otherwise
/// overbook. On PostgreSQL a concurrent accept holds the row lock and the
/// `WHERE` is re-evaluated on the row it committed; SQLite has one writer.
pub async fn update(
    db: &impl ConnectionTrait,
    id: Uuid,
    version: i32,
    fields: &MeasureFields,
) -> Result<Option<Model>, DbErr> {
    let mut model = active(fields);
    model.updated_at = Set(now());
    model.version = Set(version + 1);
    let result = Entity::update_many()
        .set(model)
        .filter(Column::Id.eq(id))
        .filter(Column::Version.eq(version))
        .filter(Expr::col(Column::SeatsTaken).lte(fields.capacity))
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        return Ok(None);
    }
    find(db, id).await
}

pub async fn delete(db: &impl ConnectionTrait, id: Uuid, version: i32) -> Result<bool, DbErr> {
    super::delete_versioned::<Entity, _>(db, Column::Id, Column::Version, id, version).await
}

/// Every measure (statistics and matching read them whole; there are few).
pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<Model>, DbErr> {
    Entity::find().all(db).await
}
