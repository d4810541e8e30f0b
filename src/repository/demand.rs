//! The maintained demand aggregate behind `/statistics/demand` (issue 8).
//!
//! The raw `GROUP BY`s of `repository::statistics` read every client and
//! every active referral on each request (≈ 1 s at 100 000 clients, the
//! statement timeout at 1 000 000 referrals). Instead, every transaction
//! that can change what a client counts for calls [`refresh`], which keeps
//! two tables:
//!
//! - `demand_contributions`: what each client currently contributes, the
//!   same `GROUP BY` as the raw answer restricted to the one client (one
//!   builder, `statistics::demand_*_sql`), in four parts: `client` (the
//!   unsplit client groups), `client_kind` (split by the distinct kinds of
//!   the client's active referrals), `referral` (its active referrals by
//!   kind, `requested` and UTC creation day) and `referral_total` (the same
//!   without the day, for reads without `from`/`to`). `flag` is `served` for the
//!   client parts and `requested` for the referral part; occupation codes
//!   are always the full stored string (a read that does not split by them
//!   drops them).
//! - `demand_cells`: an append-only log of deltas (new contribution minus
//!   old, zero rows dropped), **pre-spread** ([`spread`]): the parts read
//!   without `from`/`to` (`client`, `client_kind`, `referral_total`) are
//!   stored once per variant `<part>`, `<part>+tg`, `<part>+of`,
//!   `<part>+tg+of`, in which a spread dimension holds ONE value (`|tg|`,
//!   an occupation field as `|81|`) and a dimension not in the variant
//!   `''`. A read thus sums a few rows per output cell (7 districts × ≈ 10
//!   target groups × 13 fields × kinds) instead of one per distinct stored
//!   `|a|b|` string (820 target-group strings at city scale), and the
//!   service's spreading of the few groups it gets is trivial. The per-day
//!   `referral` part keeps the full strings (its days multiply the rows;
//!   reads with `from`/`to` use it and the service spreads as before).
//!   The contributions keep the full strings (a third of the rows); a
//!   refresh spreads the old and the new contribution and appends the
//!   difference. A read sums the log per cell. Appending instead of
//!   updating one shared row per cell keeps concurrent writers apart: two
//!   referral POSTs for clients of the same district never wait for each
//!   other. [`compact`] folds the log in the background so reads stay short.
//!
//! [`rebuild`] recomputes both tables from the base tables (after bulk
//! loading, which bypasses the services).
use std::collections::BTreeMap;

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, QueryResult, Statement, TransactionTrait};
use uuid::Uuid;

use crate::domain::cell_key::Cell;

use super::{
    statistics::{
        Binds, ClientGroup, DemandRows, DemandSplit, ReferralGroup, demand_clients_sql, demand_referrals_sql,
        referral_group,
    },
    tags,
};

/// The unsplit client groups.
const PART_CLIENT: &str = "client";
/// Client groups split by the distinct kinds of their active referrals.
const PART_CLIENT_KIND: &str = "client_kind";
/// Active referrals by kind, `requested` and UTC creation day (reads with `from`/`to`).
const PART_REFERRAL: &str = "referral";
/// The same without the day (`day` NULL): reads without `from`/`to` sum a
/// few rows per group instead of one per day.
const PART_REFERRAL_TOTAL: &str = "referral_total";

/// The parts of a contribution that are spread into variants in the log.
const SPREAD_PARTS: [&str; 3] = [PART_CLIENT, PART_CLIENT_KIND, PART_REFERRAL_TOTAL];

/// The name of the log variant of `part` spread over target groups and/or
/// occupation fields (at most 20 characters, the column's width).
fn variant(part: &str, target_groups: bool, occupation_fields: bool) -> String {
    let tg = if target_groups { "+tg" } else { "" };
    let of = if occupation_fields { "+of" } else { "" };
    format!("{part}{tg}{of}")
}

/// The columns that make a cell (all but the counts `n` and `keys`).
const CELL: &str = "part, district, target_groups, occupation_codes, kind, flag, day";

/// A cell of the aggregate (or of one client's contribution).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct CellKey {
    part: String,
    district: Option<String>,
    target_groups: Option<String>,
    occupation_codes: Option<String>,
    kind: Option<String>,
    flag: i32,
    day: Option<NaiveDate>,
}

/// Record count and key sum of a cell (plain integers: a delta may be
/// negative; the reader reduces the key sum mod 2³²).
type Counts = (i64, i64);

