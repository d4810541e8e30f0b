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
fn active_list() -> String {
    ReferralStatus::ALL
        .iter()
        .filter(|s| s.is_active())
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Bind values with the backend's placeholder syntax.
struct Binds {
    backend: DbBackend,
    values: Vec<Value>,
}

impl Binds {
    fn new(backend: DbBackend) -> Self {
        Self { backend, values: Vec::new() }
    }

    fn push(&mut self, value: impl Into<Value>) -> String {
        self.values.push(value.into());
        match self.backend {
            DbBackend::Postgres => format!("${}", self.values.len()),
            _ => "?".to_owned(),
        }
    }

    fn statement(self, sql: String) -> Statement {
        Statement::from_sql_and_values(self.backend, sql, self.values)
    }
}

fn cell(row: &QueryResult) -> Result<Cell, DbErr> {
    let count: i64 = row.try_get("", "n")?;
    let sum: Option<i64> = row.try_get("", "keys")?;
    Ok(Cell {
        count: u64::try_from(count).unwrap_or(0),
        key: u32::try_from(sum.unwrap_or(0).rem_euclid(1 << 32)).unwrap_or(0),
    })
}

fn flag(row: &QueryResult, name: &str) -> Result<bool, DbErr> {
    Ok(row.try_get::<i32>("", name)? != 0)
}

/// What the demand groups are split by beyond district and target groups.
#[derive(Debug, Clone, Copy)]
pub struct DemandSplit {
    pub occupation_codes: bool,
    pub measure_kind: bool,
}

/// Active clients with the same district, target groups (and occupation
/// codes, and one kind of measure they are actively referred to, when
/// asked for) and whether they have an active referral at all.
#[derive(Debug)]
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

pub async fn demand_clients(
    db: &impl ConnectionTrait,
    district: Option<&str>,
    split: DemandSplit,
) -> Result<Vec<ClientGroup>, DbErr> {
    let active = active_list();
    let mut binds = Binds::new(db.get_database_backend());
    let codes = if split.occupation_codes { "c.occupation_codes" } else { "''" };
    let (kind, kinds_join) = if split.measure_kind {
        (
            "k.kind",
            format!(
                " LEFT JOIN (SELECT DISTINCT r.client_id AS client_id, m.kind AS kind FROM referrals r \
                 JOIN measures m ON m.id = r.measure_id WHERE r.status IN ({active})) k ON k.client_id = c.id"
            ),
        )
    } else {
        ("NULL", String::new())
    };
    let mut sql = format!(
        "SELECT c.district AS district, c.target_groups AS target_groups, {codes} AS occupation_codes, \
         {kind} AS kind, \
         CASE WHEN c.id IN (SELECT r.client_id FROM referrals r WHERE r.status IN ({active})) THEN 1 ELSE 0 END AS served, \
         COUNT(*) AS n, CAST(SUM({CLIENT_KEY}) AS BIGINT) AS keys \
         FROM clients c{kinds_join} WHERE c.status = 'active'"
    );
    if let Some(d) = district {
        sql.push_str(&format!(" AND c.district = {}", binds.push(d.to_owned())));
    }
    sql.push_str(" GROUP BY 1, 2, 3, 4, 5");
    db.query_all_raw(binds.statement(sql))
        .await?
        .iter()
        .map(|row| {
            Ok(ClientGroup {
                district: row.try_get("", "district")?,
                target_groups: row.try_get::<Option<String>>("", "target_groups")?.unwrap_or_default(),
                occupation_codes: row.try_get::<Option<String>>("", "occupation_codes")?.unwrap_or_default(),
                kind: row.try_get("", "kind")?,
                served: flag(row, "served")?,
                cell: cell(row)?,
            })
        })
        .collect()
}

/// Active referrals (created in `[from, to)`) whose clients share district,
/// target groups (and occupation codes when asked for), with the kind of
/// their measure (when asked for) and whether they are still `requested`.
#[derive(Debug)]
pub struct ReferralGroup {
    pub district: Option<String>,
    pub target_groups: String,
    pub occupation_codes: String,
    pub kind: Option<String>,
    pub requested: bool,
    pub cell: Cell,
}

pub async fn demand_referrals(
    db: &impl ConnectionTrait,
    district: Option<&str>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    split: DemandSplit,
) -> Result<Vec<ReferralGroup>, DbErr> {
    let active = active_list();
    let mut binds = Binds::new(db.get_database_backend());
    let codes = if split.occupation_codes { "c.occupation_codes" } else { "''" };
    let (kind, measure_join) =
        if split.measure_kind { ("m.kind", " LEFT JOIN measures m ON m.id = r.measure_id") } else { ("NULL", "") };
    let key = referral_key(CLIENT_KEY);
    let mut sql = format!(
        "SELECT c.district AS district, c.target_groups AS target_groups, {codes} AS occupation_codes, \
         {kind} AS kind, CASE WHEN r.status = '{requested}' THEN 1 ELSE 0 END AS requested, \
         COUNT(*) AS n, CAST(SUM({key}) AS BIGINT) AS keys \
         FROM referrals r JOIN clients c ON c.id = r.client_id{measure_join} WHERE r.status IN ({active})",
        requested = ReferralStatus::Requested.as_str(),
    );
    if let Some(d) = district {
        sql.push_str(&format!(" AND c.district = {}", binds.push(d.to_owned())));
    }
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
            Ok(ReferralGroup {
                district: row.try_get("", "district")?,
                target_groups: row.try_get::<Option<String>>("", "target_groups")?.unwrap_or_default(),
                occupation_codes: row.try_get::<Option<String>>("", "occupation_codes")?.unwrap_or_default(),
                kind: row.try_get("", "kind")?,
                requested: flag(row, "requested")?,
                cell: cell(row)?,
            })
        })
        .collect()
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
