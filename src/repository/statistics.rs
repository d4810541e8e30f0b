//! The aggregates behind `/statistics/*` (see `service::statistics`): each
//! a `GROUP BY` in the database that hands back one row per group with its
//! record count and the sum of its records' keys, so no request loads the
//! clients or referrals into memory. Groups are formed by the stored
//! columns (district, the `|a|b|` strings of target groups and occupation
//! codes, measure kind, status flags); the service spreads a group over the
//! cells of its multi-valued dimensions, a few hundred rows at most.
//!
//! Record keys are summed with exact integer arithmetic identical to
//! `cell_key` on both backends: a client's key is `record_key mod 2³²`, a
//! referral's `client key · key_factor mod 2³²`, computed in 16-bit halves
//! so no product leaves a BIGINT.
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Statement, Value};
use uuid::Uuid;

use crate::domain::{
    cell_key::Cell,
    codes::{CodeList, ReferralStatus},
};

/// A client's record key in [0, 2³²), as `key_of` in the service.
const CLIENT_KEY: &str = "(((c.record_key % 4294967296) + 4294967296) % 4294967296)";

/// A referral's record key (`cell_key::derived_key`) from its client's key
/// `k`: `(lo · f + ((hi · f) mod 2¹⁶) · 2¹⁶) mod 2³²` with `k = hi · 2¹⁶ + lo`.
fn referral_key(k: &str) -> String {
    format!("((({k} % 65536) * r.key_factor + ((({k} / 65536) * r.key_factor) % 65536) * 65536) % 4294967296)")
}

/// `'requested', 'on_hold', …`: the statuses of active referrals.
pub(crate) fn active_list() -> String {
    ReferralStatus::ALL
        .iter()
        .filter(|s| s.is_active())
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Bind values with the backend's placeholder syntax.
pub(crate) struct Binds {
    backend: DbBackend,
    values: Vec<Value>,
}

impl Binds {
    pub(crate) fn new(backend: DbBackend) -> Self {
        Self { backend, values: Vec::new() }
    }

    pub(crate) fn push(&mut self, value: impl Into<Value>) -> String {
        self.values.push(value.into());
        match self.backend {
            DbBackend::Postgres => format!("${}", self.values.len()),
            _ => "?".to_owned(),
        }
    }

    pub(crate) fn statement(self, sql: String) -> Statement {
        Statement::from_sql_and_values(self.backend, sql, self.values)
    }
}

pub(crate) fn cell(row: &QueryResult) -> Result<Cell, DbErr> {
    let count: i64 = row.try_get("", "n")?;
    let sum: Option<i64> = row.try_get("", "keys")?;
    Ok(Cell {
        count: u64::try_from(count).unwrap_or(0),
        key: u32::try_from(sum.unwrap_or(0).rem_euclid(1 << 32)).unwrap_or(0),
    })
}

pub(crate) fn flag(row: &QueryResult, name: &str) -> Result<bool, DbErr> {
    Ok(row.try_get::<i32>("", name)? != 0)
}

/// What the demand groups are split by beyond district.
///
/// `target_groups` / `occupation_codes`: the groups carry those values.
/// The raw `GROUP BY` always carries the full stored target groups (and the
/// full occupation codes when asked for); the maintained aggregate
/// (`repository::demand`) answers reads without `from`/`to` from variants
/// already spread over single values (`|tg|`, an occupation field `|81|`),
/// `''` for a dimension not asked for. Either way the service spreads a
/// group with `tags::split` / `tags::fields`, which gives the same cells.
#[derive(Debug, Clone, Copy, Default)]
pub struct DemandSplit {
    pub target_groups: bool,
    pub occupation_codes: bool,
    pub measure_kind: bool,
}

/// Which rows a demand `GROUP BY` covers, and what it groups by beyond the
/// cell. One builder serves the raw answer (whole table, maybe one
/// district and a time range) and the maintained aggregate
/// (`repository::demand`: one client, or every client grouped per client,
/// referrals per UTC day), so the aggregate cannot drift from the raw SQL.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DemandRows<'a> {
    pub district: Option<&'a str>,
    /// Only this client's rows (a contribution).
    pub client: Option<Uuid>,
    /// Adds `client_id` and groups by it (all contributions at once).
    pub per_client: bool,
    /// Referrals created at or after / before (referrals only).
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Adds `day`, the UTC date of `created_at`, and groups by it (referrals only).
    pub by_day: bool,
}

