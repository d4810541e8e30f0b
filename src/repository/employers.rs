//! Queries on `employers`.
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::{json_of, tags};
use crate::{
    domain::{employers::EmployerFields, ids::now},
    entities::employer::{ActiveModel, Column, Entity, Model},
};

fn active(f: &EmployerFields) -> ActiveModel {
    ActiveModel {
        name: Set(f.name.clone()),
        legal_form: Set(f.legal_form.clone()),
        sector: Set(f.sector.clone()),
        address: Set(json_of(&f.address)),
        district: Set(f.district.clone()),
        employee_count: Set(f.employee_count),
        settlement_status: Set(f.settlement_status.as_str().to_owned()),
        is_training_company: Set(f.is_training_company),
        needs: Set(tags::join(f.needs.iter().map(|n| n.as_str()))),
        contact: Set(json_of(&f.contact)),
        ..Default::default()
    }
}

pub async fn insert(db: &impl ConnectionTrait, id: Uuid, fields: &EmployerFields) -> Result<Model, DbErr> {
    let at = now();
    let mut model = active(fields);
    model.id = Set(id);
    model.created_at = Set(at);
    model.updated_at = Set(at);
    model.version = Set(1);
    model.insert(db).await
}

pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).one(db).await
}

#[derive(Debug, Default)]
pub struct EmployerFilter {
    pub district: Option<String>,
    pub settlement_status: Option<String>,
    pub need: Option<String>,
    pub is_training_company: Option<bool>,
    pub q: Option<String>,
    /// Restricts to one employer (an employer principal lists only itself).
    pub only: Option<Uuid>,
}

pub async fn list(
    db: &impl ConnectionTrait,
    f: &EmployerFilter,
    after: Option<Uuid>,
    newest_first: bool,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let mut select = Entity::find();
    if let Some(v) = f.only {
        select = select.filter(Column::Id.eq(v));
    }
    if let Some(v) = &f.district {
        select = select.filter(Column::District.eq(v.clone()));
    }
    if let Some(v) = &f.settlement_status {
        select = select.filter(Column::SettlementStatus.eq(v.clone()));
    }
    if let Some(v) = &f.need {
        select = select.filter(tags::contains(Column::Needs, v));
    }
    if let Some(v) = f.is_training_company {
        select = select.filter(Column::IsTrainingCompany.eq(v));
    }
    if let Some(q) = &f.q {
        select = select.filter(super::name_contains(db.get_database_backend(), Column::Name, q));
    }
    super::keyset(db, select, Column::Id, after, newest_first, limit).await
}

pub async fn update(
    db: &impl ConnectionTrait,
    id: Uuid,
    version: i32,
    fields: &EmployerFields,
) -> Result<Option<Model>, DbErr> {
    let mut model = active(fields);
    model.updated_at = Set(now());
    model.version = Set(version + 1);
    super::update_versioned(db, model, Column::Id, Column::Version, id, version).await
}

pub async fn delete(db: &impl ConnectionTrait, id: Uuid, version: i32) -> Result<bool, DbErr> {
    super::delete_versioned::<Entity, _>(db, Column::Id, Column::Version, id, version).await
}
