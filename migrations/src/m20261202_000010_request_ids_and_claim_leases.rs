//! The caller's `X-Request-Id` gets its own audit column (`request_id` is
//! always Ostwerk's own id), and idempotency claims name the instance and
//! request holding them plus a lease the holder renews while it works, so a
//! claim whose request died can be taken over at once (same instance) or
//! when its lease runs out (another instance) instead of after a fixed
//! 120 s. Added columns are nullable: rows written before keep working
//! (a claim without a holder falls back to the old age rule).
//!
//! One `ALTER TABLE` per column: SQLite accepts only one change per statement.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    ClientRequestId,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Holder,
    LeaseUntil,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AuditEvents::Table)
                    .add_column(string_len_null(AuditEvents::ClientRequestId, 128))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(IdempotencyKeys::Table)
                    .add_column(string_len_null(IdempotencyKeys::Holder, 100))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(IdempotencyKeys::Table)
                    .add_column(timestamp_with_time_zone_null(IdempotencyKeys::LeaseUntil))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table(IdempotencyKeys::Table).drop_column(IdempotencyKeys::LeaseUntil).to_owned(),
            )
            .await?;
        manager
            .alter_table(Table::alter().table(IdempotencyKeys::Table).drop_column(IdempotencyKeys::Holder).to_owned())
            .await?;
        manager
            .alter_table(Table::alter().table(AuditEvents::Table).drop_column(AuditEvents::ClientRequestId).to_owned())
            .await
    }
}