type Cells = BTreeMap<CellKey, Counts>;

/// One `SELECT` of the four parts of the contributions of one client
/// (`rows.client`) or of every client (`rows.per_client`, adds
/// `client_id`): `part, district, target_groups, occupation_codes, kind,
/// flag, day, [client_id,] n, keys`. The parts are the raw demand SQL.
fn contribution_sql(binds: &mut Binds, rows: &DemandRows<'_>) -> String {
    let full = DemandSplit { target_groups: true, occupation_codes: true, measure_kind: false };
    let kinds = DemandSplit { target_groups: true, occupation_codes: true, measure_kind: true };
    let clients = demand_clients_sql(binds, full, rows);
    let client_kinds = demand_clients_sql(binds, kinds, rows);
    let referrals = demand_referrals_sql(binds, kinds, &DemandRows { by_day: true, ..*rows });
    let totals = demand_referrals_sql(binds, kinds, rows);
    let id = if rows.per_client { ", client_id" } else { "" };
    // `CAST(NULL AS DATE)`: PostgreSQL types a bare NULL of the first
    // branches as text, which no `UNION` matches with the date of the last.
    format!(
        "SELECT '{PART_CLIENT}' AS part, district, target_groups, occupation_codes, kind, served AS flag, \
         CAST(NULL AS DATE) AS day{id}, n, keys FROM ({clients}) g1 \
         UNION ALL SELECT '{PART_CLIENT_KIND}', district, target_groups, occupation_codes, kind, served, \
         CAST(NULL AS DATE){id}, n, keys FROM ({client_kinds}) g2 \
         UNION ALL SELECT '{PART_REFERRAL}', district, target_groups, occupation_codes, kind, requested, \
         day{id}, n, keys FROM ({referrals}) g3 \
         UNION ALL SELECT '{PART_REFERRAL_TOTAL}', district, target_groups, occupation_codes, kind, requested, \
         CAST(NULL AS DATE){id}, n, keys FROM ({totals}) g4"
    )
}

fn cells_of(rows: Vec<QueryResult>) -> Result<Cells, DbErr> {
    let mut cells = Cells::new();
    for row in rows {
        let key = CellKey {
            part: row.try_get("", "part")?,
            district: row.try_get("", "district")?,
            target_groups: row.try_get("", "target_groups")?,
            occupation_codes: row.try_get("", "occupation_codes")?,
            kind: row.try_get("", "kind")?,
            flag: row.try_get("", "flag")?,
            day: row.try_get("", "day")?,
        };
        let n: i64 = row.try_get("", "n")?;
        let keys: Option<i64> = row.try_get("", "keys")?;
        let entry = cells.entry(key).or_default();
        entry.0 += n;
        entry.1 += keys.unwrap_or(0);
    }
    Ok(cells)
}

/// One value per cell of a dimension spread in a variant (`|v|`, the stored
/// tag format), or `''` once when the group has none or the variant does
/// not spread it (the service turns `''` into the `None` cell).
fn spread_values(spread: bool, values: Vec<String>) -> Vec<String> {
    if !spread || values.is_empty() { vec![String::new()] } else { values.iter().map(|v| tags::join([v])).collect() }
}

/// The log rows of contribution cells: the `referral` part as it is, every
/// other part once per variant (see the module doc), each spread row with
/// the `n` and `keys` of its source group. Linear (the spread of a sum is
/// the sum of the spreads), so refresh can diff spread contributions and
/// rebuild can spread sums. The one function both use.
fn spread(cells: &Cells) -> Cells {
    let mut out = Cells::new();
    let mut add = |key: CellKey, (n, keys): Counts| {
        let entry = out.entry(key).or_default();
        entry.0 += n;
        entry.1 += keys;
    };
    for (key, counts) in cells {
        if !SPREAD_PARTS.contains(&key.part.as_str()) {
            add(key.clone(), *counts);
            continue;
        }
        let groups = tags::split(key.target_groups.as_deref().unwrap_or(""));
        let fields = tags::fields(key.occupation_codes.as_deref().unwrap_or(""));
        for by_tg in [false, true] {
            for by_of in [false, true] {
                let part = variant(&key.part, by_tg, by_of);
                for tg in spread_values(by_tg, groups.clone()) {
                    for of in spread_values(by_of, fields.clone()) {
                        let row = CellKey {
                            part: part.clone(),
                            target_groups: Some(tg.clone()),
                            occupation_codes: Some(of),
                            day: None,
                            ..key.clone()
                        };
                        add(row, *counts);
                    }
                }
            }
        }
    }
    out.retain(|_, counts| *counts != (0, 0));
    out
}

