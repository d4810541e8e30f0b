//! Webhook subscriptions and their durable delivery outbox.
use sea_orm_migration::{prelude::*, schema::*};

use crate::{
    m20261125_000001_foundation::{resource_meta, resource_table},
    m20261125_000002_registry::a,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut t = resource_table(a("webhooks"));
        t.col(string_len(a("org"), 200))
            .col(string_len(a("url"), 2000))
            .col(string_len(a("events"), 400))
            .col(string_len(a("secret"), 200))
            .col(boolean(a("active")).default(true))
            .col(string_len(a("created_by"), 300));
        resource_meta(&mut t);
        manager.create_table(t).await?;

        manager
            .create_table(
                Table::create()
                    .table(a("webhook_deliveries"))
                    .if_not_exists()
                    .col(pk_uuid(a("id")))
                    .col(uuid(a("webhook_id")))
                    .col(string_len(a("event_type"), 40))
                    .col(uuid(a("event_id")))
                    .col(text(a("payload")))
                    .col(string_len(a("status"), 16))
                    .col(integer(a("attempts")).default(0))
                    .col(timestamp_with_time_zone(a("next_attempt_at")))
                    .col(timestamp_with_time_zone_null(a("locked_until")))
                    .col(integer_null(a("last_status")))
                    .col(string_len_null(a("last_error"), 500))
                    .col(timestamp_with_time_zone(a("created_at")))
                    .col(timestamp_with_time_zone_null(a("delivered_at")))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_deliveries_webhook_id")
                            .from(a("webhook_deliveries"), a("webhook_id"))
                            .to(a("webhooks"), a("id"))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS ix_webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at)",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS ix_webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["webhook_deliveries", "webhooks"] {
            manager.drop_table(Table::drop().table(a(table)).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
