//! Queries on `clients` — personal data. Every function that returns client
//! rows, or changes them, takes an [`AuditContext`] and appends its audit
//! event before returning: there is no way to read a client here without it,
//! and nothing outside this module queries the `clients` table.
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait,
    ExprTrait, QueryFilter, Statement, Value, sea_query::Expr,
};
use uuid::Uuid;

use super::{audit, audit_writer::AuditWriter, bulk::BulkTxn, hot_pg::HotPg, tags};
use crate::{
    domain::{
        audit::{AuditContext, AuditEntry, action},
        cell_key,
        clients::ClientFields,
        codes::{ClientStatus, TargetGroup},
        ids::{new_id, now},
    },
    entities::{
        client::{ActiveModel, Column, Entity, Model},
        consultation,
    },
};

/// Which clients a caller may see. Visibility is part of every query.
#[derive(Debug, Clone)]
pub enum ClientScope {
    /// Office staff: every client.
    All,
    /// A job centre: the clients it created (and, with referrals, referred).
    Org(String),
}

pub(crate) fn scope_condition(scope: &ClientScope) -> Condition {
    match scope {
        ClientScope::All => Condition::all(),
        ClientScope::Org(org) => Condition::any().add(Column::CreatedByOrg.eq(org.clone())).add(
            Column::Id.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(sea_orm::sea_query::Alias::new("client_id"))
                    .from(sea_orm::sea_query::Alias::new("referrals"))
                    .and_where(Expr::col(sea_orm::sea_query::Alias::new("referring_org")).eq(org.clone()))
                    .to_owned(),
            ),
        ),
    }
}

/// [`scope_condition`] for an organisation as raw SQL over `clients c`
/// (for the statements written by hand: the read-and-audit CTE and the
/// hot path, `super::hot_pg`), the org bound as `param`.
pub(crate) fn org_visible_sql(param: &str) -> String {
    format!(
        " AND (c.created_by_org = {param} OR c.id IN (SELECT r.client_id FROM referrals r WHERE r.referring_org = {param}))"
    )
}

fn entry(action: &'static str, id: Uuid) -> AuditEntry {
    AuditEntry { action, resource: "client", resource_id: Some(id), client_id: Some(id) }
}

fn active(fields: &ClientFields) -> ActiveModel {
    ActiveModel {
        external_id: Set(fields.external_id.clone()),
        first_name: Set(Some(fields.first_name.clone())),
        last_name: Set(Some(fields.last_name.clone())),
        date_of_birth: Set(fields.date_of_birth),
        email: Set(fields.email.clone()),
        phone: Set(fields.phone.clone()),
        address: Set(fields.address.as_ref().and_then(|a| serde_json::to_value(a).ok())),
        district: Set(fields.district.clone()),
        target_groups: Set(tags::join(fields.target_groups.iter().map(|t| t.as_str()))),
        education_level: Set(fields.education_level.map(|e| e.as_str().to_owned())),
        occupation_codes: Set(tags::join(&fields.occupation_codes)),
        languages: Set(tags::join(&fields.languages)),
        available_from: Set(fields.available_from),
        hours_per_week: Set(fields.hours_per_week),
        consent: Set(serde_json::to_value(&fields.consent).ok()),
        status: Set(fields.status.as_str().to_owned()),
        ..Default::default()
    }
}

pub async fn insert(
    db: &impl ConnectionTrait,
    audit_ctx: &AuditContext,
    id: Uuid,
    created_by_org: &str,
    fields: &ClientFields,
) -> Result<Model, DbErr> {
    let model = new_row(id, created_by_org, fields, now()).insert(db).await?;
    audit::record(db, audit_ctx, &[entry(action::CLIENT_CREATE, id)]).await?;
    Ok(model)
}

/// The client if visible; audited as `action` when found (and not erased:
/// an erased stub holds no personal data).
pub async fn find(
    db: &impl ConnectionTrait,
    audit_ctx: &AuditContext,
    action: &'static str,
    scope: &ClientScope,
    id: Uuid,
) -> Result<Option<Model>, DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        return find_audited_pg(db, audit_ctx, action, scope, id).await;
    }
    let found = find_visible(db, scope, id).await?;
    if found.as_ref().is_some_and(holds_personal_data) {
        audit::record(db, audit_ctx, &[entry(action, id)]).await?;
    }
    Ok(found)
}

