//! Statistics in the database (issue 8): the demand, outcome and funding
//! statistics are aggregated with `GROUP BY`, so the database must be able
//! to sum the record keys of a cell (`domain::cell_key`).
//!
//! A referral's key is derived from its client's key and its own id
//! (`k · factor(id) mod 2³²`); the id's factor is stored in
//! `referrals.key_factor` (an odd number in [1, 2³²)), set by the service at
//! insert and backfilled here from the ids of existing referrals, in SQL on
//! both backends (the same fold of the id's four 32-bit words as
//! `cell_key::key_factor`).
//!
//! Indexes for the aggregates: active referrals by status and client (the
//! "served" test and the referral counts), events by action (accepted ever,
//! started ever) and active clients by district.
use sea_orm_migration::{prelude::*, schema::*, sea_orm::DatabaseBackend};

use crate::m20261125_000002_registry::a;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEXES: [(&str, &str); 3] = [
    ("ix_referrals_status_client", "referrals (status, client_id, measure_id, key_factor)"),
    ("ix_referral_events_action", "referral_events (action, referral_id)"),
    ("ix_clients_status_district", "clients (status, district)"),
];

/// The statement that sets `key_factor` of every referral where it is 0
/// (public so a test can check it against the Rust fold).
pub fn backfill(backend: DatabaseBackend) -> String {
    match backend {
        DatabaseBackend::Postgres => {
            let word =
                |i: usize| format!("('x' || substr(replace(id::text, '-', ''), {}, 8))::bit(32)::bigint", i * 8 + 1);
            format!(
                "UPDATE referrals SET key_factor = ({} # {} # {} # {}) | 1 WHERE key_factor = 0",
                word(0),
                word(1),
                word(2),
                word(3)
            )
        }
        _ => {
            // SQLite has no hex parser and no XOR: each 32-bit word is summed
            // from its eight hex digits, and a ^ b = (a | b) - (a & b).
            let hex = "(CASE typeof(id) WHEN 'blob' THEN hex(id) ELSE upper(replace(id, '-', '')) END)";
            let word = |w: usize| {
                let digits: Vec<String> = (0..8)
                    .map(|d| {
                        format!(
                            "((instr('0123456789ABCDEF', substr({hex}, {}, 1)) - 1) << {})",
                            w * 8 + d + 1,
                            4 * (7 - d)
                        )
                    })
                    .collect();
                format!("({})", digits.join(" + "))
            };
            let xor = |x: String, y: String| format!("((({x}) | ({y})) - (({x}) & ({y})))");
            let folded = xor(xor(word(0), word(1)), xor(word(2), word(3)));
            format!("UPDATE referrals SET key_factor = ({folded}) | 1 WHERE key_factor = 0")
        }
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table(a("referrals")).add_column(big_integer(a("key_factor")).default(0)).to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(&backfill(manager.get_database_backend())).await?;
        for (name, on) in INDEXES {
            db.execute_unprepared(&format!("CREATE INDEX IF NOT EXISTS {name} ON {on}")).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (name, _) in INDEXES {
            db.execute_unprepared(&format!("DROP INDEX IF EXISTS {name}")).await?;
        }
        manager.alter_table(Table::alter().table(a("referrals")).drop_column(a("key_factor")).to_owned()).await
    }
}
