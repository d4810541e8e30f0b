//! Clients: who sees which, duplicates, erasure, the export.
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::{change_feed, cursor::CursorCodec, paging};
use crate::{
    auth::Principal,
    domain::{
        audit::{AuditContext, action},
        changes::ChangeType,
        clients::{ClientFields, ConsultationFields},
        codes::ClientStatus,
        ids::new_id,
    },
    entities::{client::Model, consultation},
    error::{ApiError, Problem},
    http::IfMatch,
    repository::{
        self, Page,
        audit_writer::AuditWriter,
        clients::{ClientFilter, ClientScope},
        consultations::Subject,
        hot_pg::HotPg,
    },
    routes::common::PageRequest,
};

const WHAT: &str = "Client";

/// The clients `principal` may see: office staff all, a job centre those it
/// created or referred. Other roles never get here (their access rule stops them).
pub fn scope_for(principal: &Principal) -> Result<ClientScope, ApiError> {
    if principal.is_office() {
        return Ok(ClientScope::All);
    }
    match principal.jobcenter_org() {
        Some(org) => Ok(ClientScope::Org(org.to_owned())),
        None => Err(ApiError::forbidden("Only office staff and job centres may access clients.")),
    }
}

fn gone() -> ApiError {
    ApiError::new(Problem::Gone, "The client's personal data was erased (GDPR Art. 17).")
}

fn duplicate(existing: Uuid) -> ApiError {
    ApiError::new(
        Problem::DuplicateExternalId,
        format!("Your organisation already has a client with this external_id: {existing}."),
    )
    .with_extension("existing_id", existing.to_string())
}

pub async fn create(
    db: &impl ConnectionTrait,
    audit: &AuditContext,
    principal: &Principal,
    fields: &ClientFields,
) -> Result<Model, ApiError> {
    let org = principal.org_or_office();
    if let Some(ext) = &fields.external_id
        && let Some(existing) = repository::clients::id_by_external_id(db, &org, ext).await?
    {
        return Err(duplicate(existing));
    }
    match repository::clients::insert(db, audit, new_id(), &org, fields).await {
        Ok(model) => {
            repository::demand::refresh(db, model.id).await?;
            change_feed::client_changed(db, ChangeType::ClientCreated, model.id, &model.created_by_org, &model.status)
                .await?;
            Ok(model)
        }
        // Lost a race with a concurrent create of the same external_id.
        Err(e) if repository::is_unique_violation(&e) => {
            let existing = match &fields.external_id {
                Some(ext) => repository::clients::id_by_external_id(db, &org, ext).await?,
                None => None,
            };
            Err(existing.map(duplicate).unwrap_or_else(|| ApiError::from(e)))
        }
        Err(e) => Err(e.into()),
    }
}

/// A visible, not erased client (`404` / `410` otherwise), audited as `action`.
pub async fn get(
    db: &impl ConnectionTrait,
    audit: &AuditContext,
    principal: &Principal,
    id: Uuid,
    action: &'static str,
) -> Result<Model, ApiError> {
    let scope = scope_for(principal)?;
    readable(repository::clients::find(db, audit, action, &scope, id).await?)
}

/// [`get`] outside a transaction (`GET /clients/{id}`): the audit event is
/// group-committed with those of concurrent reads (`AuditWriter`).
pub async fn read(
    db: &impl ConnectionTrait,
    hot: Option<&HotPg>,
    writer: &AuditWriter,
    audit: &AuditContext,
    principal: &Principal,
    id: Uuid,
) -> Result<Model, ApiError> {
    let scope = scope_for(principal)?;
    readable(repository::clients::find_for_read(db, hot, writer, audit, action::CLIENT_READ, &scope, id).await?)
}

/// A found client as an answer: `404` when not visible, `410` when erased.
fn readable(found: Option<Model>) -> Result<Model, ApiError> {
    let model = found.ok_or_else(|| ApiError::not_found(WHAT))?;
    if model.status == ClientStatus::Erased.as_str() {
        return Err(gone());
    }
    Ok(model)
}

pub async fn list(
    db: &impl ConnectionTrait,
    audit: &AuditContext,
    cursors: &CursorCodec,
    principal: &Principal,
    filter: &ClientFilter,
    page: &PageRequest,
) -> Result<Page<Model>, ApiError> {
    let scope = scope_for(principal)?;
    let after = paging::start(cursors, page)?;
    let rows =
        repository::clients::list(db, audit, &scope, filter, after, paging::newest_first(page), page.limit).await?;
    Ok(paging::finish(cursors, page, rows, |m| m.id))
}

/// Changes `current`, which the caller read with [`get`] under
/// `client.update` in the same transaction (that read is the change's audit event).
pub async fn update(
    db: &impl ConnectionTrait,
    principal: &Principal,
    current: &Model,
    if_match: &IfMatch,
    fields: &ClientFields,
) -> Result<Model, ApiError> {
    if_match.check(current.version)?;
    let org = current.created_by_org.clone();
    if let Some(ext) = &fields.external_id
        && let Some(existing) = repository::clients::id_by_external_id(db, &org, ext).await?
        && existing != current.id
    {
        return Err(duplicate(existing));
    }
    let _ = principal;
    let model = repository::clients::update(db, current.id, current.version, fields)
        .await?
        .ok_or_else(|| ApiError::stale("client"))?;
    // District, target groups, codes or status may have moved the client between cells.
    repository::demand::refresh(db, model.id).await?;
    change_feed::client_changed(db, ChangeType::ClientUpdated, model.id, &model.created_by_org, &model.status).await?;
    Ok(model)
}