impl DemandRows<'_> {
    /// `, c.id AS client_id` when grouping per client; the number of extra
    /// group columns comes from the caller.
    fn client_column(&self) -> &'static str {
        if self.per_client { ", c.id AS client_id" } else { "" }
    }

    fn push_filters(&self, sql: &mut String, binds: &mut Binds) {
        if let Some(d) = self.district {
            sql.push_str(&format!(" AND c.district = {}", binds.push(d.to_owned())));
        }
        if let Some(id) = self.client {
            sql.push_str(&format!(" AND c.id = {}", binds.push(id)));
        }
    }

    /// `AND r.client_id = …` inside a subquery over referrals, so a
    /// one-client contribution never scans every client's referrals
    /// (SQLite pushes no join condition into a `DISTINCT` subquery).
    fn referral_client(&self, binds: &mut Binds) -> String {
        self.client.map(|id| format!(" AND r.client_id = {}", binds.push(id))).unwrap_or_default()
    }
}

/// `date` of a referral's `created_at` in UTC, as the backend spells it.
pub(crate) fn utc_day(backend: DbBackend, column: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("CAST(({column} AT TIME ZONE 'UTC') AS DATE)"),
        // Stored as RFC 3339 text with an offset; `date()` applies the offset.
        _ => format!("date({column})"),
    }
}

/// Active clients grouped by district, target groups, (occupation codes,)
/// (each distinct kind of their active referrals,) served:
/// `district, target_groups, occupation_codes, kind, served, [client_id,] n, keys`.
/// `served` is a correlated `EXISTS` (an index lookup per client): an
/// `IN (SELECT client_id …)` over every active referral does not fit a
/// hashed subplan in `work_mem` at city scale, and PostgreSQL then rescans
/// the referrals for every client (minutes at 10⁵ clients / 10⁶ referrals).
pub(crate) fn demand_clients_sql(binds: &mut Binds, split: DemandSplit, rows: &DemandRows<'_>) -> String {
    let active = active_list();
    let codes = if split.occupation_codes { "c.occupation_codes" } else { "''" };
    let (kind, kinds_join) = if split.measure_kind {
        let kinds_client = rows.referral_client(binds);
        (
            "k.kind",
            format!(
                " LEFT JOIN (SELECT DISTINCT r.client_id AS client_id, m.kind AS kind FROM referrals r \
                 JOIN measures m ON m.id = r.measure_id WHERE r.status IN ({active}){kinds_client}) k ON k.client_id = c.id"
            ),
        )
    } else {
        ("NULL", String::new())
    };
    let mut sql = format!(
        "SELECT c.district AS district, c.target_groups AS target_groups, {codes} AS occupation_codes, \
         {kind} AS kind, \
         CASE WHEN EXISTS (SELECT 1 FROM referrals r WHERE r.client_id = c.id AND r.status IN ({active})) \
         THEN 1 ELSE 0 END AS served{client_col}, \
         COUNT(*) AS n, CAST(SUM({CLIENT_KEY}) AS BIGINT) AS keys \
         FROM clients c{kinds_join} WHERE c.status = 'active'",
        client_col = rows.client_column(),
    );
    rows.push_filters(&mut sql, binds);
    sql.push_str(if rows.per_client { " GROUP BY 1, 2, 3, 4, 5, 6" } else { " GROUP BY 1, 2, 3, 4, 5" });
    sql
}

