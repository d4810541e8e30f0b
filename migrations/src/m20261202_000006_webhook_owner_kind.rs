//! Webhooks are owned by a typed owner: `(owner_kind, org)`. An org id alone
//! is ambiguous — a job centre may call itself what a provider's id is — so
//! visibility and event fan-out compare both.
//!
//! Existing rows are classified as the service would have meant them: `office`
//! is the office; the id of an existing provider or employer is that provider
//! or employer (stored in its canonical lower-case form); anything else was
//! written by a job centre.
use std::collections::HashSet;

use sea_orm_migration::{
    prelude::*,
    schema::*,
    sea_orm::{ConnectionTrait, prelude::Uuid},
};

use crate::m20261125_000002_registry::a;

#[derive(DeriveMigrationName)]
pub struct Migration;

async fn ids(db: &SchemaManagerConnection<'_>, table: &'static str) -> Result<HashSet<Uuid>, DbErr> {
    let select = Query::select().column(a("id")).from(a(table)).to_owned();
    let rows = db.query_all(&select).await?;
    rows.iter().map(|r| r.try_get::<Uuid>("", "id")).collect()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(a("webhooks"))
                    .add_column(string_len(a("owner_kind"), 16).default("jobcenter"))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        let providers = ids(db, "providers").await?;
        let employers = ids(db, "employers").await?;
        let hooks = db.query_all(&Query::select().columns([a("id"), a("org")]).from(a("webhooks")).to_owned()).await?;
        for row in hooks {
            let id: Uuid = row.try_get("", "id")?;
            let org: String = row.try_get("", "org")?;
            let trimmed = org.trim();
            let (kind, org) = match Uuid::parse_str(trimmed) {
                _ if trimmed.eq_ignore_ascii_case("office") => ("office", "office".to_owned()),
                Ok(uuid) if providers.contains(&uuid) => ("provider", uuid.to_string()),
                Ok(uuid) if employers.contains(&uuid) => ("employer", uuid.to_string()),
                _ => ("jobcenter", org.clone()),
            };
            let update = Query::update()
                .table(a("webhooks"))
                .value(a("owner_kind"), kind)
                .value(a("org"), org)
                .and_where(Expr::col(a("id")).eq(id))
                .to_owned();
            db.execute(&update).await?;
        }
        db.execute_unprepared("CREATE INDEX IF NOT EXISTS ix_webhooks_owner ON webhooks (owner_kind, org)").await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS ix_webhooks_owner").await?;
        manager.alter_table(Table::alter().table(a("webhooks")).drop_column(a("owner_kind")).to_owned()).await
    }
}