/// The client `id` if `scope` sees it (no audit: callers audit what they return).
async fn find_visible(db: &impl ConnectionTrait, scope: &ClientScope, id: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).filter(scope_condition(scope)).one(db).await
}

/// An erased stub holds no personal data, so reading it is not audited.
fn holds_personal_data(m: &Model) -> bool {
    m.status != ClientStatus::Erased.as_str()
}

/// [`find`] for a read outside any transaction: the audit event goes
/// through the group-commit [`AuditWriter`], which returns only once the
/// event is committed, so the caller still answers after its audit row is
/// durable, and a failed write fails the read.
///
/// On PostgreSQL without TLS the read goes through `hot` (prepared, no
/// pool ping; see [`super::hot_pg`]) with the same visibility rule.
pub async fn find_for_read(
    db: &impl ConnectionTrait,
    hot: Option<&HotPg>,
    writer: &AuditWriter,
    audit_ctx: &AuditContext,
    action: &'static str,
    scope: &ClientScope,
    id: Uuid,
) -> Result<Option<Model>, DbErr> {
    let found = match hot {
        Some(hot) => hot.find_client(scope, id).await?,
        None => find_visible(db, scope, id).await?,
    };
    if found.as_ref().is_some_and(holds_personal_data) {
        writer.record(audit_ctx, &[entry(action, id)]).await?;
    }
    Ok(found)
}

/// [`find`] on PostgreSQL: the read and its audit event in one statement
/// (a data-modifying CTE), so one round trip on one connection and one
/// commit. The `INSERT` sees the same snapshot as the `SELECT` and writes
/// its row only for a visible, not erased client. `all` (not `one`) reads
/// the answer up to `ReadyForQuery`, which PostgreSQL sends only after the
/// statement's implicit transaction committed: no row reaches the caller
/// before its audit event is durable. Any failure of the statement fails
/// the read (503), never skips the audit.
async fn find_audited_pg(
    db: &impl ConnectionTrait,
    audit_ctx: &AuditContext,
    action: &'static str,
    scope: &ClientScope,
    id: Uuid,
) -> Result<Option<Model>, DbErr> {
    let mut values: Vec<Value> = vec![
        new_id().into(),
        now().into(),
        audit_ctx.actor.clone().into(),
        audit_ctx.actor_org.clone().into(),
        action.into(),
        audit_ctx.request_id.clone().into(),
        audit_ctx.client_request_id.clone().into(),
        id.into(),
        ClientStatus::Erased.as_str().into(),
    ];
    let visible = match scope {
        ClientScope::All => String::new(),
        ClientScope::Org(org) => {
            values.push(org.clone().into());
            org_visible_sql("$10")
        }
    };
    let sql = format!(
        "WITH audited AS (INSERT INTO audit_events \
         (id, at, actor, actor_org, action, resource, resource_id, client_id, request_id, client_request_id) \
         SELECT $1, $2, $3, $4, $5, 'client', c.id, c.id, $6, $7 FROM clients c \
         WHERE c.id = $8 AND c.status <> $9{visible}) \
         SELECT c.* FROM clients c WHERE c.id = $8{visible}"
    );
    let rows = Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(DbBackend::Postgres, sql, values))
        .all(db)
        .await
        .map_err(audit::write_failed)?;
    Ok(rows.into_iter().next())
}

/// The external id of a visible client, without reading personal data
/// (used to name the existing record in a duplicate-`external_id` problem).
pub async fn id_by_external_id(db: &impl ConnectionTrait, org: &str, external_id: &str) -> Result<Option<Uuid>, DbErr> {
    use sea_orm::QuerySelect;
    Entity::find()
        .select_only()
        .column(Column::Id)
        .filter(Column::CreatedByOrg.eq(org))
        .filter(Column::ExternalId.eq(external_id))
        .into_tuple::<Uuid>()
        .one(db)
        .await
}

#[derive(Debug, Default)]
pub struct ClientFilter {
    pub external_id: Option<String>,
    pub district: Option<String>,
    pub target_group: Option<String>,
    pub status: Option<String>,
    pub q: Option<String>,
}

