//! Employers and vacancies: who sees which, and how much of it.
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::{cursor::CursorCodec, paging};
use crate::{
    auth::{Principal, Role},
    domain::{
        codes::VacancyStatus,
        employers::{EmployerFields, VacancyFields},
        ids::new_id,
    },
    entities::{employer, vacancy},
    error::{ApiError, Problem},
    http::IfMatch,
    repository::{self, Page, employers::EmployerFilter, vacancies::VacancyFilter},
    routes::common::PageRequest,
};

/// How much of an employer record a caller sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmployerView {
    Full,
    /// Job centres: the public part only.
    Public,
}

fn not_found() -> ApiError {
    ApiError::not_found("Employer")
}

/// How much of employer `id` the caller sees, decided per role and then
/// combined per record — the widest view any *single* role grants for this
/// very record, never a permission of one role applied to another's rows:
/// office staff everything in full, an employer its own record in full, a
/// job centre every record's public part. `None`: not visible at all.
pub fn view_of(principal: &Principal, id: Uuid) -> Option<EmployerView> {
    if principal.is_office() || principal.employer_id() == Some(id) {
        Some(EmployerView::Full)
    } else if principal.has(Role::Jobcenter) {
        Some(EmployerView::Public)
    } else {
        None
    }
}

pub async fn create(db: &impl ConnectionTrait, fields: &EmployerFields) -> Result<employer::Model, ApiError> {
    Ok(repository::employers::insert(db, new_id(), fields).await?)
}

/// A visible employer with the view the caller gets of it (see [`view_of`]).
pub async fn get(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: Uuid,
) -> Result<(employer::Model, EmployerView), ApiError> {
    let view = view_of(principal, id).ok_or_else(not_found)?;
    Ok((repository::employers::find(db, id).await?.ok_or_else(not_found)?, view))
}

/// An employer the caller may change: office staff any, an employer itself.
pub async fn get_for_change(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: Uuid,
) -> Result<employer::Model, ApiError> {
    if !(principal.is_office() || principal.employer_id() == Some(id)) {
        return Err(not_found());
    }
    repository::employers::find(db, id).await?.ok_or_else(not_found)
}

pub async fn list(
    db: &impl ConnectionTrait,
    cursors: &CursorCodec,
    principal: &Principal,
    mut filter: EmployerFilter,
    page: &PageRequest,
) -> Result<Page<employer::Model>, ApiError> {
    if !principal.is_office() {
        // Rows the caller sees only in public would be revealed by a filter
        // on a field outside the public part: such a filter narrows to the
        // rows it sees in full (its own record), or is refused outright.
        let private_filter = filter.need.is_some() || filter.settlement_status.is_some();
        let own = principal.employer_id();
        match (principal.has(Role::Jobcenter), principal.has(Role::Employer)) {
            (true, false) if private_filter => {
                return Err(ApiError::forbidden(
                    "Job centres see the public part of employers only and cannot filter by need or settlement_status.",
                ));
            }
            (true, true) if private_filter => filter.only = Some(own.unwrap_or(Uuid::nil())),
            (true, _) => {}
            // An employer principal whose org is not an id sees nothing.
            (false, _) => filter.only = Some(own.unwrap_or(Uuid::nil())),
        }
    }
    let after = paging::start(cursors, page)?;
    let rows = repository::employers::list(db, &filter, after, paging::newest_first(page), page.limit).await?;
    Ok(paging::finish(cursors, page, rows, |m| m.id))
}

pub async fn update(
    db: &impl ConnectionTrait,
    current: &employer::Model,
    if_match: &IfMatch,
    fields: &EmployerFields,
) -> Result<employer::Model, ApiError> {
    if_match.check(current.version)?;
    repository::employers::update(db, current.id, current.version, fields)
        .await?
        .ok_or_else(|| ApiError::stale("employer"))
}

fn in_use(what: &str) -> impl FnOnce(&str) -> Option<ApiError> + '_ {
    move |_| {
        Some(ApiError::new(
            Problem::InUse,
            format!("The {what} is still referenced (vacancies, referrals or counselling); it cannot be deleted."),
        ))
    }
}

pub async fn delete(db: &impl ConnectionTrait, id: Uuid, if_match: &IfMatch) -> Result<(), ApiError> {
    let current = repository::employers::find(db, id).await?.ok_or_else(not_found)?;
    if_match.check(current.version)?;
    let deleted = repository::employers::delete(db, id, current.version)
        .await
        .map_err(|e| repository::constraint(e, |_| None, in_use("employer")))?;
    if deleted { Ok(()) } else { Err(ApiError::stale("employer")) }
}

// --- vacancies ---

fn vacancy_not_found() -> ApiError {
    ApiError::not_found("Vacancy")
}