/// Most rows in one `INSERT` of cells.
const CHUNK: usize = 500;

/// The `VALUES` rows of `cells` (with `client` as last column when given).
fn values_sql(binds: &mut Binds, client: Option<Uuid>, cells: &[(&CellKey, &Counts)]) -> String {
    let rows: Vec<String> = cells
        .iter()
        .map(|(k, (n, keys))| {
            let mut v = vec![
                binds.push(k.part.clone()),
                binds.push(k.district.clone()),
                binds.push(k.target_groups.clone()),
                binds.push(k.occupation_codes.clone()),
                binds.push(k.kind.clone()),
                binds.push(k.flag),
                binds.push(k.day),
                binds.push(*n),
                binds.push(*keys),
            ];
            if let Some(id) = client {
                v.push(binds.push(id));
            }
            format!("({})", v.join(", "))
        })
        .collect();
    rows.join(", ")
}

/// `INSERT INTO <table> (<cell>, n, keys[, client_id]) VALUES …`
fn insert_sql(binds: &mut Binds, table: &str, client: Option<Uuid>, cells: &[(&CellKey, &Counts)]) -> String {
    let id = if client.is_some() { ", client_id" } else { "" };
    format!("INSERT INTO {table} ({CELL}, n, keys{id}) VALUES {}", values_sql(binds, client, cells))
}

/// Inserts `cells` into `table` (`demand_cells`, or `demand_contributions`
/// with `client`), [`CHUNK`] rows per statement.
async fn insert(db: &impl ConnectionTrait, table: &str, client: Option<Uuid>, cells: &Cells) -> Result<(), DbErr> {
    let entries: Vec<_> = cells.iter().collect();
    for chunk in entries.chunks(CHUNK) {
        let mut binds = Binds::new(db.get_database_backend());
        let sql = insert_sql(&mut binds, table, client, chunk);
        db.execute_raw(binds.statement(sql)).await?;
    }
    Ok(())
}

/// Brings client `client_id`'s contribution up to date, in the caller's
/// transaction, after its last change to the client or its referrals.
///
/// On PostgreSQL the client row is locked first, so two transactions
/// refreshing one client take turns, and the second (READ COMMITTED) reads
/// the first one's committed contribution and data. `FOR NO KEY UPDATE`,
/// not `FOR UPDATE`: a referral insert holds `FOR KEY SHARE` on its client
/// (the foreign key check), which `FOR UPDATE` waits for — two concurrent
/// referral POSTs for one client would each hold one and wait for the
/// other (a deadlock). `FOR NO KEY UPDATE` conflicts with itself (and with
/// an `UPDATE` of the client) but not with key-share locks.
pub async fn refresh(db: &impl ConnectionTrait, client_id: Uuid) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    if backend == DbBackend::Postgres {
        let sql = "SELECT id FROM clients WHERE id = $1 FOR NO KEY UPDATE";
        db.query_all_raw(Statement::from_sql_and_values(backend, sql, [client_id.into()])).await?;
    }
    // One round trip: the contribution as it is now (`old` 0) and as it was
    // last stored (`old` 1), read after the lock.
    let mut binds = Binds::new(backend);
    let current = contribution_sql(&mut binds, &DemandRows { client: Some(client_id), ..Default::default() });
    let id = binds.push(client_id);
    let sql = format!(
        "SELECT 0 AS old, cur.* FROM ({current}) cur \
         UNION ALL SELECT 1, {CELL}, n, keys FROM demand_contributions WHERE client_id = {id}"
    );
    let (mut stored, mut current) = (Vec::new(), Vec::new());
    for row in db.query_all_raw(binds.statement(sql)).await? {
        if row.try_get::<i32>("", "old")? == 0 { current.push(row) } else { stored.push(row) }
    }
    let (new, old) = (cells_of(current)?, cells_of(stored)?);
    if new == old {
        return Ok(());
    }
    let mut delta = spread(&new);
    for (key, (n, keys)) in spread(&old) {
        let entry = delta.entry(key).or_default();
        entry.0 -= n;
        entry.1 -= keys;
    }
    delta.retain(|_, counts| *counts != (0, 0));
    let mut binds = Binds::new(backend);
    let id = binds.push(client_id);
    let delete = format!("DELETE FROM demand_contributions WHERE client_id = {id}");
    if backend == DbBackend::Postgres && delta.len() <= CHUNK && new.len() <= CHUNK {
        let (delta, new_rows): (Vec<_>, Vec<_>) = (delta.iter().collect(), new.iter().collect());
        // One statement on PostgreSQL: append the delta to the log and
        // replace the stored contribution (data-modifying CTEs all run).
        let mut ctes = vec![format!("gone AS ({delete})")];
        if !delta.is_empty() {
            ctes.push(format!("logged AS ({})", insert_sql(&mut binds, "demand_cells", None, &delta)));
        }
        let last = if new_rows.is_empty() {
            "SELECT 1".to_owned()
        } else {
            insert_sql(&mut binds, "demand_contributions", Some(client_id), &new_rows)
        };
        let sql = format!("WITH {} {last}", ctes.join(", "));
        db.execute_raw(binds.statement(sql)).await?;
        return Ok(());
    }
    insert(db, "demand_cells", None, &delta).await?;
    db.execute_raw(binds.statement(delete)).await?;
    insert(db, "demand_contributions", Some(client_id), &new).await
}

