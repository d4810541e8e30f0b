//! Cell-key perturbation of the statistics (issue 12): every client gets a
//! random record key in [0, 2³²), stored as a BIGINT so both backends hold it
//! without sign tricks. Existing rows are backfilled with random keys; new
//! rows get theirs from the service at insert (the column default 0 only
//! covers rows written outside the service, which is why it is backfilled
//! here and not left at 0).
//!
//! The key is never served, exported or erased: statistics stay the same
//! after an erasure, and knowing it would let a reader undo the noise.
use sea_orm_migration::{prelude::*, schema::*, sea_orm::DatabaseBackend};

use crate::m20261125_000002_registry::a;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table(a("clients")).add_column(big_integer(a("record_key")).default(0)).to_owned(),
            )
            .await?;
        // One statement per backend instead of a row-by-row loop: the
        // database's own generator is good enough for a one-off backfill of
        // keys that are never shown (new keys come from the OS generator).
        let backfill = match manager.get_database_backend() {
            DatabaseBackend::Postgres => "UPDATE clients SET record_key = floor(random() * 4294967296)::bigint",
            _ => "UPDATE clients SET record_key = (random() & 4294967295)",
        };
        manager.get_connection().execute_unprepared(backfill).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(a("clients")).drop_column(a("record_key")).to_owned()).await
    }
}
