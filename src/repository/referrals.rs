//! Queries on `referrals`, their events, and the counters they hold on
//! measures and vacancies. Counters change only by conditional updates in the
//! caller's transaction, so concurrent accepts can never overbook: the row
//! update of the measure is the lock, and its `WHERE seats_taken < capacity`
//! is re-checked against the committed value (PostgreSQL READ COMMITTED
//! re-evaluates it after waiting; SQLite runs one writer at a time).
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, ExprTrait,
    QueryFilter, QueryOrder, QuerySelect, TryInsertResult, sea_query::Expr,
};
use uuid::Uuid;

use crate::{
    domain::{
        codes::{ReferralStatus, VacancyStatus},
        ids::{new_id, now},
        referrals::CounterChange,
    },
    entities::{
        measure, referral,
        referral::{ActiveModel, Column, Entity, Model},
        referral_event, vacancy,
    },
};

/// Which referrals a caller may see; the union of what each role grants.
#[derive(Debug, Clone, Default)]
pub struct ReferralScope {
    pub all: bool,
    pub referring_org: Option<String>,
    pub provider: Option<Uuid>,
    pub employer: Option<Uuid>,
}

/// Referrals into the measures of `provider`.
fn into_measures_of(provider: Uuid) -> sea_orm::sea_query::SimpleExpr {
    Column::MeasureId.in_subquery(
        sea_orm::sea_query::Query::select()
            .column(measure::Column::Id)
            .from(measure::Entity)
            .and_where(measure::Column::ProviderId.eq(provider))
            .to_owned(),
    )
}

/// Referrals to the vacancies of `employer`.
fn to_vacancies_of(employer: Uuid) -> sea_orm::sea_query::SimpleExpr {
    Column::VacancyId.in_subquery(
        sea_orm::sea_query::Query::select()
            .column(vacancy::Column::Id)
            .from(vacancy::Entity)
            .and_where(vacancy::Column::EmployerId.eq(employer))
            .to_owned(),
    )
}

fn scope_condition(scope: &ReferralScope) -> Condition {
    if scope.all {
        return Condition::all();
    }
    let mut any = Condition::any();
    if let Some(org) = &scope.referring_org {
        any = any.add(Column::ReferringOrg.eq(org.clone()));
    }
    if let Some(p) = scope.provider {
        any = any.add(into_measures_of(p));
    }
    if let Some(e) = scope.employer {
        any = any.add(to_vacancies_of(e));
    }
    // No grant at all: nothing is visible.
    if scope.referring_org.is_none() && scope.provider.is_none() && scope.employer.is_none() {
        any = any.add(Expr::val(1).eq(0));
    }
    any
}

/// A new referral, as the service decided it.
#[derive(Debug, Clone)]
pub struct NewReferral {
    pub client_id: Uuid,
    pub measure_id: Option<Uuid>,
    pub vacancy_id: Option<Uuid>,
    pub external_id: Option<String>,
    pub referring_org: String,
    pub referred_by: String,
    pub note: Option<String>,
}

/// One entry of the history.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub referral_id: Uuid,
    pub from_status: Option<ReferralStatus>,
    pub to_status: ReferralStatus,
    pub action: &'a str,
    pub reason_code: Option<&'a str>,
    pub reason_note: Option<&'a str>,
    pub actor: &'a str,
    pub actor_org: Option<&'a str>,
    pub at: DateTime<Utc>,
}

