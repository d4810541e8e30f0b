//! The change feed's table: written with every change, read in commit order.
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, Statement, Value,
};
use uuid::Uuid;

use crate::entities::change_event::{ActiveModel, Entity};

/// Who may read every event: the office (admin, caseworker).
pub const OFFICE_TAG: &str = "office:office";
/// Audience tag of events everybody may read (measures are public catalogue data).
pub const PUBLIC_TAG: &str = "public";

pub struct NewChange<'a> {
    pub id: Uuid,
    pub event_type: &'a str,
    pub resource: &'a str,
    pub resource_id: Uuid,
    pub status: Option<&'a str>,
    pub previous_status: Option<&'a str>,
    /// Audience tags (`<kind>:<org>` or [`PUBLIC_TAG`]).
    pub audience: &'a [String],
    pub at: DateTime<Utc>,
}

/// Appends one event (in the caller's transaction; it becomes readable when that commits).
pub async fn insert(db: &impl ConnectionTrait, new: &NewChange<'_>) -> Result<(), DbErr> {
    let model = ActiveModel {
        seq: NotSet,
        id: Set(new.id),
        event_type: Set(new.event_type.to_owned()),
        resource: Set(new.resource.to_owned()),
        resource_id: Set(new.resource_id),
        status: Set(new.status.map(str::to_owned)),
        previous_status: Set(new.previous_status.map(str::to_owned)),
        audience: Set(super::tags::join(new.audience)),
        at: Set(new.at),
    };
    Entity::insert(model).exec_without_returning(db).await.map(|_| ())
}

/// A place in the feed: `(txid, seq)` on PostgreSQL, `(0, seq)` on SQLite.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct FeedPosition {
    pub txid: i64,
    pub seq: i64,
}

#[derive(Debug, Clone, FromQueryResult)]
pub struct FeedRow {
    pub txid: i64,
    pub seq: i64,
    pub id: Uuid,
    pub event_type: String,
    pub resource: String,
    pub resource_id: Uuid,
    pub status: Option<String>,
    pub previous_status: Option<String>,
    pub at: DateTime<Utc>,
}

impl FeedRow {
    pub fn position(&self) -> FeedPosition {
        FeedPosition { txid: self.txid, seq: self.seq }
    }
}

/// Which events a reader gets.
pub struct FeedFilter<'a> {
    /// Audience tags the reader holds; `None`: every event (the office).
    pub audience: Option<&'a [String]>,
    /// Event types; empty: all.
    pub types: &'a [String],
}

fn like_tag(tag: &str) -> String {
    let escaped = tag.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_").replace('|', "");
    format!("%|{escaped}|%")
}

/// Up to `limit` events after `after`, in commit order.
///
/// On PostgreSQL only rows of transactions older than the oldest one still
/// running (`pg_snapshot_xmin` of this statement's snapshot) are returned:
/// every transaction below that horizon has finished, so the set of rows
/// below it is final and no later commit can fill a position before one
/// already returned. Ordering by `(txid, seq)` is then a total order a
/// cursor can resume from. The price: one long transaction anywhere in the
/// cluster holds the feed back until it ends (never reorders or loses it).
/// On SQLite the single pooled connection makes every write transaction
/// serial, so `seq` is assigned in commit order already.
pub async fn page(
    db: &impl ConnectionTrait,
    after: FeedPosition,
    filter: &FeedFilter<'_>,
    limit: u64,
) -> Result<Vec<FeedRow>, DbErr> {
    let backend = db.get_database_backend();
    let postgres = backend == DbBackend::Postgres;
    let mut values: Vec<Value> = Vec::new();
    let param = |v: Value, values: &mut Vec<Value>| {
        values.push(v);
        if postgres { format!("${}", values.len()) } else { "?".to_owned() }
    };
    let columns = "seq, id, event_type, resource, resource_id, status, previous_status, at";
    let mut sql = if postgres {
        let txid = param(after.txid.into(), &mut values);
        let seq = param(after.seq.into(), &mut values);
        format!(
            "SELECT txid::text::bigint AS txid, {columns} FROM change_events \
             WHERE txid < pg_snapshot_xmin(pg_current_snapshot()) \
             AND (txid, seq) > ({txid}::bigint::text::xid8, {seq})"
        )
    } else {
        let seq = param(after.seq.into(), &mut values);
        format!("SELECT CAST(0 AS BIGINT) AS txid, {columns} FROM change_events WHERE seq > {seq}")
    };
    if !filter.types.is_empty() {
        let list: Vec<String> = filter.types.iter().map(|t| param(t.clone().into(), &mut values)).collect();
        sql.push_str(&format!(" AND event_type IN ({})", list.join(", ")));
    }
    if let Some(tags) = filter.audience {
        let mut any: Vec<String> = Vec::new();
        for tag in tags {
            let p = param(like_tag(tag).into(), &mut values);
            any.push(format!("audience LIKE {p} ESCAPE '\\'"));
        }
        if any.is_empty() {
            any.push("1 = 0".to_owned());
        }
        sql.push_str(&format!(" AND ({})", any.join(" OR ")));
    }
    let limit = param((limit as i64).into(), &mut values);
    sql.push_str(&format!(" ORDER BY {} LIMIT {limit}", if postgres { "txid, seq" } else { "seq" }));
    FeedRow::find_by_statement(Statement::from_sql_and_values(backend, sql, values)).all(db).await
}