/// Narrows a vacancy search to what the caller may see, the union of what
/// each role grants: an employer its own (any status), a job centre the open
/// ones of every employer.
fn vacancy_visibility(principal: &Principal, filter: &mut VacancyFilter) {
    if principal.is_office() {
        return;
    }
    let own = principal.has(Role::Employer).then(|| principal.employer_id().unwrap_or(Uuid::nil()));
    match (own, principal.has(Role::Jobcenter)) {
        (Some(own), true) => filter.own_or_open = Some(own),
        (Some(own), false) => {
            filter.employer_id = Some(match filter.employer_id {
                Some(asked) if asked != own => Uuid::nil(),
                _ => own,
            });
        }
        (None, true) => {
            if filter.status.as_deref().is_some_and(|s| s != VacancyStatus::Open.as_str()) {
                filter.employer_id = Some(Uuid::nil());
            }
            filter.status = Some(VacancyStatus::Open.as_str().to_owned());
        }
        // No role that reads vacancies: nothing.
        (None, false) => filter.employer_id = Some(Uuid::nil()),
    }
}

pub async fn create_vacancy(
    db: &impl ConnectionTrait,
    principal: &Principal,
    employer_id: Uuid,
    fields: &VacancyFields,
) -> Result<vacancy::Model, ApiError> {
    get_for_change(db, principal, employer_id).await?;
    Ok(repository::vacancies::insert(db, new_id(), employer_id, fields).await?)
}

pub async fn list_vacancies(
    db: &impl ConnectionTrait,
    cursors: &CursorCodec,
    principal: &Principal,
    mut filter: VacancyFilter,
    page: &PageRequest,
) -> Result<Page<vacancy::Model>, ApiError> {
    vacancy_visibility(principal, &mut filter);
    let after = paging::start(cursors, page)?;
    let rows = repository::vacancies::list(db, &filter, after, paging::newest_first(page), page.limit).await?;
    Ok(paging::finish(cursors, page, rows, |m| m.id))
}

pub async fn get_vacancy(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: Uuid,
) -> Result<vacancy::Model, ApiError> {
    let model = repository::vacancies::find(db, id).await?.ok_or_else(vacancy_not_found)?;
    // The same union as `vacancy_visibility`, for one row.
    let visible = principal.is_office()
        || principal.employer_id() == Some(model.employer_id)
        || (principal.has(Role::Jobcenter) && model.status == VacancyStatus::Open.as_str());
    if visible { Ok(model) } else { Err(vacancy_not_found()) }
}

pub async fn get_vacancy_for_change(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: Uuid,
) -> Result<vacancy::Model, ApiError> {
    let model = repository::vacancies::find(db, id).await?.ok_or_else(vacancy_not_found)?;
    if principal.is_office() || principal.employer_id() == Some(model.employer_id) {
        Ok(model)
    } else {
        Err(vacancy_not_found())
    }
}

pub async fn update_vacancy(
    db: &impl ConnectionTrait,
    current: &vacancy::Model,
    if_match: &IfMatch,
    fields: &VacancyFields,
) -> Result<vacancy::Model, ApiError> {
    if_match.check(current.version)?;
    if fields.positions < current.positions_filled {
        return Err(ApiError::validation(vec![crate::error::FieldError::new(
            "positions",
            format!("must be at least the {} positions already filled", current.positions_filled),
        )]));
    }
    repository::vacancies::update(db, current.id, current.version, fields)
        .await?
        .ok_or_else(|| ApiError::stale("vacancy"))
}

pub async fn delete_vacancy(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: Uuid,
    if_match: &IfMatch,
) -> Result<(), ApiError> {
    let current = get_vacancy_for_change(db, principal, id).await?;
    if_match.check(current.version)?;
    let deleted = repository::vacancies::delete(db, id, current.version)
        .await
        .map_err(|e| repository::constraint(e, |_| None, in_use("vacancy")))?;
    if deleted { Ok(()) } else { Err(ApiError::stale("vacancy")) }
}

// --- counselling of employers ---

pub async fn add_consultation(
    db: &impl ConnectionTrait,
    audit: &crate::domain::audit::AuditContext,
    principal: &Principal,
    employer_id: Uuid,
    fields: &crate::domain::clients::ConsultationFields,
) -> Result<crate::entities::consultation::Model, ApiError> {
    get(db, principal, employer_id).await?;
    let subject = repository::consultations::Subject::Employer(employer_id);
    Ok(repository::consultations::insert(db, audit, subject, &principal.sub, fields).await?)
}

pub async fn consultations(
    db: &impl ConnectionTrait,
    audit: &crate::domain::audit::AuditContext,
    cursors: &CursorCodec,
    principal: &Principal,
    employer_id: Uuid,
    page: &PageRequest,
) -> Result<Page<crate::entities::consultation::Model>, ApiError> {
    get(db, principal, employer_id).await?;
    let after = paging::start(cursors, page)?;
    let subject = repository::consultations::Subject::Employer(employer_id);
    let rows =
        repository::consultations::list(db, audit, subject, after, paging::newest_first(page), page.limit).await?;
    Ok(paging::finish(cursors, page, rows, |m| m.id))
}

pub async fn consultation(
    db: &impl ConnectionTrait,
    audit: &crate::domain::audit::AuditContext,
    principal: &Principal,
    employer_id: Uuid,
    id: Uuid,
) -> Result<crate::entities::consultation::Model, ApiError> {
    get(db, principal, employer_id).await?;
    let subject = repository::consultations::Subject::Employer(employer_id);
    repository::consultations::find(db, audit, subject, id).await?.ok_or_else(|| ApiError::not_found("Consultation"))
}