/// Inserts the referral, or returns `None` when it would break a unique
/// rule: the referring org's `external_id`, or the client's one active
/// referral per target (a partial unique index). `ON CONFLICT DO NOTHING`
/// waits for a concurrent insert of the same slot and never aborts the
/// caller's transaction, so the caller can then look up who holds it; and
/// the common case needs no duplicate `SELECT` before the insert.
pub async fn insert(db: &impl ConnectionTrait, new: &NewReferral) -> Result<Option<Model>, DbErr> {
    let at = now();
    let id = new_id();
    let model = Model {
        id,
        client_id: new.client_id,
        measure_id: new.measure_id,
        vacancy_id: new.vacancy_id,
        external_id: new.external_id.clone(),
        referring_org: new.referring_org.clone(),
        referred_by: new.referred_by.clone(),
        note: new.note.clone(),
        status: ReferralStatus::Requested.as_str().to_owned(),
        reason_code: None,
        reason_note: None,
        rejected_by: None,
        outcome: None,
        outcome_on: None,
        created_at: at,
        updated_at: at,
        version: 1,
        key_factor: i64::from(crate::domain::cell_key::key_factor(id.as_u128())),
    };
    // Every column is known: no `RETURNING` (which sea-orm reports as a
    // missing row, not as a conflict, when nothing was inserted).
    let row = ActiveModel::from(model.clone()).reset_all();
    // No conflict target: any unique rule (the partial indexes included).
    let any = sea_orm::sea_query::OnConflict::new().do_nothing().to_owned();
    Ok(match Entity::insert(row).on_conflict(any).try_insert().exec_without_returning(db).await? {
        TryInsertResult::Inserted(1) => Some(model),
        TryInsertResult::Inserted(_) | TryInsertResult::Conflicted | TryInsertResult::Empty => None,
    })
}

pub async fn record_event(db: &impl ConnectionTrait, e: &NewEvent<'_>) -> Result<(), DbErr> {
    referral_event::ActiveModel {
        id: Set(new_id()),
        referral_id: Set(e.referral_id),
        from_status: Set(e.from_status.map(|s| s.as_str().to_owned())),
        to_status: Set(e.to_status.as_str().to_owned()),
        action: Set(e.action.to_owned()),
        reason_code: Set(e.reason_code.map(str::to_owned)),
        reason_note: Set(e.reason_note.map(str::to_owned)),
        actor: Set(e.actor.to_owned()),
        actor_org: Set(e.actor_org.map(str::to_owned)),
        at: Set(e.at),
    }
    .insert(db)
    .await
    .map(|_| ())
}

pub async fn find(db: &impl ConnectionTrait, scope: &ReferralScope, id: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).filter(scope_condition(scope)).one(db).await
}

/// Like [`find`], and locks the row until the caller's transaction ends
/// (`FOR UPDATE` on PostgreSQL; SQLite has one writer at a time anyway), so
/// concurrent actions on one referral take turns and each sees the status the
/// one before left — a lost race is then an invalid transition, not a stale write.
pub async fn find_for_update(
    db: &impl ConnectionTrait,
    scope: &ReferralScope,
    id: Uuid,
) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).filter(scope_condition(scope)).lock_exclusive().one(db).await
}

pub async fn by_external_id(db: &impl ConnectionTrait, org: &str, external_id: &str) -> Result<Option<Model>, DbErr> {
    Entity::find().filter(Column::ReferringOrg.eq(org)).filter(Column::ExternalId.eq(external_id)).one(db).await
}

/// The active referral of `client_id` to the same measure or vacancy, if any.
pub async fn active_duplicate(
    db: &impl ConnectionTrait,
    client_id: Uuid,
    measure_id: Option<Uuid>,
    vacancy_id: Option<Uuid>,
) -> Result<Option<Uuid>, DbErr> {
    let active: Vec<&str> =
        [ReferralStatus::Requested, ReferralStatus::OnHold, ReferralStatus::Accepted, ReferralStatus::InProgress]
            .iter()
            .map(|s| s.as_str())
            .collect();
    let mut select = Entity::find().select_only().column(Column::Id).filter(Column::ClientId.eq(client_id));
    select = match (measure_id, vacancy_id) {
        (Some(m), _) => select.filter(Column::MeasureId.eq(m)),
        (None, Some(v)) => select.filter(Column::VacancyId.eq(v)),
        (None, None) => return Ok(None),
    };
    select.filter(Column::Status.is_in(active)).into_tuple::<Uuid>().one(db).await
}