/// [`refresh`] for several clients, in id order (two transactions locking
/// overlapping sets lock them in the same order, so neither deadlocks).
pub async fn refresh_all(db: &impl ConnectionTrait, mut client_ids: Vec<Uuid>) -> Result<(), DbErr> {
    client_ids.sort();
    client_ids.dedup();
    for id in client_ids {
        refresh(db, id).await?;
    }
    Ok(())
}

/// The clients with an active referral into `measure_id` (whose
/// contributions change with the measure's kind).
pub async fn clients_in_measure(db: &impl ConnectionTrait, measure_id: Uuid) -> Result<Vec<Uuid>, DbErr> {
    let backend = db.get_database_backend();
    let p = if backend == DbBackend::Postgres { "$1" } else { "?" };
    let sql = format!(
        "SELECT DISTINCT r.client_id AS client_id FROM referrals r WHERE r.measure_id = {p} AND r.status IN ({})",
        super::statistics::active_list()
    );
    db.query_all_raw(Statement::from_sql_and_values(backend, sql, [measure_id.into()]))
        .await?
        .iter()
        .map(|row| row.try_get("", "client_id"))
        .collect()
}

/// On PostgreSQL, locks measure `measure_id` against referral inserts
/// until the caller's transaction ends, before a change of its kind. A
/// referral insert holds `FOR KEY SHARE` on its measure (the foreign key
/// check), which conflicts with `FOR UPDATE` only: either the insert
/// committed first (and the kind change, reading after this lock, finds and
/// refreshes its client), or it waits and its own refresh reads the new kind.
pub async fn lock_measure(db: &impl ConnectionTrait, measure_id: Uuid) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    if backend == DbBackend::Postgres {
        let sql = "SELECT id FROM measures WHERE id = $1 FOR UPDATE";
        db.query_all_raw(Statement::from_sql_and_values(backend, sql, [measure_id.into()])).await?;
    }
    Ok(())
}

/// `SELECT <cell columns>, SUM(n), SUM(keys) FROM demand_cells WHERE part = …`
/// with the optional district filter, for the per-day `referral` part: it
/// holds the full strings, dropped here when not asked for.
fn read_sql(binds: &mut Binds, part: &str, split: DemandSplit, flag: &str, district: Option<&str>) -> String {
    let groups = if split.target_groups { "target_groups" } else { "''" };
    let codes = if split.occupation_codes { "occupation_codes" } else { "''" };
    let kind = if split.measure_kind { "kind" } else { "NULL" };
    let mut sql = format!(
        "SELECT district, {groups} AS target_groups, {codes} AS occupation_codes, {kind} AS kind, flag AS {flag}, \
         CAST(SUM(n) AS BIGINT) AS n, CAST(SUM(keys) AS BIGINT) AS keys FROM demand_cells WHERE part = '{part}'"
    );
    if let Some(d) = district {
        sql.push_str(&format!(" AND district = {}", binds.push(d.to_owned())));
    }
    sql
}

