//! The change feed (issue 10): one row per change a partner may see. The
//! same row is the webhook outbox's event (`webhook_deliveries.event_id`).
//!
//! `seq` orders the rows; on PostgreSQL `txid` (the writing transaction's
//! id, `pg_current_xact_id()`) comes first, because sequence numbers are
//! handed out at insert while rows become visible at commit: a reader
//! returns only rows whose transaction is older than every transaction
//! still running (`pg_snapshot_xmin`), so no later commit can land before a
//! position it has passed. SQLite serialises writers on its one connection,
//! so there `seq` alone is commit order.
use sea_orm_migration::{prelude::*, schema::*, sea_orm::DatabaseBackend};

use crate::m20261125_000002_registry::a;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(a("change_events"))
                    .if_not_exists()
                    .col(big_integer(a("seq")).auto_increment().primary_key())
                    .col(uuid(a("id")).unique_key())
                    .col(string_len(a("event_type"), 40))
                    .col(string_len(a("resource"), 20))
                    .col(uuid(a("resource_id")))
                    .col(string_len_null(a("status"), 20))
                    .col(string_len_null(a("previous_status"), 20))
                    // `|office|jobcenter:<org>|provider:<id>|…|` or `|public|`: who may read it.
                    .col(text(a("audience")))
                    .col(timestamp_with_time_zone(a("at")))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            db.execute_unprepared(
                "ALTER TABLE change_events ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id()",
            )
            .await?;
            db.execute_unprepared("CREATE INDEX IF NOT EXISTS ix_change_events_position ON change_events (txid, seq)")
                .await?;
        } else {
            // Unused on SQLite (always 0); there so both schemas have the same columns.
            db.execute_unprepared("ALTER TABLE change_events ADD COLUMN txid BIGINT NOT NULL DEFAULT 0").await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(a("change_events")).if_exists().to_owned()).await
    }
}