/// Sort orders of the referral list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferralOrder {
    NewestFirst,
    OldestFirst,
    /// By `updated_at`, then id, ascending: what a polling partner wants.
    UpdatedAt,
}

/// The key a page continues after.
#[derive(Debug, Clone)]
pub enum After {
    Id(Uuid),
    Updated(DateTime<Utc>, Uuid),
}

#[derive(Debug, Default)]
pub struct ReferralFilter {
    pub status: Option<String>,
    /// Any of these statuses (the FHIR view's `status` search; `failed` is two of ours).
    pub status_in: Option<Vec<String>>,
    pub client_id: Option<Uuid>,
    pub measure_id: Option<Uuid>,
    pub vacancy_id: Option<Uuid>,
    pub provider_id: Option<Uuid>,
    pub employer_id: Option<Uuid>,
    pub external_id: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub updated_after: Option<DateTime<Utc>>,
}

pub async fn list(
    db: &impl ConnectionTrait,
    scope: &ReferralScope,
    f: &ReferralFilter,
    order: ReferralOrder,
    after: Option<After>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let mut select = Entity::find().filter(scope_condition(scope));
    if let Some(v) = &f.status {
        select = select.filter(Column::Status.eq(v.clone()));
    }
    if let Some(v) = &f.status_in {
        select = select.filter(Column::Status.is_in(v.clone()));
    }
    if let Some(v) = f.client_id {
        select = select.filter(Column::ClientId.eq(v));
    }
    if let Some(v) = f.measure_id {
        select = select.filter(Column::MeasureId.eq(v));
    }
    if let Some(v) = f.vacancy_id {
        select = select.filter(Column::VacancyId.eq(v));
    }
    if let Some(p) = f.provider_id {
        select = select.filter(into_measures_of(p));
    }
    if let Some(e) = f.employer_id {
        select = select.filter(to_vacancies_of(e));
    }
    if let Some(v) = &f.external_id {
        select = select.filter(Column::ExternalId.eq(v.clone()));
    }
    if let Some(v) = f.created_after {
        select = select.filter(Column::CreatedAt.gt(v));
    }
    if let Some(v) = f.updated_after {
        select = select.filter(Column::UpdatedAt.gt(v));
    }
    match order {
        ReferralOrder::NewestFirst | ReferralOrder::OldestFirst => {
            let after = match after {
                Some(After::Id(id)) => Some(id),
                _ => None,
            };
            super::keyset(db, select, Column::Id, after, order == ReferralOrder::NewestFirst, limit).await
        }
        ReferralOrder::UpdatedAt => {
            if let Some(After::Updated(at, id)) = after {
                select = select.filter(
                    Condition::any()
                        .add(Column::UpdatedAt.gt(at))
                        .add(Condition::all().add(Column::UpdatedAt.eq(at)).add(Column::Id.gt(id))),
                );
            }
            select.order_by_asc(Column::UpdatedAt).order_by_asc(Column::Id).limit(limit + 1).all(db).await
        }
    }
}

/// Moves a referral from `from` to `to` if it is still there; false if it moved on.
pub async fn set_status(
    db: &impl ConnectionTrait,
    current: &Model,
    to: ReferralStatus,
    changes: &StatusFields<'_>,
    at: DateTime<Utc>,
) -> Result<Option<Model>, DbErr> {
    let mut update = Entity::update_many()
        .col_expr(Column::Status, Expr::value(to.as_str()))
        .col_expr(Column::UpdatedAt, Expr::value(at))
        .col_expr(Column::Version, Expr::value(current.version + 1));
    if let Some(v) = changes.reason_code {
        update = update.col_expr(Column::ReasonCode, Expr::value(v));
    }
    if let Some(v) = changes.reason_note {
        update = update.col_expr(Column::ReasonNote, Expr::value(v));
    }
    if let Some(v) = changes.rejected_by {
        update = update.col_expr(Column::RejectedBy, Expr::value(v));
    }
    if let Some(v) = changes.outcome {
        update = update.col_expr(Column::Outcome, Expr::value(v));
    }
    if let Some(v) = changes.outcome_on {
        update = update.col_expr(Column::OutcomeOn, Expr::value(v));
    }
    let result = update
        .filter(Column::Id.eq(current.id))
        .filter(Column::Status.eq(current.status.clone()))
        .filter(Column::Version.eq(current.version))
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        return Ok(None);
    }
    Entity::find_by_id(current.id).one(db).await
}