/// The client groups of `statistics::demand_clients`, from the aggregate.
pub(crate) async fn clients(
    db: &impl ConnectionTrait,
    district: Option<&str>,
    split: DemandSplit,
) -> Result<Vec<ClientGroup>, DbErr> {
    let part = if split.measure_kind { PART_CLIENT_KIND } else { PART_CLIENT };
    let part = variant(part, split.target_groups, split.occupation_codes);
    Ok(read_variant(db, &part, split, district)
        .await?
        .into_iter()
        .map(|((district, target_groups, occupation_codes, kind, served), cell)| ClientGroup {
            district,
            target_groups,
            occupation_codes,
            kind,
            served,
            cell,
        })
        .collect())
}

/// A group of a spread variant: district, target groups, occupation codes,
/// kind, flag.
type VariantGroup = (Option<String>, String, String, Option<String>, bool);

/// The groups of a spread variant (`clients`, and `referrals` without
/// `from`/`to`), summed in Rust rather than by `GROUP BY … SUM`: the rows
/// are a few per cell (one after compaction, plus the deltas appended
/// since), and PostgreSQL sums a BIGINT as NUMERIC, which took as long as
/// reading the rows (≈ 15 ms of 25 ms for the 12 700 rows of
/// `referral_total+tg+of` at city scale). Exact: `n` adds up as in SQL, the
/// key sum wraps mod 2⁶⁴, which keeps it mod 2³² (all the reader uses).
/// Groups summing to `n = 0` are dropped (`HAVING SUM(n) <> 0`).
async fn read_variant(
    db: &impl ConnectionTrait,
    part: &str,
    split: DemandSplit,
    district: Option<&str>,
) -> Result<Vec<(VariantGroup, Cell)>, DbErr> {
    let kind = if split.measure_kind { "kind" } else { "NULL" };
    let mut binds = Binds::new(db.get_database_backend());
    // `part` as a literal (one of ours), not a bind: a prepared statement's
    // generic plan cannot tell a variant of a few thousand rows from the
    // per-day part of hundreds of thousands and scans the whole log.
    let mut sql = format!(
        "SELECT district, target_groups, occupation_codes, {kind} AS kind, flag, n, keys FROM demand_cells \
         WHERE part = '{part}'"
    );
    if let Some(d) = district {
        sql.push_str(&format!(" AND district = {}", binds.push(d.to_owned())));
    }
    let mut sums: BTreeMap<VariantGroup, (i64, i64)> = BTreeMap::new();
    for row in db.query_all_raw(binds.statement(sql)).await? {
        let group = (
            row.try_get("", "district")?,
            row.try_get::<Option<String>>("", "target_groups")?.unwrap_or_default(),
            row.try_get::<Option<String>>("", "occupation_codes")?.unwrap_or_default(),
            row.try_get("", "kind")?,
            row.try_get::<i32>("", "flag")? != 0,
        );
        let entry = sums.entry(group).or_default();
        entry.0 += row.try_get::<i64>("", "n")?;
        entry.1 = entry.1.wrapping_add(row.try_get::<i64>("", "keys")?);
    }
    Ok(sums
        .into_iter()
        .filter(|(_, (n, _))| *n != 0)
        .map(|(group, (n, keys))| {
            let cell = Cell {
                count: u64::try_from(n).unwrap_or(0),
                key: u32::try_from(keys.rem_euclid(1 << 32)).unwrap_or(0),
            };
            (group, cell)
        })
        .collect())
}

/// The referral groups of `statistics::demand_referrals` for referrals
/// created on days in `[from, to)`, from the aggregate.
pub(crate) async fn referrals(
    db: &impl ConnectionTrait,
    district: Option<&str>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    split: DemandSplit,
) -> Result<Vec<ReferralGroup>, DbErr> {
    if from.is_none() && to.is_none() {
        let part = variant(PART_REFERRAL_TOTAL, split.target_groups, split.occupation_codes);
        return Ok(read_variant(db, &part, split, district)
            .await?
            .into_iter()
            .map(|((district, target_groups, occupation_codes, kind, requested), cell)| ReferralGroup {
                district,
                target_groups,
                occupation_codes,
                kind,
                requested,
                cell,
            })
            .collect());
    }
    // The per-day part: full strings, one row per day; summed in SQL.
    let mut binds = Binds::new(db.get_database_backend());
    let mut sql = read_sql(&mut binds, PART_REFERRAL, split, "requested", district);
    if let Some(from) = from {
        sql.push_str(&format!(" AND day >= {}", binds.push(from)));
    }
    if let Some(to) = to {
        sql.push_str(&format!(" AND day < {}", binds.push(to)));
    }
    sql.push_str(" GROUP BY 1, 2, 3, 4, 5 HAVING SUM(n) <> 0");
    db.query_all_raw(binds.statement(sql)).await?.iter().map(referral_group).collect()
}