pub async fn list(
    db: &impl ConnectionTrait,
    audit_ctx: &AuditContext,
    scope: &ClientScope,
    filter: &ClientFilter,
    after: Option<Uuid>,
    newest_first: bool,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let mut select = Entity::find().filter(scope_condition(scope));
    if let Some(v) = &filter.external_id {
        select = select.filter(Column::ExternalId.eq(v.clone()));
    }
    if let Some(v) = &filter.district {
        select = select.filter(Column::District.eq(v.clone()));
    }
    if let Some(v) = &filter.target_group {
        select = select.filter(tags::contains(Column::TargetGroups, v));
    }
    // Erased stubs only when asked for by status.
    select = match &filter.status {
        Some(v) => select.filter(Column::Status.eq(v.clone())),
        None => select.filter(Column::Status.ne(ClientStatus::Erased.as_str())),
    };
    if let Some(q) = &filter.q {
        select = select.filter(
            Condition::any()
                .add(super::name_contains(db.get_database_backend(), Column::FirstName, q))
                .add(super::name_contains(db.get_database_backend(), Column::LastName, q)),
        );
    }
    let rows = super::keyset(db, select, Column::Id, after, newest_first, limit).await?;
    let entries: Vec<AuditEntry> = rows
        .iter()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .filter(|m| m.status != ClientStatus::Erased.as_str())
        .map(|m| entry(action::CLIENT_LIST, m.id))
        .collect();
    audit::record(db, audit_ctx, &entries).await?;
    Ok(rows)
}

/// Writes `fields` if the row is still at `version`; `None` when it moved on.
///
/// Records no audit event of its own: a change starts with [`find`] under
/// `client.update` in the same transaction, and that is the one event of the
/// change (a second one here logged every PATCH twice). Should the change
/// fail, the transaction takes the event back — and nothing was disclosed.
pub async fn update(
    db: &impl ConnectionTrait,
    id: Uuid,
    version: i32,
    fields: &ClientFields,
) -> Result<Option<Model>, DbErr> {
    let mut model = active(fields);
    model.updated_at = Set(now());
    model.version = Set(version + 1);
    let result = Entity::update_many()
        .set(model)
        .filter(Column::Id.eq(id))
        .filter(Column::Version.eq(version))
        .filter(Column::Status.ne(ClientStatus::Erased.as_str()))
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        return Ok(None);
    }
    Entity::find_by_id(id).one(db).await
}

/// GDPR Art. 17: overwrites every personal field of the client and every
/// free text about the person elsewhere (consultation notes, referral
/// `note` / `reason_note`, the events' `reason_note`, funding application
/// notes), bumping `version` and `updated_at` of every row it changes. The
/// client row stays as an anonymous stub — district, the target groups
/// except `disability` (health data), status and timestamps — so referrals
/// and statistics stay right. docs/OPERATIONS.md lists what stays; the
/// schema test in tests/api/erasure.rs fails on any column not classified.
pub async fn erase(db: &impl ConnectionTrait, audit_ctx: &AuditContext, id: Uuid) -> Result<bool, DbErr> {
    use sea_orm::QuerySelect;
    let at = now();
    let Some(groups) = Entity::find_by_id(id)
        .select_only()
        .column(Column::TargetGroups)
        .filter(Column::Status.ne(ClientStatus::Erased.as_str()))
        .into_tuple::<String>()
        .one(db)
        .await?
    else {
        return Ok(false);
    };
    // `disability` is health data (Art. 9); the other groups are what the
    // demand statistics count and say nothing once the person is anonymous.
    let kept_groups =
        tags::join(tags::split(&groups).iter().map(String::as_str).filter(|g| *g != TargetGroup::Disability.as_str()));
    let result = Entity::update_many()
        .col_expr(Column::ExternalId, Expr::value(Option::<String>::None))
        .col_expr(Column::FirstName, Expr::value(Option::<String>::None))
        .col_expr(Column::LastName, Expr::value(Option::<String>::None))
        .col_expr(Column::DateOfBirth, Expr::value(Option::<chrono::NaiveDate>::None))
        .col_expr(Column::Email, Expr::value(Option::<String>::None))
        .col_expr(Column::Phone, Expr::value(Option::<String>::None))
        .col_expr(Column::Address, Expr::value(Option::<serde_json::Value>::None))
        .col_expr(Column::TargetGroups, Expr::value(kept_groups))
        .col_expr(Column::EducationLevel, Expr::value(Option::<String>::None))
        .col_expr(Column::OccupationCodes, Expr::value(String::new()))
        .col_expr(Column::Languages, Expr::value(String::new()))
        .col_expr(Column::AvailableFrom, Expr::value(Option::<chrono::NaiveDate>::None))
        .col_expr(Column::HoursPerWeek, Expr::value(Option::<i32>::None))
        .col_expr(Column::Consent, Expr::value(Option::<serde_json::Value>::None))
        .col_expr(Column::Status, Expr::value(ClientStatus::Erased.as_str()))
        .col_expr(Column::ErasedAt, Expr::value(Some(at)))
        .col_expr(Column::UpdatedAt, Expr::value(at))
        .col_expr(Column::Version, Expr::col(Column::Version).add(1))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.ne(ClientStatus::Erased.as_str()))
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        return Ok(false);
    }
    consultation::Entity::update_many()
        .col_expr(consultation::Column::Notes, Expr::value(Option::<String>::None))
        .col_expr(consultation::Column::UpdatedAt, Expr::value(at))
        .col_expr(consultation::Column::Version, Expr::col(consultation::Column::Version).add(1))
        .filter(consultation::Column::ClientId.eq(id))
        .exec(db)
        .await?;
    super::referrals::erase_free_text_of_client(db, id, at).await?;
    super::funding::erase_notes_of_client(db, id, at).await?;
    audit::record(db, audit_ctx, &[entry(action::CLIENT_ERASE, id)]).await?;
    Ok(true)
}