/// Fields a transition may set besides the status.
#[derive(Debug, Default)]
pub struct StatusFields<'a> {
    pub reason_code: Option<&'a str>,
    pub reason_note: Option<&'a str>,
    pub rejected_by: Option<&'a str>,
    pub outcome: Option<&'a str>,
    pub outcome_on: Option<chrono::NaiveDate>,
}

/// Applies a counter change to a measure. A change that takes a seat only
/// succeeds while a seat is free; returns false when there is none.
///
/// The counters are part of the measure as read (`seats_taken`, `waitlisted`,
/// `capacity_status`), so the same statement bumps `version` and
/// `updated_at`: a stale `If-Match` on the measure then fails, and a poller
/// sorting by `updated_at` sees the change. The version bump also makes a
/// capacity `PATCH` that read the measure before this accept lose its
/// conditional update instead of writing over the new seat count.
pub async fn adjust_measure(
    db: &impl ConnectionTrait,
    measure_id: Uuid,
    change: CounterChange,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    if change.seats_taken == 0 && change.waitlisted == 0 {
        return Ok(true);
    }
    let mut update = measure::Entity::update_many()
        .col_expr(measure::Column::SeatsTaken, Expr::col(measure::Column::SeatsTaken).add(change.seats_taken))
        .col_expr(measure::Column::Waitlisted, Expr::col(measure::Column::Waitlisted).add(change.waitlisted))
        .col_expr(measure::Column::Version, Expr::col(measure::Column::Version).add(1))
        .col_expr(measure::Column::UpdatedAt, Expr::value(at))
        .filter(measure::Column::Id.eq(measure_id));
    if change.seats_taken > 0 {
        update = update.filter(Expr::col(measure::Column::SeatsTaken).lt(Expr::col(measure::Column::Capacity)));
    }
    Ok(update.exec(db).await?.rows_affected == 1)
}

/// Applies a counter change to a vacancy; taking a position only succeeds
/// while one is free, and the last one taken turns the vacancy `filled`.
/// Bumps `version` and `updated_at` in the same statement (see [`adjust_measure`]).
pub async fn adjust_vacancy(
    db: &impl ConnectionTrait,
    vacancy_id: Uuid,
    change: CounterChange,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    if change.positions_filled == 0 {
        return Ok(true);
    }
    let filled_after = Expr::col(vacancy::Column::PositionsFilled).add(change.positions_filled);
    let mut update = vacancy::Entity::update_many()
        .col_expr(vacancy::Column::PositionsFilled, filled_after.clone())
        .col_expr(vacancy::Column::Version, Expr::col(vacancy::Column::Version).add(1))
        .col_expr(vacancy::Column::UpdatedAt, Expr::value(at))
        .filter(vacancy::Column::Id.eq(vacancy_id));
    if change.positions_filled > 0 {
        update = update
            .col_expr(
                vacancy::Column::Status,
                Expr::case(filled_after.gte(Expr::col(vacancy::Column::Positions)), VacancyStatus::Filled.as_str())
                    .finally(Expr::col(vacancy::Column::Status))
                    .into(),
            )
            .filter(Expr::col(vacancy::Column::PositionsFilled).lt(Expr::col(vacancy::Column::Positions)));
    }
    Ok(update.exec(db).await?.rows_affected == 1)
}