/// Active referrals grouped by their client's district, target groups,
/// (occupation codes,) (their measure's kind,) requested, [UTC day]:
/// `district, target_groups, occupation_codes, kind, requested, [day,] [client_id,] n, keys`.
pub(crate) fn demand_referrals_sql(binds: &mut Binds, split: DemandSplit, rows: &DemandRows<'_>) -> String {
    let active = active_list();
    let codes = if split.occupation_codes { "c.occupation_codes" } else { "''" };
    let (kind, measure_join) =
        if split.measure_kind { ("m.kind", " LEFT JOIN measures m ON m.id = r.measure_id") } else { ("NULL", "") };
    let key = referral_key(CLIENT_KEY);
    let day = if rows.by_day { format!(", {} AS day", utc_day(binds.backend, "r.created_at")) } else { String::new() };
    let mut sql = format!(
        "SELECT c.district AS district, c.target_groups AS target_groups, {codes} AS occupation_codes, \
         {kind} AS kind, CASE WHEN r.status = '{requested}' THEN 1 ELSE 0 END AS requested{day}{client_col}, \
         COUNT(*) AS n, CAST(SUM({key}) AS BIGINT) AS keys \
         FROM referrals r JOIN clients c ON c.id = r.client_id{measure_join} WHERE r.status IN ({active})",
        requested = ReferralStatus::Requested.as_str(),
        client_col = rows.client_column(),
    );
    rows.push_filters(&mut sql, binds);
    if let Some(from) = rows.from {
        sql.push_str(&format!(" AND r.created_at >= {}", binds.push(from)));
    }
    if let Some(to) = rows.to {
        sql.push_str(&format!(" AND r.created_at < {}", binds.push(to)));
    }
    let groups = 5 + usize::from(rows.by_day) + usize::from(rows.per_client);
    let positions: Vec<String> = (1..=groups).map(|i| i.to_string()).collect();
    sql.push_str(&format!(" GROUP BY {}", positions.join(", ")));
    sql
}

/// Active clients with the same district, target groups (and occupation
/// codes, and one kind of measure they are actively referred to, when
/// asked for) and whether they have an active referral at all.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClientGroup {
    pub district: Option<String>,
    pub target_groups: String,
    pub occupation_codes: String,
    /// One distinct kind of the client's active referrals; `None` when they
    /// have none with a measure (or the split was not asked for).
    pub kind: Option<String>,
    pub served: bool,
    pub cell: Cell,
}

/// The columns every demand group has: district, target groups,
/// occupation codes, kind.
type GroupKey = (Option<String>, String, String, Option<String>);

fn group_key(row: &QueryResult) -> Result<GroupKey, DbErr> {
    Ok((
        row.try_get("", "district")?,
        row.try_get::<Option<String>>("", "target_groups")?.unwrap_or_default(),
        row.try_get::<Option<String>>("", "occupation_codes")?.unwrap_or_default(),
        row.try_get("", "kind")?,
    ))
}

pub(crate) fn client_group(row: &QueryResult) -> Result<ClientGroup, DbErr> {
    let (district, target_groups, occupation_codes, kind) = group_key(row)?;
    Ok(ClientGroup { district, target_groups, occupation_codes, kind, served: flag(row, "served")?, cell: cell(row)? })
}

/// The client groups: from the maintained aggregate (`repository::demand`),
/// which always answers exactly.
pub async fn demand_clients(
    db: &impl ConnectionTrait,
    district: Option<&str>,
    split: DemandSplit,
) -> Result<Vec<ClientGroup>, DbErr> {
    super::demand::clients(db, district, split).await
}

/// The client groups computed from the base tables (the aggregate's
/// reference; tests compare the two).
pub async fn demand_clients_exact(
    db: &impl ConnectionTrait,
    district: Option<&str>,
    split: DemandSplit,
) -> Result<Vec<ClientGroup>, DbErr> {
    let mut binds = Binds::new(db.get_database_backend());
    let sql = demand_clients_sql(&mut binds, split, &DemandRows { district, ..Default::default() });
    db.query_all_raw(binds.statement(sql)).await?.iter().map(client_group).collect()
}

/// Active referrals (created in `[from, to)`) whose clients share district,
/// target groups (and occupation codes when asked for), with the kind of
/// their measure (when asked for) and whether they are still `requested`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReferralGroup {
    pub district: Option<String>,
    pub target_groups: String,
    pub occupation_codes: String,
    pub kind: Option<String>,
    pub requested: bool,
    pub cell: Cell,
}

pub(crate) fn referral_group(row: &QueryResult) -> Result<ReferralGroup, DbErr> {
    let (district, target_groups, occupation_codes, kind) = group_key(row)?;
    Ok(ReferralGroup {
        district,
        target_groups,
        occupation_codes,
        kind,
        requested: flag(row, "requested")?,
        cell: cell(row)?,
    })
}

/// A bound the day buckets of the aggregate answer exactly: none, or
/// midnight UTC.
fn at_midnight(bound: Option<DateTime<Utc>>) -> bool {
    bound.is_none_or(|t| t.time() == chrono::NaiveTime::MIN)
}

