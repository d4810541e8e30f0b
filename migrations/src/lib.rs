//! Database migrations. One file per step, named by date; a released step is
//! never edited — a change is a new step.
pub use sea_orm_migration::prelude::*;

mod m20261125_000001_foundation;
mod m20261125_000002_registry;
mod m20261125_000003_referrals;
mod m20261125_000004_webhooks;
mod m20261125_000005_funding;
mod m20261202_000006_webhook_owner_kind;
pub mod m20261202_000007_measure_capacity_check;
mod m20261202_000010_request_ids_and_claim_leases;
mod m20261202_000011_record_keys;
pub mod m20261202_000025_statistics_in_sql;
mod m20261202_000030_change_events;
mod m20261202_000031_webhook_secret_rotation;
mod m20261209_000040_demand_aggregate;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_foundation::Migration),
            Box::new(m20261125_000002_registry::Migration),
            Box::new(m20261125_000003_referrals::Migration),
            Box::new(m20261125_000004_webhooks::Migration),
            Box::new(m20261125_000005_funding::Migration),
            Box::new(m20261202_000006_webhook_owner_kind::Migration),
            Box::new(m20261202_000007_measure_capacity_check::Migration),
            Box::new(m20261202_000010_request_ids_and_claim_leases::Migration),
            Box::new(m20261202_000011_record_keys::Migration),
            Box::new(m20261202_000025_statistics_in_sql::Migration),
            Box::new(m20261202_000030_change_events::Migration),
            Box::new(m20261202_000031_webhook_secret_rotation::Migration),
            Box::new(m20261209_000040_demand_aggregate::Migration),
        ]
    }
}
