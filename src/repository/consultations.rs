//! Counselling log of clients (personal data: audited) and employers.
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::audit;
use crate::{
    domain::{
        audit::{AuditContext, AuditEntry, action},
        clients::ConsultationFields,
        ids::{new_id, now},
    },
    entities::consultation::{ActiveModel, Column, Entity, Model},
};

/// Whose counselling log.
#[derive(Debug, Clone, Copy)]
pub enum Subject {
    Client(Uuid),
    Employer(Uuid),
}

impl Subject {
    fn condition(self) -> sea_orm::sea_query::SimpleExpr {
        match self {
            Subject::Client(id) => Column::ClientId.eq(id),
            Subject::Employer(id) => Column::EmployerId.eq(id),
        }
    }

    fn audit(self, action: &'static str, resource_id: Option<Uuid>) -> Option<AuditEntry> {
        match self {
            Subject::Client(id) => {
                Some(AuditEntry { action, resource: "consultation", resource_id, client_id: Some(id) })
            }
            Subject::Employer(_) => None,
        }
    }
}

pub async fn insert(
    db: &impl ConnectionTrait,
    audit_ctx: &AuditContext,
    subject: Subject,
    counsellor: &str,
    fields: &ConsultationFields,
) -> Result<Model, DbErr> {
    let at = now();
    let id = new_id();
    let (client_id, employer_id) = match subject {
        Subject::Client(c) => (Some(c), None),
        Subject::Employer(e) => (None, Some(e)),
    };
    let model = ActiveModel {
        id: Set(id),
        client_id: Set(client_id),
        employer_id: Set(employer_id),
        held_on: Set(fields.held_on),
        topic: Set(fields.topic.as_str().to_owned()),
        duration_minutes: Set(fields.duration_minutes),
        notes: Set(fields.notes.clone()),
        follow_up_on: Set(fields.follow_up_on),
        counsellor: Set(counsellor.to_owned()),
        created_at: Set(at),
        updated_at: Set(at),
        version: Set(1),
    }
    .insert(db)
    .await?;
    if let Some(entry) = subject.audit(action::CONSULTATION_CREATE, Some(id)) {
        audit::record(db, audit_ctx, &[entry]).await?;
    }
    Ok(model)
}

pub async fn list(
    db: &impl ConnectionTrait,
    audit_ctx: &AuditContext,
    subject: Subject,
    after: Option<Uuid>,
    newest_first: bool,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let rows =
        super::keyset(db, Entity::find().filter(subject.condition()), Column::Id, after, newest_first, limit).await?;
    if let Some(entry) = subject.audit(action::CONSULTATION_LIST, None) {
        audit::record(db, audit_ctx, &[entry]).await?;
    }
    Ok(rows)
}

/// All entries of a subject, oldest first (for the export; the caller audits).
pub async fn all_for(db: &impl ConnectionTrait, subject: Subject) -> Result<Vec<Model>, DbErr> {
    use sea_orm::QueryOrder;
    Entity::find().filter(subject.condition()).order_by_asc(Column::Id).all(db).await
}

/// One entry of a subject's log; a client's is audited as `consultation.read`.
pub async fn find(
    db: &impl ConnectionTrait,
    audit_ctx: &AuditContext,
    subject: Subject,
    id: Uuid,
) -> Result<Option<Model>, DbErr> {
    let found = Entity::find_by_id(id).filter(subject.condition()).one(db).await?;
    if found.is_some()
        && let Some(entry) = subject.audit(action::CONSULTATION_READ, Some(id))
    {
        audit::record(db, audit_ctx, &[entry]).await?;
    }
    Ok(found)
}
