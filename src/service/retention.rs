//! Retention and restores: purging old audit events, and carrying erasures
//! (GDPR Art. 17) over to a database restored from an older backup.
use sea_orm::{DatabaseConnection, TransactionTrait};
use uuid::Uuid;

use crate::{
    auth::{Principal, Role},
    domain::{audit::AuditContext, ids::now},
    error::{ApiError, Problem},
    http::metrics,
    repository,
};

/// Deletes audit events older than `days` days; returns how many.
pub async fn purge_audit(db: &DatabaseConnection, days: u32) -> Result<u64, ApiError> {
    let before = now() - chrono::Duration::days(i64::from(days));
    let outcome = repository::audit::purge_older_than(db, before).await;
    metrics::record_job_run("audit_purge", outcome.is_ok());
    let purged = outcome?;
    metrics::record_audit_purged(purged);
    Ok(purged)
}

/// Ids of every erased client, oldest erasure first.
pub async fn erased_client_ids(db: &DatabaseConnection) -> Result<Vec<Uuid>, ApiError> {
    Ok(repository::retention::erased_client_ids(db).await?)
}

/// What re-applying a list of erasures did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reapplied {
    /// Clients erased again (they had come back with the restored backup).
    pub erased: usize,
    /// Already erased in this database.
    pub already_erased: usize,
    /// Not in this database (created after the backup was taken).
    pub unknown: usize,
}

/// Erases each client again through the same function as
/// `DELETE /clients/{id}` (so every table it clears is cleared), one
/// transaction per client, recorded in the audit log as done by `actor`.
pub async fn reapply_erasures(db: &DatabaseConnection, ids: &[Uuid], actor: &str) -> Result<Reapplied, ApiError> {
    let principal = Principal { sub: actor.to_owned(), iss: None, roles: vec![Role::Admin], org: None };
    let audit = AuditContext {
        actor: actor.to_owned(),
        actor_org: None,
        request_id: format!("cli-{}", Uuid::now_v7()),
        client_request_id: None,
    };
    let mut done = Reapplied::default();
    for id in ids {
        let txn = db.begin().await?;
        match crate::service::clients::erase(&txn, &audit, &principal, *id).await {
            Ok(()) => {
                txn.commit().await?;
                done.erased += 1;
            }
            Err(e) if e.problem == Problem::Gone => done.already_erased += 1,
            Err(e) if e.problem == Problem::NotFound => done.unknown += 1,
            Err(e) => return Err(e),
        }
    }
    if done.erased > 0 {
        // The same on-disk clean-up as after `DELETE /clients/{id}`.
        crate::service::clients::flush_erased(db).await;
    }
    Ok(done)
}

/// Reads the ids written by `ostwerk erasures export`: one UUID per line;
/// blank lines and `#` comments are skipped.
pub fn parse_erasure_list(text: &str) -> Result<Vec<Uuid>, String> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(n, line)| Uuid::parse_str(line).map_err(|_| format!("line {n}: {line:?} is not a client id")))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn erasure_list_skips_comments_and_refuses_garbage() {
        let id = Uuid::now_v7();
        assert_eq!(parse_erasure_list(&format!("# erased clients\n\n{id}\n")).unwrap(), vec![id]);
        assert!(parse_erasure_list("not-an-id\n").unwrap_err().contains("line 1"));
    }
}
