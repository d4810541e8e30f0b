//! Referrals (Zuweisungen) and their append-only event history.
use sea_orm_migration::{prelude::*, schema::*};

use crate::{
    m20261125_000001_foundation::{resource_meta, resource_table},
    m20261125_000002_registry::{a, fk},
};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Statuses in which a referral holds its target (SPEC: "active").
const ACTIVE: &str = "('requested', 'accepted', 'on_hold', 'in_progress')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut t = resource_table(a("referrals"));
        t.col(uuid(a("client_id")))
            .col(uuid_null(a("measure_id")))
            .col(uuid_null(a("vacancy_id")))
            .col(string_len_null(a("external_id"), 100))
            .col(string_len(a("referring_org"), 200))
            .col(string_len(a("referred_by"), 300))
            .col(text_null(a("note")))
            .col(string_len(a("status"), 16))
            .col(string_len_null(a("reason_code"), 40))
            .col(text_null(a("reason_note")))
            .col(string_len_null(a("rejected_by"), 16))
            .col(string_len_null(a("outcome"), 40))
            .col(date_null(a("outcome_on")))
            .foreign_key(&mut fk("referrals", "client_id", "clients"))
            .foreign_key(&mut fk("referrals", "measure_id", "measures"))
            .foreign_key(&mut fk("referrals", "vacancy_id", "vacancies"));
        resource_meta(&mut t);
        manager.create_table(t).await?;

        let db = manager.get_connection();
        for sql in [
            "CREATE UNIQUE INDEX IF NOT EXISTS ux_referrals_org_external_id ON referrals (referring_org, external_id)"
                .to_owned(),
            format!(
                "CREATE UNIQUE INDEX IF NOT EXISTS ux_referrals_active_measure ON referrals (client_id, measure_id) WHERE measure_id IS NOT NULL AND status IN {ACTIVE}"
            ),
            format!(
                "CREATE UNIQUE INDEX IF NOT EXISTS ux_referrals_active_vacancy ON referrals (client_id, vacancy_id) WHERE vacancy_id IS NOT NULL AND status IN {ACTIVE}"
            ),
            "CREATE INDEX IF NOT EXISTS ix_referrals_client ON referrals (client_id)".to_owned(),
            "CREATE INDEX IF NOT EXISTS ix_referrals_measure ON referrals (measure_id)".to_owned(),
            "CREATE INDEX IF NOT EXISTS ix_referrals_vacancy ON referrals (vacancy_id)".to_owned(),
            "CREATE INDEX IF NOT EXISTS ix_referrals_status_created ON referrals (status, created_at)".to_owned(),
            "CREATE INDEX IF NOT EXISTS ix_referrals_updated ON referrals (updated_at, id)".to_owned(),
        ] {
            db.execute_unprepared(&sql).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(a("referral_events"))
                    .if_not_exists()
                    .col(pk_uuid(a("id")))
                    .col(uuid(a("referral_id")))
                    .col(string_len_null(a("from_status"), 16))
                    .col(string_len(a("to_status"), 16))
                    .col(string_len(a("action"), 16))
                    .col(string_len_null(a("reason_code"), 40))
                    .col(text_null(a("reason_note")))
                    .col(string_len(a("actor"), 300))
                    .col(string_len_null(a("actor_org"), 200))
                    .col(timestamp_with_time_zone(a("at")))
                    .foreign_key(&mut fk("referral_events", "referral_id", "referrals"))
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS ix_referral_events_referral ON referral_events (referral_id, id)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["referral_events", "referrals"] {
            manager.drop_table(Table::drop().table(a(table)).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
