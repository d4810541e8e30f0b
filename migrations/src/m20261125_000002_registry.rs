//! The registry: clients, consultations, employers, vacancies, measures and
//! the audit log.
//!
//! Multi-valued code fields (target groups, occupation codes, languages,
//! needs) are stored as delimited text `|a|b|`: the same `LIKE '%|a|%'` (and
//! `'%|293%'` for a KldB prefix) filters them on SQLite and PostgreSQL alike;
//! JSON arrays were rejected because their operators differ per backend.
use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261125_000001_foundation::{resource_meta, resource_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

pub fn a(name: &'static str) -> Alias {
    Alias::new(name)
}

fn index(name: &str, table: &'static str, cols: &[&'static str], unique: bool) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(name).table(a(table)).if_not_exists();
    for c in cols {
        idx.col(a(c));
    }
    if unique {
        idx.unique();
    }
    idx.to_owned()
}

pub fn fk(from_table: &'static str, from_col: &'static str, to_table: &'static str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{from_table}_{from_col}"))
        .from(a(from_table), a(from_col))
        .to(a(to_table), a("id"))
        .on_delete(ForeignKeyAction::Restrict)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Clients (personal data; erased rows keep only the anonymous columns).
        let mut t = resource_table(a("clients"));
        t.col(string_len_null(a("external_id"), 100))
            .col(string_len(a("created_by_org"), 200))
            .col(string_len_null(a("first_name"), 100))
            .col(string_len_null(a("last_name"), 100))
            .col(date_null(a("date_of_birth")))
            .col(string_len_null(a("email"), 254))
            .col(string_len_null(a("phone"), 30))
            .col(json_binary_null(a("address")))
            .col(string_len_null(a("district"), 8))
            .col(string_len(a("target_groups"), 400).default(""))
            .col(string_len_null(a("education_level"), 40))
            .col(string_len(a("occupation_codes"), 400).default(""))
            .col(string_len(a("languages"), 200).default(""))
            .col(date_null(a("available_from")))
            .col(integer_null(a("hours_per_week")))
            .col(json_binary_null(a("consent")))
            .col(string_len(a("status"), 16))
            .col(timestamp_with_time_zone_null(a("erased_at")));
        resource_meta(&mut t);
        manager.create_table(t).await?;
        manager
            .create_index(index("ux_clients_org_external_id", "clients", &["created_by_org", "external_id"], true))
            .await?;
        manager.create_index(index("ix_clients_district", "clients", &["district"], false)).await?;
        manager.create_index(index("ix_clients_status", "clients", &["status"], false)).await?;

        // Employers and their vacancies.
        let mut t = resource_table(a("employers"));
        t.col(string_len(a("name"), 300))
            .col(string_len_null(a("legal_form"), 100))
            .col(string_len_null(a("sector"), 10))
            .col(json_binary_null(a("address")))
            .col(string_len_null(a("district"), 8))
            .col(integer_null(a("employee_count")))
            .col(string_len(a("settlement_status"), 20))
            .col(boolean(a("is_training_company")).default(false))
            .col(string_len(a("needs"), 400).default(""))
            .col(json_binary_null(a("contact")));
        resource_meta(&mut t);
        manager.create_table(t).await?;

        let mut t = resource_table(a("vacancies"));
        t.col(uuid(a("employer_id")))
            .col(string_len(a("kind"), 20))
            .col(string_len(a("title"), 300))
            .col(string_len(a("occupation_code"), 5))
            .col(text_null(a("description")))
            .col(integer_null(a("hours_per_week")))
            .col(date_null(a("start_date")))
            .col(integer(a("positions")))
            .col(integer(a("positions_filled")).default(0))
            .col(string_len_null(a("min_education_level"), 40))
            .col(string_len(a("languages"), 200).default(""))
            .col(string_len_null(a("district"), 8))
            .col(string_len(a("status"), 16))
            .foreign_key(&mut fk("vacancies", "employer_id", "employers"));
        resource_meta(&mut t);
        manager.create_table(t).await?;
        manager.create_index(index("ix_vacancies_employer", "vacancies", &["employer_id"], false)).await?;
        manager.create_index(index("ix_vacancies_occupation", "vacancies", &["occupation_code"], false)).await?;

        // Measures.
        let mut t = resource_table(a("measures"));
        t.col(uuid(a("provider_id")))
            .col(string_len(a("title"), 300))
            .col(text_null(a("description")))
            .col(string_len(a("kind"), 40))
            .col(string_len_null(a("measure_number"), 100))
            .col(string_len(a("funding"), 20))
            .col(string_len(a("target_groups"), 400).default(""))
            .col(string_len(a("occupation_codes"), 400).default(""))
            .col(string_len_null(a("district"), 8))
            .col(json_binary_null(a("address")))
            .col(date_null(a("start_date")))
            .col(date_null(a("end_date")))
            .col(integer_null(a("hours_per_week")))
            .col(integer(a("capacity")))
            .col(integer(a("seats_taken")).default(0))
            .col(integer(a("waitlisted")).default(0))
            .col(integer_null(a("min_age")))
            .col(integer_null(a("max_age")))
            .col(string_len(a("status"), 16))
            .foreign_key(&mut fk("measures", "provider_id", "providers"));
        resource_meta(&mut t);
        manager.create_table(t).await?;
        manager.create_index(index("ux_measures_measure_number", "measures", &["measure_number"], true)).await?;
        manager.create_index(index("ix_measures_provider", "measures", &["provider_id"], false)).await?;

        // Counselling of clients and employers.
        let mut t = resource_table(a("consultations"));
        t.col(uuid_null(a("client_id")))
            .col(uuid_null(a("employer_id")))
            .col(date(a("held_on")))
            .col(string_len(a("topic"), 40))
            .col(integer_null(a("duration_minutes")))
            .col(text_null(a("notes")))
            .col(date_null(a("follow_up_on")))
            .col(string_len(a("counsellor"), 200))
            .foreign_key(&mut fk("consultations", "client_id", "clients"))
            .foreign_key(&mut fk("consultations", "employer_id", "employers"));
        resource_meta(&mut t);
        manager.create_table(t).await?;
        manager.create_index(index("ix_consultations_client", "consultations", &["client_id"], false)).await?;
        manager.create_index(index("ix_consultations_employer", "consultations", &["employer_id"], false)).await?;

        // The audit log: append-only, no foreign keys (it outlives what it names).
        manager
            .create_table(
                Table::create()
                    .table(a("audit_events"))
                    .if_not_exists()
                    .col(pk_uuid(a("id")))
                    .col(timestamp_with_time_zone(a("at")))
                    .col(string_len(a("actor"), 300))
                    .col(string_len_null(a("actor_org"), 200))
                    .col(string_len(a("action"), 40))
                    .col(string_len(a("resource"), 40))
                    .col(uuid_null(a("resource_id")))
                    .col(uuid_null(a("client_id")))
                    .col(string_len(a("request_id"), 128))
                    .to_owned(),
            )
            .await?;
        manager.create_index(index("ix_audit_events_client", "audit_events", &["client_id"], false)).await?;
        manager.create_index(index("ix_audit_events_actor", "audit_events", &["actor"], false)).await?;
        manager.create_index(index("ix_audit_events_at", "audit_events", &["at"], false)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["audit_events", "consultations", "measures", "vacancies", "employers", "clients"] {
            manager.drop_table(Table::drop().table(a(table)).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