/// The largest id in the log (`None` when empty): the compaction task
/// skips a round when nothing was appended since its last one.
pub async fn last_cell_id(db: &impl ConnectionTrait) -> Result<Option<i64>, DbErr> {
    let sql = "SELECT MAX(id) AS id FROM demand_cells";
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await?;
    Ok(row.map(|r| r.try_get::<Option<i64>>("", "id")).transpose()?.flatten())
}

/// A cell's columns as one comparable row value (NULLs made comparable), to
/// find the rows of the cells touched since the last fold.
const CELL_KEY: &str = "part, COALESCE(district, ''), COALESCE(target_groups, ''), \
     COALESCE(occupation_codes, ''), COALESCE(kind, ''), flag, COALESCE(day, '0001-01-01')";

/// Folds the log: the rows of each cell become one (cells that sum to zero
/// disappear). With `since` (the id the last fold left the log at), only
/// the cells with a row appended after it are folded, so a fold rewrites
/// what changed, not the whole log; `None` folds every cell. Returns the
/// log's last id afterwards, the `since` of the next fold.
///
/// On PostgreSQL one statement: the rows it deletes are the ones it sums,
/// so a delta appended concurrently (not in its snapshot) stays as it is,
/// and a second compactor running at once skips the rows the first
/// deleted. On SQLite (one connection) a transaction.
pub async fn compact(db: &DatabaseConnection, since: Option<i64>) -> Result<Option<i64>, DbErr> {
    let Some(last) = last_cell_id(db).await? else { return Ok(None) };
    if since.is_some_and(|s| s >= last) {
        return Ok(Some(last));
    }
    let touched = match since {
        Some(s) => {
            format!(" AND ({CELL_KEY}) IN (SELECT {CELL_KEY} FROM demand_cells WHERE id > {s} AND id <= {last})")
        }
        None => String::new(),
    };
    let sums = "SUM(n), SUM(keys)";
    if db.get_database_backend() == DbBackend::Postgres {
        let sql = format!(
            "WITH moved AS (DELETE FROM demand_cells WHERE id <= {last}{touched} RETURNING {CELL}, n, keys) \
             INSERT INTO demand_cells ({CELL}, n, keys) SELECT {CELL}, {sums} FROM moved \
             GROUP BY {CELL} HAVING SUM(n) <> 0 OR SUM(keys) <> 0"
        );
        db.execute_unprepared(&sql).await?;
        return last_cell_id(db).await;
    }
    let txn = db.begin().await?;
    let sql = format!(
        "INSERT INTO demand_cells ({CELL}, n, keys) SELECT {CELL}, {sums} FROM demand_cells WHERE id <= {last}{touched} \
         GROUP BY {CELL} HAVING SUM(n) <> 0 OR SUM(keys) <> 0"
    );
    txn.execute_unprepared(&sql).await?;
    txn.execute_unprepared(&format!("DELETE FROM demand_cells WHERE id <= {last}{touched}")).await?;
    let after = last_cell_id(&txn).await?;
    txn.commit().await?;
    Ok(after)
}

/// Marks the aggregate stale: the next [`ensure_fresh`] rebuilds it. For
/// writes that bypass [`refresh`] (bulk loading); a change of a record key
/// or key factor by hand marks it through a trigger (the service never
/// changes those after insert).
pub async fn mark_stale(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    db.execute_unprepared("UPDATE demand_state SET stale = 1 WHERE id = 1 AND stale = 0").await?;
    Ok(())
}

/// Rebuilds the aggregate if it was marked stale (one indexed read otherwise).
pub async fn ensure_fresh(db: &DatabaseConnection) -> Result<(), DbErr> {
    let sql = "SELECT stale FROM demand_state WHERE id = 1";
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await?;
    let stale = row.map(|r| r.try_get::<i32>("", "stale")).transpose()?.unwrap_or(0) != 0;
    if stale {
        tracing::info!("demand statistics aggregate marked stale: rebuilding it");
        rebuild_with(db, true).await?;
    }
    Ok(())
}

/// Recomputes both tables from the base tables in one transaction.
pub async fn rebuild(db: &DatabaseConnection) -> Result<(), DbErr> {
    rebuild_with(db, false).await
}