/// `404` unless visible, `410` if erased — without reading personal data
/// (so without an audit event of its own).
async fn ensure_present(db: &impl ConnectionTrait, principal: &Principal, id: Uuid) -> Result<(), ApiError> {
    let scope = scope_for(principal)?;
    let status = repository::clients::status_of(db, &scope, id).await?.ok_or_else(|| ApiError::not_found(WHAT))?;
    if status == ClientStatus::Erased.as_str() { Err(gone()) } else { Ok(()) }
}

/// GDPR Art. 17 erasure (admin only): `410` if already erased.
pub async fn erase(
    db: &impl ConnectionTrait,
    audit: &AuditContext,
    principal: &Principal,
    id: Uuid,
) -> Result<(), ApiError> {
    ensure_present(db, principal, id).await?;
    if !repository::clients::erase(db, audit, id).await? {
        return Err(gone());
    }
    // No longer an active client; its referrals count on without its codes.
    repository::demand::refresh(db, id).await?;
    if let Some(creator) = repository::clients::creator_of(db, id).await? {
        change_feed::client_changed(db, ChangeType::ClientErased, id, &creator, ClientStatus::Erased.as_str()).await?;
    }
    // Replayable create responses are copies of the erased data (the path is the one the routes put in `Location`).
    repository::idempotency::erase_responses_under(db, &format!("/api/v1/clients/{id}")).await?;
    // Referral creates and batches embed the client's id and the referral note.
    repository::idempotency::erase_responses_mentioning(db, id).await?;
    Ok(())
}

/// After an erasure has committed: on SQLite, copy the WAL back into the
/// database file and truncate it. Until then the erased values sit in old
/// WAL frames (`secure_delete` only zeroes freed space in the database
/// file). A failed checkpoint (e.g. a long reader) is logged, not answered:
/// the erasure itself is committed, and the next checkpoint completes it.
pub async fn flush_erased(db: &sea_orm::DatabaseConnection) {
    if db.get_database_backend() != sea_orm::DbBackend::Sqlite {
        return;
    }
    if let Err(err) = db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)").await {
        tracing::warn!(error = %err, "WAL checkpoint after an erasure failed; erased values stay in the WAL until the next one");
    }
}

pub async fn add_consultation(
    db: &impl ConnectionTrait,
    audit: &AuditContext,
    principal: &Principal,
    client_id: Uuid,
    fields: &ConsultationFields,
) -> Result<consultation::Model, ApiError> {
    ensure_present(db, principal, client_id).await?;
    Ok(repository::consultations::insert(db, audit, Subject::Client(client_id), &principal.sub, fields).await?)
}

pub async fn consultations(
    db: &impl ConnectionTrait,
    audit: &AuditContext,
    cursors: &CursorCodec,
    principal: &Principal,
    client_id: Uuid,
    page: &PageRequest,
) -> Result<Page<consultation::Model>, ApiError> {
    ensure_present(db, principal, client_id).await?;
    let after = paging::start(cursors, page)?;
    let rows = repository::consultations::list(
        db,
        audit,
        Subject::Client(client_id),
        after,
        paging::newest_first(page),
        page.limit,
    )
    .await?;
    Ok(paging::finish(cursors, page, rows, |m| m.id))
}

/// What the Art. 15 export holds, read in one go (one audit event: `client.export`).
pub struct ExportData {
    pub client: Model,
    pub consultations: Vec<consultation::Model>,
    pub audit_events: Vec<crate::entities::audit_event::Model>,
    pub referrals: Vec<(crate::entities::referral::Model, Vec<crate::entities::referral_event::Model>)>,
    pub funding_applications: Vec<crate::entities::funding_application::Model>,
}

pub async fn export(
    db: &impl ConnectionTrait,
    audit: &AuditContext,
    principal: &Principal,
    id: Uuid,
) -> Result<ExportData, ApiError> {
    let client = get(db, audit, principal, id, action::CLIENT_EXPORT).await?;
    let consultations = repository::consultations::all_for(db, Subject::Client(id)).await?;
    let audit_events = repository::audit::for_client(db, id).await?;
    let referrals = repository::referrals::of_client(db, id).await?;
    let filter = repository::funding::ApplicationFilter { applicant_id: Some(id), ..Default::default() };
    let funding_applications = repository::funding::list_applications(db, &filter, None, false, 10_000).await?;
    Ok(ExportData { client, consultations, audit_events, referrals, funding_applications })
}

pub async fn consultation(
    db: &impl ConnectionTrait,
    audit: &AuditContext,
    principal: &Principal,
    client_id: Uuid,
    id: Uuid,
) -> Result<consultation::Model, ApiError> {
    ensure_present(db, principal, client_id).await?;
    repository::consultations::find(db, audit, Subject::Client(client_id), id)
        .await?
        .ok_or_else(|| ApiError::not_found("Consultation"))
}

/// An idempotent create answered from the stored response shows the client's
/// data again: that is a read, and is audited like one.
pub async fn audit_replay(
    db: &impl ConnectionTrait,
    audit: &AuditContext,
    response: &actix_web::HttpResponse,
    client_id: Option<Uuid>,
) -> Result<(), ApiError> {
    let replayed = response.headers().contains_key(super::idempotency::REPLAYED_HEADER);
    let client_id = client_id.or_else(|| {
        response
            .headers()
            .get(actix_web::http::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.rsplit('/').next())
            .and_then(|id| Uuid::parse_str(id).ok())
    });
    if replayed && let Some(client_id) = client_id {
        let entry = crate::domain::audit::AuditEntry {
            action: action::REPLAY,
            resource: "client",
            resource_id: Some(client_id),
            client_id: Some(client_id),
        };
        repository::audit::record(db, audit, &[entry]).await?;
    }
    Ok(())
}
