//! Funding programmes and applications.
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::tags;
use crate::{
    domain::ids::{new_id, now},
    entities::{funding_application as application, funding_programme as programme},
};

/// A programme's writable fields.
#[derive(Debug, Clone)]
pub struct ProgrammeFields {
    pub name: String,
    pub funder: String,
    pub legal_basis: Option<String>,
    pub target_groups: Vec<String>,
    pub eligible_applicants: Vec<String>,
    pub max_amount_cents: Option<i64>,
    pub deadline: Option<chrono::NaiveDate>,
    pub url: Option<String>,
}

fn programme_active(f: &ProgrammeFields) -> programme::ActiveModel {
    programme::ActiveModel {
        name: Set(f.name.clone()),
        funder: Set(f.funder.clone()),
        legal_basis: Set(f.legal_basis.clone()),
        target_groups: Set(tags::join(&f.target_groups)),
        eligible_applicants: Set(tags::join(&f.eligible_applicants)),
        max_amount_cents: Set(f.max_amount_cents),
        deadline: Set(f.deadline),
        url: Set(f.url.clone()),
        ..Default::default()
    }
}

pub async fn insert_programme(db: &impl ConnectionTrait, f: &ProgrammeFields) -> Result<programme::Model, DbErr> {
    let at = now();
    let mut m = programme_active(f);
    m.id = Set(new_id());
    m.created_at = Set(at);
    m.updated_at = Set(at);
    m.version = Set(1);
    m.insert(db).await
}

pub async fn find_programme(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<programme::Model>, DbErr> {
    programme::Entity::find_by_id(id).one(db).await
}

pub async fn list_programmes(
    db: &impl ConnectionTrait,
    eligible: Option<&str>,
    target_group: Option<&str>,
    after: Option<Uuid>,
    newest_first: bool,
    limit: u64,
) -> Result<Vec<programme::Model>, DbErr> {
    let mut select = programme::Entity::find();
    if let Some(e) = eligible {
        select = select.filter(tags::contains(programme::Column::EligibleApplicants, e));
    }
    if let Some(t) = target_group {
        select = select.filter(tags::contains(programme::Column::TargetGroups, t));
    }
    super::keyset(db, select, programme::Column::Id, after, newest_first, limit).await
}

pub async fn update_programme(
    db: &impl ConnectionTrait,
    current: &programme::Model,
    f: &ProgrammeFields,
) -> Result<Option<programme::Model>, DbErr> {
    let mut m = programme_active(f);
    m.updated_at = Set(now());
    m.version = Set(current.version + 1);
    super::update_versioned(db, m, programme::Column::Id, programme::Column::Version, current.id, current.version).await
}

pub async fn delete_programme(db: &impl ConnectionTrait, current: &programme::Model) -> Result<bool, DbErr> {
    super::delete_versioned::<programme::Entity, _>(
        db,
        programme::Column::Id,
        programme::Column::Version,
        current.id,
        current.version,
    )
    .await
}

/// An application's writable fields.
#[derive(Debug, Clone)]
pub struct ApplicationFields {
    pub programme_id: Uuid,
    pub applicant_kind: String,
    pub applicant_id: Uuid,
    pub amount_requested_cents: i64,
    pub amount_granted_cents: Option<i64>,
    pub status: String,
    pub submitted_on: Option<chrono::NaiveDate>,
    pub decided_on: Option<chrono::NaiveDate>,
    pub note: Option<String>,
}

fn application_active(f: &ApplicationFields) -> application::ActiveModel {
    application::ActiveModel {
        programme_id: Set(f.programme_id),
        applicant_kind: Set(f.applicant_kind.clone()),
        applicant_id: Set(f.applicant_id),
        amount_requested_cents: Set(f.amount_requested_cents),
        amount_granted_cents: Set(f.amount_granted_cents),
        status: Set(f.status.clone()),
        submitted_on: Set(f.submitted_on),
        decided_on: Set(f.decided_on),
        note: Set(f.note.clone()),
        ..Default::default()
    }
}

pub async fn insert_application(db: &impl ConnectionTrait, f: &ApplicationFields) -> Result<application::Model, DbErr> {
    let at = now();
    let mut m = application_active(f);
    m.id = Set(new_id());
    m.created_at = Set(at);
    m.updated_at = Set(at);
    m.version = Set(1);
    m.insert(db).await
}

pub async fn find_application(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<application::Model>, DbErr> {
    application::Entity::find_by_id(id).one(db).await
}

#[derive(Debug, Default)]
pub struct ApplicationFilter {
    pub programme_id: Option<Uuid>,
    pub applicant_id: Option<Uuid>,
    pub status: Option<String>,
}

pub async fn list_applications(
    db: &impl ConnectionTrait,
    f: &ApplicationFilter,
    after: Option<Uuid>,
    newest_first: bool,
    limit: u64,
) -> Result<Vec<application::Model>, DbErr> {
    let mut select = application::Entity::find();
    if let Some(v) = f.programme_id {
        select = select.filter(application::Column::ProgrammeId.eq(v));
    }
    if let Some(v) = f.applicant_id {
        select = select.filter(application::Column::ApplicantId.eq(v));
    }
    if let Some(v) = &f.status {
        select = select.filter(application::Column::Status.eq(v.clone()));
    }
    super::keyset(db, select, application::Column::Id, after, newest_first, limit).await
}

pub async fn update_application(
    db: &impl ConnectionTrait,
    current: &application::Model,
    f: &ApplicationFields,
) -> Result<Option<application::Model>, DbErr> {
    let mut m = application_active(f);
    m.updated_at = Set(now());
    m.version = Set(current.version + 1);
    super::update_versioned(db, m, application::Column::Id, application::Column::Version, current.id, current.version)
        .await
}

pub async fn delete_application(db: &impl ConnectionTrait, current: &application::Model) -> Result<bool, DbErr> {
    super::delete_versioned::<application::Entity, _>(
        db,
        application::Column::Id,
        application::Column::Version,
        current.id,
        current.version,
    )
    .await
}

/// Every application (the funding statistics count them in memory).
pub async fn all_applications(db: &impl ConnectionTrait) -> Result<Vec<application::Model>, DbErr> {
    application::Entity::find().all(db).await
}

/// GDPR Art. 17: destroys the `note` of a client's funding applications
/// (bumping `version` and `updated_at`); amounts and status stay, because
/// the funding statistics count them and they say nothing about an anonymous person.
pub async fn erase_notes_of_client(
    db: &impl ConnectionTrait,
    client_id: Uuid,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), DbErr> {
    use sea_orm::{ExprTrait, sea_query::Expr};
    application::Entity::update_many()
        .col_expr(application::Column::Note, Expr::value(Option::<String>::None))
        .col_expr(application::Column::UpdatedAt, Expr::value(at))
        .col_expr(application::Column::Version, Expr::col(application::Column::Version).add(1))
        .filter(application::Column::ApplicantKind.eq("client"))
        .filter(application::Column::ApplicantId.eq(client_id))
        .exec(db)
        .await?;
    Ok(())
}