/// The referral groups: from the maintained aggregate when `from` and `to`
/// (those given) are at midnight UTC — `created_at >= from` is then
/// `day >= from`'s date — else from the base tables.
pub async fn demand_referrals(
    db: &impl ConnectionTrait,
    district: Option<&str>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    split: DemandSplit,
) -> Result<Vec<ReferralGroup>, DbErr> {
    if at_midnight(from) && at_midnight(to) {
        let day = |t: Option<DateTime<Utc>>| t.map(|t| t.date_naive());
        return super::demand::referrals(db, district, day(from), day(to), split).await;
    }
    demand_referrals_exact(db, district, from, to, split).await
}

/// The referral groups computed from the base tables (exact for any
/// bounds; the aggregate's reference).
pub async fn demand_referrals_exact(
    db: &impl ConnectionTrait,
    district: Option<&str>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    split: DemandSplit,
) -> Result<Vec<ReferralGroup>, DbErr> {
    let mut binds = Binds::new(db.get_database_backend());
    let rows = DemandRows { district, from, to, ..Default::default() };
    let sql = demand_referrals_sql(&mut binds, split, &rows);
    db.query_all_raw(binds.statement(sql)).await?.iter().map(referral_group).collect()
}

/// Referrals into one measure (created in `[from, to)`) with the same
/// status, outcome class and history flags.
#[derive(Debug)]
pub struct OutcomeFacts {
    pub measure_id: Uuid,
    pub status: String,
    /// The outcome is `employed`, `apprenticeship` or `self_employed`.
    pub into_work: bool,
    /// Went through `accept` at some point.
    pub accepted: bool,
    /// Went through `start` at some point.
    pub started: bool,
    pub cell: Cell,
}

pub async fn outcomes(
    db: &impl ConnectionTrait,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    into_work: &[&str],
) -> Result<Vec<OutcomeFacts>, DbErr> {
    let mut binds = Binds::new(db.get_database_backend());
    let work: Vec<String> = into_work.iter().map(|o| format!("'{o}'")).collect();
    // Referrals of a client that no longer exists count with key 0.
    let key = referral_key(&format!("COALESCE({CLIENT_KEY}, 0)"));
    let ever = |action: &str| {
        format!(
            "CASE WHEN r.id IN (SELECT e.referral_id FROM referral_events e WHERE e.action = '{action}') THEN 1 ELSE 0 END"
        )
    };
    let mut sql = format!(
        "SELECT r.measure_id AS measure_id, r.status AS status, \
         CASE WHEN r.outcome IN ({work}) THEN 1 ELSE 0 END AS into_work, \
         {accepted} AS accepted, {started} AS started, \
         COUNT(*) AS n, CAST(SUM({key}) AS BIGINT) AS keys \
         FROM referrals r LEFT JOIN clients c ON c.id = r.client_id WHERE r.measure_id IS NOT NULL",
        work = work.join(", "),
        accepted = ever("accept"),
        started = ever("start"),
    );
    if let Some(from) = from {
        sql.push_str(&format!(" AND r.created_at >= {}", binds.push(from)));
    }
    if let Some(to) = to {
        sql.push_str(&format!(" AND r.created_at < {}", binds.push(to)));
    }
    sql.push_str(" GROUP BY 1, 2, 3, 4, 5");
    db.query_all_raw(binds.statement(sql))
        .await?
        .iter()
        .map(|row| {
            Ok(OutcomeFacts {
                measure_id: row.try_get("", "measure_id")?,
                status: row.try_get("", "status")?,
                into_work: flag(row, "into_work")?,
                accepted: flag(row, "accepted")?,
                started: flag(row, "started")?,
                cell: cell(row)?,
            })
        })
        .collect()
}

/// The record keys of the clients that applied for funding themselves
/// (not of every client).
pub async fn applicant_client_keys(db: &impl ConnectionTrait) -> Result<Vec<(Uuid, i64)>, DbErr> {
    let sql = "SELECT c.id AS id, c.record_key AS record_key FROM clients c \
               WHERE c.id IN (SELECT a.applicant_id FROM funding_applications a WHERE a.applicant_kind = 'client')";
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?
        .iter()
        .map(|row| Ok((row.try_get("", "id")?, row.try_get("", "record_key")?)))
        .collect()
}
