//! The maintained demand aggregate (issue 8; `repository::demand` in the
//! service): `demand_contributions` holds what each client currently
//! contributes to the demand statistics, `demand_cells` an append-only log
//! of changes to the sums, which the statistics read instead of grouping
//! every client and referral on each request.
//!
//! The tables start filled for the data already there: the `INSERT …
//! SELECT`s below are the service's per-client demand `GROUP BY`s as of
//! this step (written out, so later changes to the service leave this step
//! as it ran).
use sea_orm_migration::{prelude::*, schema::*, sea_orm::DatabaseBackend};

use crate::m20261125_000002_registry::a;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEXES: [(&str, &str); 2] = [
    ("ix_demand_cells_part_district_day", "demand_cells (part, district, day)"),
    ("ix_demand_contributions_client", "demand_contributions (client_id)"),
];

const CELL: &str = "part, district, target_groups, occupation_codes, kind, flag, day";

/// The cell columns of both tables.
fn cell_columns(table: &mut TableCreateStatement) -> &mut TableCreateStatement {
    table
        .col(string_len(a("part"), 20))
        .col(string_len_null(a("district"), 8))
        .col(string_len_null(a("target_groups"), 400))
        .col(string_len_null(a("occupation_codes"), 400))
        .col(string_len_null(a("kind"), 40))
        .col(integer(a("flag")))
        .col(date_null(a("day")))
        .col(big_integer(a("n")))
        .col(big_integer(a("keys")))
}

/// Every client's contribution: `part, district, target_groups,
/// occupation_codes, kind, flag, day, client_id, n, keys`.
fn contributions(backend: DatabaseBackend) -> String {
    let active = "'requested', 'on_hold', 'accepted', 'in_progress'";
    let client_key = "(((c.record_key % 4294967296) + 4294967296) % 4294967296)";
    let referral_key = format!(
        "((({k} % 65536) * r.key_factor + ((({k} / 65536) * r.key_factor) % 65536) * 65536) % 4294967296)",
        k = client_key
    );
    let day = match backend {
        DatabaseBackend::Postgres => "CAST((r.created_at AT TIME ZONE 'UTC') AS DATE)",
        _ => "date(r.created_at)",
    };
    let served = format!(
        "CASE WHEN c.id IN (SELECT r.client_id FROM referrals r WHERE r.status IN ({active})) THEN 1 ELSE 0 END"
    );
    let clients = |kind: &str, join: &str| {
        format!(
            "SELECT c.district AS district, c.target_groups AS target_groups, c.occupation_codes AS occupation_codes, \
             {kind} AS kind, {served} AS served, c.id AS client_id, COUNT(*) AS n, CAST(SUM({client_key}) AS BIGINT) AS keys \
             FROM clients c{join} WHERE c.status = 'active' GROUP BY 1, 2, 3, 4, 5, 6"
        )
    };
    let plain = clients("NULL", "");
    let kinds = clients(
        "k.kind",
        &format!(
            " LEFT JOIN (SELECT DISTINCT r.client_id AS client_id, m.kind AS kind FROM referrals r \
             JOIN measures m ON m.id = r.measure_id WHERE r.status IN ({active})) k ON k.client_id = c.id"
        ),
    );
    let referrals = |day: &str, group: &str| {
        format!(
            "SELECT c.district AS district, c.target_groups AS target_groups, c.occupation_codes AS occupation_codes, \
             m.kind AS kind, CASE WHEN r.status = 'requested' THEN 1 ELSE 0 END AS requested, {day} AS day, \
             c.id AS client_id, COUNT(*) AS n, CAST(SUM({referral_key}) AS BIGINT) AS keys \
             FROM referrals r JOIN clients c ON c.id = r.client_id LEFT JOIN measures m ON m.id = r.measure_id \
             WHERE r.status IN ({active}) GROUP BY {group}"
        )
    };
    let by_day = referrals(day, "1, 2, 3, 4, 5, 6, 7");
    let totals = referrals("CAST(NULL AS DATE)", "1, 2, 3, 4, 5, 7");
    format!(
        "SELECT 'client' AS part, district, target_groups, occupation_codes, kind, served AS flag, \
         CAST(NULL AS DATE) AS day, client_id, n, keys FROM ({plain}) g1 \
         UNION ALL SELECT 'client_kind', district, target_groups, occupation_codes, kind, served, \
         CAST(NULL AS DATE), client_id, n, keys FROM ({kinds}) g2 \
         UNION ALL SELECT 'referral', district, target_groups, occupation_codes, kind, requested, \
         day, client_id, n, keys FROM ({by_day}) g3 \
         UNION ALL SELECT 'referral_total', district, target_groups, occupation_codes, kind, requested, \
         day, client_id, n, keys FROM ({totals}) g4"
    )
}

