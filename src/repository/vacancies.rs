//! Queries on `vacancies`.
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::tags;
use crate::{
    domain::{employers::VacancyFields, ids::now},
    entities::vacancy::{ActiveModel, Column, Entity, Model},
};

fn active(f: &VacancyFields) -> ActiveModel {
    ActiveModel {
        kind: Set(f.kind.as_str().to_owned()),
        title: Set(f.title.clone()),
        occupation_code: Set(f.occupation_code.clone()),
        description: Set(f.description.clone()),
        hours_per_week: Set(f.hours_per_week),
        start_date: Set(f.start_date),
        positions: Set(f.positions),
        min_education_level: Set(f.min_education_level.map(|e| e.as_str().to_owned())),
        languages: Set(tags::join(&f.languages)),
        district: Set(f.district.clone()),
        status: Set(f.status.as_str().to_owned()),
        ..Default::default()
    }
}

pub async fn insert(
    db: &impl ConnectionTrait,
    id: Uuid,
    employer_id: Uuid,
    fields: &VacancyFields,
) -> Result<Model, DbErr> {
    let at = now();
    let mut model = active(fields);
    model.id = Set(id);
    model.employer_id = Set(employer_id);
    model.positions_filled = Set(0);
    model.created_at = Set(at);
    model.updated_at = Set(at);
    model.version = Set(1);
    model.insert(db).await
}

pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).one(db).await
}

#[derive(Debug, Default)]
pub struct VacancyFilter {
    pub kind: Option<String>,
    /// KldB prefix: `293` finds the whole group 293.
    pub occupation_code: Option<String>,
    pub district: Option<String>,
    pub status: Option<String>,
    pub employer_id: Option<Uuid>,
    /// Only the vacancies of this employer or open ones (a caller that is
    /// both an employer and a job centre).
    pub own_or_open: Option<Uuid>,
}

pub async fn list(
    db: &impl ConnectionTrait,
    f: &VacancyFilter,
    after: Option<Uuid>,
    newest_first: bool,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let mut select = Entity::find();
    if let Some(v) = &f.kind {
        select = select.filter(Column::Kind.eq(v.clone()));
    }
    if let Some(v) = &f.occupation_code {
        select = select.filter(tags::starts_with(Column::OccupationCode, v));
    }
    if let Some(v) = &f.district {
        select = select.filter(Column::District.eq(v.clone()));
    }
    if let Some(v) = &f.status {
        select = select.filter(Column::Status.eq(v.clone()));
    }
    if let Some(v) = f.employer_id {
        select = select.filter(Column::EmployerId.eq(v));
    }
    if let Some(own) = f.own_or_open {
        select = select.filter(
            sea_orm::Condition::any()
                .add(Column::EmployerId.eq(own))
                .add(Column::Status.eq(crate::domain::codes::VacancyStatus::Open.as_str())),
        );
    }
    super::keyset(db, select, Column::Id, after, newest_first, limit).await
}

pub async fn update(
    db: &impl ConnectionTrait,
    id: Uuid,
    version: i32,
    fields: &VacancyFields,
) -> Result<Option<Model>, DbErr> {
    let mut model = active(fields);
    model.updated_at = Set(now());
    model.version = Set(version + 1);
    super::update_versioned(db, model, Column::Id, Column::Version, id, version).await
}

pub async fn delete(db: &impl ConnectionTrait, id: Uuid, version: i32) -> Result<bool, DbErr> {
    super::delete_versioned::<Entity, _>(db, Column::Id, Column::Version, id, version).await
}

/// Every open vacancy (matching ranks them in memory).
pub async fn open(db: &impl ConnectionTrait) -> Result<Vec<Model>, DbErr> {
    Entity::find().filter(Column::Status.eq(crate::domain::codes::VacancyStatus::Open.as_str())).all(db).await
}