/// Only the status of a visible client (no personal data, so no audit).
pub async fn status_of(db: &impl ConnectionTrait, scope: &ClientScope, id: Uuid) -> Result<Option<String>, DbErr> {
    use sea_orm::QuerySelect;
    Entity::find_by_id(id)
        .select_only()
        .column(Column::Status)
        .filter(scope_condition(scope))
        .into_tuple::<String>()
        .one(db)
        .await
}

/// The organisation that created a client (no personal data, so no audit).
pub async fn creator_of(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<String>, DbErr> {
    use sea_orm::QuerySelect;
    Entity::find_by_id(id).select_only().column(Column::CreatedByOrg).into_tuple::<String>().one(db).await
}

/// What a referral shows providers and employers about its client.
#[derive(Debug, Clone)]
pub struct ClientSummary {
    pub id: Uuid,
    /// Name and contact, present only with `consent.share_with_providers`.
    pub shared: Option<SharedContact>,
}

#[derive(Debug, Clone)]
pub struct SharedContact {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

fn shares_with_providers(m: &Model) -> bool {
    m.status != ClientStatus::Erased.as_str()
        && m.consent.as_ref().and_then(|c| c.get("share_with_providers")).and_then(serde_json::Value::as_bool)
            == Some(true)
}

/// Which of `ids` consented to sharing with providers (and are not erased).
/// Reads only the consent, no personal data, so records no audit event.
pub async fn consenting(db: &impl ConnectionTrait, ids: &[Uuid]) -> Result<std::collections::HashSet<Uuid>, DbErr> {
    use sea_orm::QuerySelect;
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let rows: Vec<(Uuid, String, Option<serde_json::Value>)> = Entity::find()
        .select_only()
        .column(Column::Id)
        .column(Column::Status)
        .column(Column::Consent)
        .filter(Column::Id.is_in(ids.to_vec()))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter(|(_, status, consent)| {
            status != ClientStatus::Erased.as_str()
                && consent.as_ref().and_then(|c| c.get("share_with_providers")).and_then(serde_json::Value::as_bool)
                    == Some(true)
        })
        .map(|(id, _, _)| id)
        .collect())
}

/// Summaries of the clients of some referrals, for a provider or employer:
/// name and contact only where the client consented, and an audit event
/// (`referral.client_summary`, all in one insert) for each shown.
pub async fn summaries(
    db: &impl ConnectionTrait,
    audit_ctx: &AuditContext,
    referrals: &[(Uuid, Uuid)],
) -> Result<std::collections::HashMap<Uuid, ClientSummary>, DbErr> {
    let ids: Vec<Uuid> = referrals.iter().map(|(_, client)| *client).collect();
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let rows = Entity::find().filter(Column::Id.is_in(ids)).all(db).await?;
    let mut out = std::collections::HashMap::new();
    let mut shown = std::collections::HashSet::new();
    for m in rows {
        let shared = shares_with_providers(&m).then(|| {
            shown.insert(m.id);
            SharedContact {
                first_name: m.first_name.clone(),
                last_name: m.last_name.clone(),
                email: m.email.clone(),
                phone: m.phone.clone(),
            }
        });
        out.insert(m.id, ClientSummary { id: m.id, shared });
    }
    let entries: Vec<AuditEntry> = referrals
        .iter()
        .filter(|(_, client)| shown.contains(client))
        .map(|(referral, client)| AuditEntry {
            action: action::REFERRAL_CLIENT_SUMMARY,
            resource: "referral",
            resource_id: Some(*referral),
            client_id: Some(*client),
        })
        .collect();
    audit::record(db, audit_ctx, &entries).await?;
    Ok(out)
}

/// What eligibility needs to know of a visible client (status, target
/// groups, date of birth); audited as `referral.create`.
pub async fn eligibility_facts(
    db: &impl ConnectionTrait,
    audit_ctx: &AuditContext,
    scope: &ClientScope,
    id: Uuid,
) -> Result<Option<(String, Vec<String>, Option<chrono::NaiveDate>)>, DbErr> {
    let Some(m) = Entity::find_by_id(id).filter(scope_condition(scope)).one(db).await? else { return Ok(None) };
    if m.status != ClientStatus::Erased.as_str() {
        audit::record(db, audit_ctx, &[entry(action::REFERRAL_CREATE, id)]).await?;
    }
    Ok(Some((m.status, tags::split(&m.target_groups), m.date_of_birth)))
}

/// Inserts many clients in one statement and audits them in one more
/// (bulk loading: `ostwerk seed`). Returns the ids in input order.
pub async fn insert_many(
    db: &impl ConnectionTrait,
    audit_ctx: &AuditContext,
    created_by_org: &str,
    rows: &[ClientFields],
) -> Result<Vec<Uuid>, DbErr> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let (ids, models) = new_rows(created_by_org, rows);
    Entity::insert_many(models).exec_without_returning(db).await?;
    // Bulk loading skips the per-client refresh; the next read rebuilds.
    super::demand::mark_stale(db).await?;
    let entries: Vec<AuditEntry> = ids.iter().map(|id| entry(action::CLIENT_CREATE, *id)).collect();
    audit::record(db, audit_ctx, &entries).await?;
    Ok(ids)
}

