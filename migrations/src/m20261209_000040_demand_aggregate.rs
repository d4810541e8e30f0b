//! The maintained demand aggregate (issue 8; `repository::demand` in the
//! service): `demand_contributions` holds what each client currently
//! contributes to the demand statistics, `demand_cells` an append-only log
//! of changes to the sums, which the statistics read instead of grouping
//! every client and referral on each request.
//!
//! The tables start empty and the aggregate marked stale (`demand_state`):
//! the service's first demand read (or `repository::demand::rebuild`) fills
//! them. The log is pre-spread in Rust (`repository::demand::spread`), which
//! no SQL here could repeat, and a migration holding the service's `GROUP
//! BY`s written out would drift from them.
use sea_orm_migration::{prelude::*, schema::*, sea_orm::DatabaseBackend};

use crate::m20261125_000002_registry::a;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEXES: [(&str, &str); 2] = [
    ("ix_demand_cells_part_district_day", "demand_cells (part, district, day)"),
    ("ix_demand_contributions_client", "demand_contributions (client_id)"),
];

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
        db.execute_unprepared("INSERT INTO demand_state (id, stale) VALUES (1, 1)").await?;
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
