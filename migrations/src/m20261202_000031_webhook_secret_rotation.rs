//! Webhook secret rotation (issue 10): after a rotation the old secret
//! still signs deliveries (as a second `v1,` signature) until
//! `previous_secret_until`.
use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261125_000002_registry::a;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table(a("webhooks")).add_column(string_len_null(a("previous_secret"), 200)).to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(a("webhooks"))
                    .add_column(timestamp_with_time_zone_null(a("previous_secret_until")))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in ["previous_secret_until", "previous_secret"] {
            manager.alter_table(Table::alter().table(a("webhooks")).drop_column(a(column)).to_owned()).await?;
        }
        Ok(())
    }
}
