//! Funding programmes the office researched, and applications it helps with.
use sea_orm_migration::{prelude::*, schema::*};

use crate::{
    m20261125_000001_foundation::{resource_meta, resource_table},
    m20261125_000002_registry::{a, fk},
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut t = resource_table(a("funding_programmes"));
        t.col(string_len(a("name"), 300))
            .col(string_len(a("funder"), 300))
            .col(string_len_null(a("legal_basis"), 300))
            .col(string_len(a("target_groups"), 400).default(""))
            .col(string_len(a("eligible_applicants"), 200).default(""))
            .col(big_integer_null(a("max_amount_cents")))
            .col(date_null(a("deadline")))
            .col(string_len_null(a("url"), 2000));
        resource_meta(&mut t);
        manager.create_table(t).await?;

        let mut t = resource_table(a("funding_applications"));
        t.col(uuid(a("programme_id")))
            .col(string_len(a("applicant_kind"), 20))
            .col(uuid(a("applicant_id")))
            .col(big_integer(a("amount_requested_cents")))
            .col(big_integer_null(a("amount_granted_cents")))
            .col(string_len(a("status"), 16))
            .col(date_null(a("submitted_on")))
            .col(date_null(a("decided_on")))
            .col(text_null(a("note")))
            .foreign_key(&mut fk("funding_applications", "programme_id", "funding_programmes"));
        resource_meta(&mut t);
        manager.create_table(t).await?;
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX IF NOT EXISTS ix_funding_applications_applicant ON funding_applications (applicant_id)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["funding_applications", "funding_programmes"] {
            manager.drop_table(Table::drop().table(a(table)).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
