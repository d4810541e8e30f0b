//! Funding programmes (researched by the office) and applications (the
//! office helps clients, employers and providers apply).
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::{
    domain::{
        audit::{AuditContext, AuditEntry},
        codes::{ApplicantKind, ClientStatus, CodeList, ProviderKind},
    },
    entities::{funding_application, funding_programme},
    error::{ApiError, FieldError, Problem},
    repository::{
        self,
        funding::{ApplicationFields, ProgrammeFields},
    },
};

pub async fn get_programme(db: &impl ConnectionTrait, id: Uuid) -> Result<funding_programme::Model, ApiError> {
    repository::funding::find_programme(db, id).await?.ok_or_else(|| ApiError::not_found("Funding programme"))
}

pub async fn update_programme(
    db: &impl ConnectionTrait,
    current: &funding_programme::Model,
    f: &ProgrammeFields,
) -> Result<funding_programme::Model, ApiError> {
    repository::funding::update_programme(db, current, f).await?.ok_or_else(|| ApiError::stale("funding programme"))
}

pub async fn delete_programme(db: &impl ConnectionTrait, current: &funding_programme::Model) -> Result<(), ApiError> {
    let deleted = repository::funding::delete_programme(db, current).await.map_err(|e| {
        repository::constraint(
            e,
            |_| None,
            |_| Some(ApiError::new(Problem::InUse, "The programme has applications; it cannot be deleted.")),
        )
    })?;
    if deleted { Ok(()) } else { Err(ApiError::stale("funding programme")) }
}

pub async fn get_application(db: &impl ConnectionTrait, id: Uuid) -> Result<funding_application::Model, ApiError> {
    repository::funding::find_application(db, id).await?.ok_or_else(|| ApiError::not_found("Funding application"))
}

/// The rules that need the database: the programme exists and accepts this
/// kind of applicant, and the applicant exists (a client not erased, an
/// association is a provider of kind `association`).
pub async fn check_application(db: &impl ConnectionTrait, f: &ApplicationFields) -> Result<(), ApiError> {
    let invalid = |field: &str, message: &str| ApiError::validation(vec![FieldError::new(field, message)]);
    let programme = repository::funding::find_programme(db, f.programme_id)
        .await?
        .ok_or_else(|| invalid("programme_id", "names no funding programme"))?;
    let eligible = repository::tags::split(&programme.eligible_applicants);
    if !eligible.is_empty() && !eligible.contains(&f.applicant_kind) {
        return Err(invalid("applicant_kind", &format!("the programme accepts only: {}", eligible.join(", "))));
    }
    let exists = match ApplicantKind::parse(&f.applicant_kind) {
        Some(ApplicantKind::Client) => {
            repository::clients::status_of(db, &repository::clients::ClientScope::All, f.applicant_id)
                .await?
                .is_some_and(|s| s != ClientStatus::Erased.as_str())
        }
        Some(ApplicantKind::Employer) => repository::employers::find(db, f.applicant_id).await?.is_some(),
        Some(ApplicantKind::Provider) => repository::providers::find(db, f.applicant_id).await?.is_some(),
        Some(ApplicantKind::Association) => repository::providers::find(db, f.applicant_id)
            .await?
            .is_some_and(|p| p.kind == ProviderKind::Association.as_str()),
        None => false,
    };
    if !exists {
        return Err(invalid("applicant_id", "names no applicant of that kind"));
    }
    Ok(())
}

/// Applications of clients link a person to money: recorded in the audit log.
pub async fn audit_client_applications(
    db: &impl ConnectionTrait,
    audit: &AuditContext,
    action: &'static str,
    applications: &[&funding_application::Model],
) -> Result<(), ApiError> {
    let entries: Vec<AuditEntry> = applications
        .iter()
        .filter(|a| a.applicant_kind == ApplicantKind::Client.as_str())
        .map(|a| AuditEntry {
            action,
            resource: "funding_application",
            resource_id: Some(a.id),
            client_id: Some(a.applicant_id),
        })
        .collect();
    Ok(repository::audit::record(db, audit, &entries).await?)
}

pub async fn update_application(
    db: &impl ConnectionTrait,
    current: &funding_application::Model,
    f: &ApplicationFields,
) -> Result<funding_application::Model, ApiError> {
    check_application(db, f).await?;
    repository::funding::update_application(db, current, f).await?.ok_or_else(|| ApiError::stale("funding application"))
}