/// The columns the record keys of the aggregate come from. The service
/// never changes them after insert; a change by hand (tests, repair
/// scripts) marks the aggregate stale, and the next read rebuilds it.
const KEY_COLUMNS: [(&str, &str); 2] = [("clients", "record_key"), ("referrals", "key_factor")];

fn stale_triggers(backend: DatabaseBackend) -> Vec<String> {
    let mut sql = Vec::new();
    if backend == DatabaseBackend::Postgres {
        sql.push(
            "CREATE OR REPLACE FUNCTION demand_mark_stale() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN UPDATE demand_state SET stale = 1 WHERE id = 1 AND stale = 0; RETURN NULL; END $$"
                .to_owned(),
        );
    }
    for (table, column) in KEY_COLUMNS {
        sql.push(match backend {
            DatabaseBackend::Postgres => format!(
                "CREATE TRIGGER {table}_{column}_demand_stale AFTER UPDATE OF {column} ON {table} FOR EACH ROW \
                 WHEN (OLD.{column} IS DISTINCT FROM NEW.{column}) EXECUTE FUNCTION demand_mark_stale()"
            ),
            _ => format!(
                "CREATE TRIGGER IF NOT EXISTS {table}_{column}_demand_stale AFTER UPDATE OF {column} ON {table} \
                 WHEN OLD.{column} IS NOT NEW.{column} BEGIN UPDATE demand_state SET stale = 1 WHERE id = 1 AND stale = 0; END"
            ),
        });
    }
    sql
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut contributions_table = Table::create();
        contributions_table.table(a("demand_contributions")).if_not_exists().col(uuid(a("client_id")));
        manager.create_table(cell_columns(&mut contributions_table).to_owned()).await?;
        let mut cells_table = Table::create();
        cells_table.table(a("demand_cells")).if_not_exists().col(big_integer(a("id")).auto_increment().primary_key());
        manager.create_table(cell_columns(&mut cells_table).to_owned()).await?;
        let db = manager.get_connection();
        for (name, on) in INDEXES {
            db.execute_unprepared(&format!("CREATE INDEX IF NOT EXISTS {name} ON {on}")).await?;
        }
        let select = contributions(manager.get_database_backend());
        db.execute_unprepared(&format!("INSERT INTO demand_contributions ({CELL}, client_id, n, keys) {select}"))
            .await?;
        db.execute_unprepared(&format!(
            "INSERT INTO demand_cells ({CELL}, n, keys) SELECT {CELL}, SUM(n), SUM(keys) FROM demand_contributions \
             GROUP BY {CELL}"
        ))
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(a("demand_state"))
                    .if_not_exists()
                    .col(integer(a("id")).primary_key())
                    .col(integer(a("stale")))
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared("INSERT INTO demand_state (id, stale) VALUES (1, 0)").await?;
        for sql in stale_triggers(manager.get_database_backend()) {
            db.execute_unprepared(&sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let postgres = manager.get_database_backend() == DatabaseBackend::Postgres;
        for (table, column) in KEY_COLUMNS {
            let on = if postgres { format!(" ON {table}") } else { String::new() };
            db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {table}_{column}_demand_stale{on}")).await?;
        }
        if postgres {
            db.execute_unprepared("DROP FUNCTION IF EXISTS demand_mark_stale()").await?;
        }
        manager.drop_table(Table::drop().table(a("demand_state")).if_exists().to_owned()).await?;
        manager.drop_table(Table::drop().table(a("demand_cells")).if_exists().to_owned()).await?;
        manager.drop_table(Table::drop().table(a("demand_contributions")).if_exists().to_owned()).await
    }
}