pub async fn events(db: &impl ConnectionTrait, referral_id: Uuid) -> Result<Vec<referral_event::Model>, DbErr> {
    referral_event::Entity::find()
        .filter(referral_event::Column::ReferralId.eq(referral_id))
        .order_by_asc(referral_event::Column::At)
        .order_by_asc(referral_event::Column::Id)
        .all(db)
        .await
}

/// The organisations that referred a client (who, besides its creator, may see it).
pub async fn referring_orgs_of_client(db: &impl ConnectionTrait, client_id: Uuid) -> Result<Vec<String>, DbErr> {
    Entity::find()
        .select_only()
        .column(Column::ReferringOrg)
        .distinct()
        .filter(Column::ClientId.eq(client_id))
        .into_tuple()
        .all(db)
        .await
}

/// Referrals of a client with their histories (for the Art. 15 export).
pub async fn of_client(
    db: &impl ConnectionTrait,
    client_id: Uuid,
) -> Result<Vec<(Model, Vec<referral_event::Model>)>, DbErr> {
    let referrals = Entity::find().filter(Column::ClientId.eq(client_id)).order_by_asc(Column::Id).all(db).await?;
    let mut out = Vec::with_capacity(referrals.len());
    for r in referrals {
        let history = events(db, r.id).await?;
        out.push((r, history));
    }
    Ok(out)
}

/// Requested or waitlisted referrals untouched since `before` (expiry candidates).
pub async fn stale(db: &impl ConnectionTrait, before: DateTime<Utc>, limit: u64) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::Status.is_in([ReferralStatus::Requested.as_str(), ReferralStatus::OnHold.as_str()]))
        .filter(Column::UpdatedAt.lt(before))
        .order_by_asc(Column::UpdatedAt)
        .limit(limit)
        .all(db)
        .await
}

pub use referral::Model as Referral;

/// The measures and vacancies a client has an active referral to.
pub async fn active_targets(
    db: &impl ConnectionTrait,
    client_id: Uuid,
) -> Result<(std::collections::HashSet<Uuid>, std::collections::HashSet<Uuid>), DbErr> {
    let active =
        [ReferralStatus::Requested, ReferralStatus::OnHold, ReferralStatus::Accepted, ReferralStatus::InProgress]
            .map(|s| s.as_str());
    let rows: Vec<(Option<Uuid>, Option<Uuid>)> = Entity::find()
        .select_only()
        .column(Column::MeasureId)
        .column(Column::VacancyId)
        .filter(Column::ClientId.eq(client_id))
        .filter(Column::Status.is_in(active))
        .into_tuple()
        .all(db)
        .await?;
    Ok((rows.iter().filter_map(|r| r.0).collect(), rows.iter().filter_map(|r| r.1).collect()))
}

/// GDPR Art. 17: destroys the free text about a client in its referrals
/// (`note`, `reason_note`; bumping their `version` and `updated_at`, so
/// pollers see the change) and in their events (`reason_note`; the history
/// is append-only for what happened, not for what was written about the person).
pub async fn erase_free_text_of_client(
    db: &impl ConnectionTrait,
    client_id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Note, Expr::value(Option::<String>::None))
        .col_expr(Column::ReasonNote, Expr::value(Option::<String>::None))
        .col_expr(Column::UpdatedAt, Expr::value(at))
        .col_expr(Column::Version, Expr::col(Column::Version).add(1))
        .filter(Column::ClientId.eq(client_id))
        .exec(db)
        .await?;
    referral_event::Entity::update_many()
        .col_expr(referral_event::Column::ReasonNote, Expr::value(Option::<String>::None))
        .filter(
            referral_event::Column::ReferralId.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(Column::Id)
                    .from(Entity)
                    .and_where(Column::ClientId.eq(client_id))
                    .to_owned(),
            ),
        )
        .exec(db)
        .await?;
    Ok(())
}
