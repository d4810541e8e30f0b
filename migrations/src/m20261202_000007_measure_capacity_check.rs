//! The database's last line of defence against overbooking: a measure's
//! `seats_taken` stays between 0 and its `capacity`, whoever writes the row.
//! The service already guards both writers (accept: `WHERE seats_taken <
//! capacity`; capacity change: `WHERE seats_taken <= $new`), so this only
//! fires if a future code path forgets; the service maps it to `409`.
//!
//! PostgreSQL gets a named `CHECK` constraint. SQLite cannot add a constraint
//! to an existing table, and rebuilding `measures` would mean recreating
//! every table whose foreign keys point at it, so there two triggers raise
//! an error with the same name instead (rejected: the rebuild, for its risk).
use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The constraint's name; the error mapping looks for it in the message.
pub const NAME: &str = "measures_seats_within_capacity";

const VIOLATES: &str = "NEW.seats_taken < 0 OR NEW.seats_taken > NEW.capacity";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        // Rows the old race overbooked: their seats are really taken, so the
        // capacity is raised to the truth rather than the migration failing
        // (and the service refusing to start) or a referral being dropped.
        db.execute_unprepared("UPDATE measures SET capacity = seats_taken WHERE seats_taken > capacity").await?;
        db.execute_unprepared("UPDATE measures SET seats_taken = 0 WHERE seats_taken < 0").await?;
        if manager.get_database_backend() == DbBackend::Sqlite {
            for (suffix, when) in [("insert", "INSERT"), ("update", "UPDATE OF seats_taken, capacity")] {
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER IF NOT EXISTS {NAME}_{suffix} BEFORE {when} ON measures \
                     WHEN {VIOLATES} BEGIN SELECT RAISE(ABORT, '{NAME}'); END"
                ))
                .await?;
            }
        } else {
            db.execute_unprepared(&format!(
                "ALTER TABLE measures ADD CONSTRAINT {NAME} CHECK (seats_taken >= 0 AND seats_taken <= capacity)"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if manager.get_database_backend() == DbBackend::Sqlite {
            for suffix in ["insert", "update"] {
                db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {NAME}_{suffix}")).await?;
            }
        } else {
            db.execute_unprepared(&format!("ALTER TABLE measures DROP CONSTRAINT IF EXISTS {NAME}")).await?;
        }
        Ok(())
    }
}