/// The rows of new clients (fresh ids, record keys, timestamps), in input
/// order, for [`insert_many`] and [`insert_bulk`].
pub fn new_rows(created_by_org: &str, rows: &[ClientFields]) -> (Vec<Uuid>, Vec<ActiveModel>) {
    let at = now();
    let ids: Vec<Uuid> = rows.iter().map(|_| crate::domain::ids::new_id()).collect();
    let models = rows.iter().zip(&ids).map(|(fields, id)| new_row(*id, created_by_org, fields, at)).collect();
    (ids, models)
}

/// A new client's row: version 1, created and updated `at`.
fn new_row(id: Uuid, created_by_org: &str, fields: &ClientFields, at: chrono::DateTime<chrono::Utc>) -> ActiveModel {
    let mut model = active(fields);
    model.id = Set(id);
    model.created_by_org = Set(created_by_org.to_owned());
    // From the OS generator, not the seed's reproducible one: a record
    // key that can be recomputed would let a reader undo the noise.
    model.record_key = Set(i64::from(cell_key::new_record_key()));
    model.erased_at = Set(None);
    model.created_at = Set(at);
    model.updated_at = Set(at);
    model.version = Set(1);
    model
}

/// [`insert_many`] for the bulk seeder: the rows of [`new_rows`] and one
/// `client.create` audit event each, written through [`BulkTxn`] (`COPY`
/// on PostgreSQL). The same rows as `insert_many`, faster.
pub async fn insert_bulk(
    txn: &mut BulkTxn,
    audit_ctx: &AuditContext,
    ids: &[Uuid],
    models: &[ActiveModel],
) -> Result<(), DbErr> {
    txn.insert(models).await?;
    let entries: Vec<AuditEntry> = ids.iter().map(|id| entry(action::CLIENT_CREATE, *id)).collect();
    txn.insert(&audit::rows(audit_ctx, &entries)).await.map_err(audit::write_failed)
}