/// Recomputes both tables (after bulk loading, e.g. `ostwerk seed`, and on
/// the first read after migration 000040, which only marks the aggregate
/// stale). With `only_if_stale` (the read path) it does nothing when
/// another instance or request has rebuilt it meanwhile.
///
/// The first statement clears the stale flag with an `UPDATE` of the one
/// `demand_state` row: it locks that row (PostgreSQL) or the database
/// (SQLite) until the commit, so two requests finding the aggregate stale
/// at once rebuild one after the other, and the second — its `UPDATE`
/// re-checking `stale = 1` on the committed row — finds nothing to do
/// instead of rebuilding again. A trigger marking it stale meanwhile waits
/// for the row, so its mark lands after the rebuild and is not lost. On
/// PostgreSQL the rebuild then locks both tables until the commit
/// (contributions first, as a refresh does), so a concurrent [`refresh`]
/// waits and then applies its change on top of the rebuilt state.
///
/// The contributions are the per-client `GROUP BY` (one `INSERT … SELECT`,
/// full strings). The log is their sum per cell, which for the spread parts
/// cannot be SQL: the sums are read back from the (locked, just written)
/// contributions part by part, spread in Rust by [`spread`] and inserted
/// in multi-row batches.
async fn rebuild_with(db: &DatabaseConnection, only_if_stale: bool) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    let backend = txn.get_database_backend();
    if backend == DbBackend::Postgres {
        // A request finding the aggregate stale while another rebuilds it
        // waits for that rebuild (bounded by the statement timeout) instead
        // of failing after the usual lock timeout, then finds it fresh.
        txn.execute_unprepared("SET LOCAL lock_timeout = 0").await?;
    }
    let claim = if only_if_stale {
        "UPDATE demand_state SET stale = 0 WHERE id = 1 AND stale = 1"
    } else {
        "UPDATE demand_state SET stale = 0 WHERE id = 1"
    };
    if txn.execute_unprepared(claim).await?.rows_affected() == 0 && only_if_stale {
        return txn.commit().await;
    }
    if backend == DbBackend::Postgres {
        // One pass over every client and referral: longer than a request may take.
        txn.execute_unprepared("SET LOCAL statement_timeout = 0").await?;
        // In the order a refresh takes them (it reads its contribution
        // before it appends to the log): the other order deadlocks with a
        // refresh that has read and not yet appended.
        txn.execute_unprepared("LOCK TABLE demand_contributions, demand_cells IN ACCESS EXCLUSIVE MODE").await?;
        txn.execute_unprepared("TRUNCATE demand_contributions, demand_cells").await?;
    } else {
        txn.execute_unprepared("DELETE FROM demand_cells").await?;
        txn.execute_unprepared("DELETE FROM demand_contributions").await?;
    }
    let mut binds = Binds::new(backend);
    let select = contribution_sql(&mut binds, &DemandRows { per_client: true, ..Default::default() });
    let sql = format!("INSERT INTO demand_contributions ({CELL}, client_id, n, keys) {select}");
    txn.execute_raw(binds.statement(sql)).await?;
    let sql = format!(
        "INSERT INTO demand_cells ({CELL}, n, keys) SELECT {CELL}, SUM(n), SUM(keys) FROM demand_contributions \
         WHERE part = '{PART_REFERRAL}' GROUP BY {CELL}"
    );
    txn.execute_unprepared(&sql).await?;
    for part in SPREAD_PARTS {
        // The sums per full-string cell of one part (≈ 200 000 rows at city
        // scale), spread into a map of a few thousand cells.
        let sql = format!(
            "SELECT {CELL}, CAST(SUM(n) AS BIGINT) AS n, CAST(SUM(keys) AS BIGINT) AS keys \
             FROM demand_contributions WHERE part = '{part}' GROUP BY {CELL}"
        );
        let sums = cells_of(txn.query_all_raw(Statement::from_string(backend, sql)).await?)?;
        insert(&txn, "demand_cells", None, &spread(&sums)).await?;
    }
    if backend == DbBackend::Postgres {
        // Fresh statistics for the planner (it counts this transaction's
        // rows): with the estimate of the empty tables a read of a variant
        // expects a few hundred rows and its hash aggregate spills to disk.
        txn.execute_unprepared("ANALYZE demand_cells, demand_contributions").await?;
    }
    txn.commit().await
}
