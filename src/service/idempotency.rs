//! `Idempotency-Key` on creating POSTs (SPEC §1).
//!
//! Scope is the caller (`Principal::scope`). Only successful responses are
//! stored: a failed attempt leaves the key free, so the caller can correct
//! and retry.
//!
//! On PostgreSQL a create ([`run`]) does it all in its one transaction: it
//! takes the key's transaction-scoped advisory lock (a concurrent request
//! with the key fails to take it: `409`), looks the key up (replay, `422`
//! for another body), does the work and inserts the answer as a completed
//! row; all commit together. The lock ends with the transaction however it
//! ends, so nothing is ever left "in progress", and the create costs one
//! transaction instead of two (issue 8).
//!
//! Elsewhere (SQLite, and batches on either database, whose items commit
//! one by one) the key is claimed in its own short transaction *before* the
//! work starts, so a concurrent retry sees it and gets `409`; the work and
//! the stored response then commit together, and a failure releases the
//! claim.
//!
//! A claim names its holder (`<instance>/<claim>`, the instance being this
//! process) and carries a lease of [`LEASE_SECONDS`] that the holder renews
//! every [`RENEW_EVERY_SECONDS`] while the work runs ([`renew_leases`]). So
//! when a request dies without releasing its key — the database went away
//! before the release, the client disconnected and actix dropped the
//! handler, the server was killed — the key does not stay "in progress":
//! - on the same instance it is taken over at once, since the instance
//!   knows which of its claims still run (the set of live holders);
//! - on another instance (or after a restart, which is a new instance) it
//!   is taken over once the lease has run out, i.e. at most
//!   [`LEASE_SECONDS`] after the holder stopped renewing it.
//!
//! The rejected alternative, a fixed age (120 s before), made retries of a
//! dead request wait two minutes and would have let a retry run a second
//! copy of a batch that legitimately took longer than that.
use std::{
    collections::HashSet,
    future::{Ready, ready},
    sync::{LazyLock, Mutex, PoisonError},
};

use actix_web::{FromRequest, HttpRequest, HttpResponse, dev::Payload, http::StatusCode};
use chrono::Duration;
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbBackend, TransactionTrait};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{
    auth::Principal,
    domain::ids::now,
    error::{ApiError, Problem},
    http::etag,
    repository::{idempotency as repo, is_unique_violation},
};

/// How long a key replays.
pub const RETENTION_HOURS: i64 = 24;
/// An in-progress claim whose holder has not renewed it for this long is
/// abandoned.
pub const LEASE_SECONDS: i64 = 30;
/// How often holders renew their leases (well inside the lease).
pub const RENEW_EVERY_SECONDS: u64 = 10;
/// Claims written before holders existed are abandoned after this age.
const LEGACY_STALE_SECONDS: i64 = 120;

/// This process; part of every holder it writes.
static INSTANCE: LazyLock<String> = LazyLock::new(|| uuid::Uuid::now_v7().simple().to_string());
/// The holders of the claims whose work runs in this process right now.
static LIVE: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

fn live() -> std::sync::MutexGuard<'static, HashSet<String>> {
    // A panic while holding this lock cannot leave the set inconsistent.
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A claim this process works on: registered as live from before it is
/// written until this guard drops — when the request ends, however it ends
/// (including a dropped handler future).
struct Holder(String);

impl Holder {
    fn new() -> Self {
        let holder = format!("{}/{}", *INSTANCE, uuid::Uuid::now_v7().simple());
        live().insert(holder.clone());
        Holder(holder)
    }

    fn lease(&self, now: chrono::DateTime<chrono::Utc>) -> repo::Lease<'_> {
        repo::Lease { holder: &self.0, until: now + Duration::seconds(LEASE_SECONDS) }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        live().remove(&self.0);
    }
}

/// Whether an in-progress claim can no longer be worked on by anybody.
fn abandoned(claim: &repo::ClaimRow, now: chrono::DateTime<chrono::Utc>) -> bool {
    match (&claim.holder, claim.lease_until) {
        (Some(holder), _) if holder.split_once('/').is_some_and(|(instance, _)| instance == INSTANCE.as_str()) => {
            !live().contains(holder)
        }
        (Some(_), Some(lease_until)) => lease_until < now,
        _ => claim.created_at < now - Duration::seconds(LEGACY_STALE_SECONDS),
    }
}

/// Renews the leases of this process's live claims, forever (run by `serve`).
pub async fn renew_leases(db: DatabaseConnection) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(RENEW_EVERY_SECONDS));
    loop {
        tick.tick().await;
        let holders: Vec<String> = live().iter().cloned().collect();
        if let Err(e) = repo::renew(&db, &holders, now() + Duration::seconds(LEASE_SECONDS)).await {
            tracing::warn!(error = %e, "renewing idempotency leases failed");
        }
    }
}

pub const HEADER: &str = "Idempotency-Key";
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";

/// The optional `Idempotency-Key` header (1–255 printable ASCII characters).
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub Option<String>);

impl FromRequest for IdempotencyKey {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(value) = req.headers().get(HEADER) else { return ready(Ok(IdempotencyKey(None))) };
        let valid = value
            .to_str()
            .ok()
            .filter(|v| !v.is_empty() && v.len() <= 255 && v.bytes().all(|b| (0x20..=0x7e).contains(&b)));
        ready(match valid {
            Some(v) => Ok(IdempotencyKey(Some(v.to_owned()))),
            None => Err(ApiError::bad_request("Idempotency-Key must be 1–255 printable ASCII characters.")),
        })
    }
}

/// What a creating operation produced.
#[derive(Debug)]
pub struct Created {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: Value,
}

impl Created {
    pub fn new(location: String, body: Value) -> Self {
        Self { status: StatusCode::CREATED, location: Some(location), body }
    }

    fn into_response(self, replayed: bool) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status);
        if let Some(location) = &self.location {
            builder.insert_header(("Location", location.as_str()));
        }
        if let Some(version) = self.body.get("version").and_then(Value::as_i64) {
            builder.insert_header(("ETag", etag(version as i32)));
        }
        if replayed {
            builder.insert_header((REPLAYED_HEADER, "true"));
        }
        builder.json(self.body)
    }
}

/// Runs `work` in a transaction, at most once per idempotency key.
pub async fn run<F>(
    db: &DatabaseConnection,
    principal: &Principal,
    key: &IdempotencyKey,
    request: (&str, &str, &Value),
    work: F,
) -> Result<HttpResponse, ApiError>
where
    F: AsyncFnOnce(&DatabaseTransaction) -> Result<Created, ApiError>,
{
    let Some(key) = key.0.as_deref() else {
        let txn = db.begin().await?;
        let created = work(&txn).await?;
        txn.commit().await?;
        return Ok(created.into_response(false));
    };
    let scope = principal.scope();
    if db.get_database_backend() == DbBackend::Postgres {
        return run_locked(db, &scope, key, &fingerprint(request), work).await;
    }
    let holder = match claim(db, &scope, key, &fingerprint(request)).await? {
        Claim::Replay(replay) => return Ok(replay),
        Claim::Fresh(holder) => holder,
    };

    let outcome: Result<Created, ApiError> = async {
        let txn = db.begin().await?;
        let created = match work(&txn).await {
            Ok(created) => created,
            Err(err) => {
                drop(txn.rollback().await);
                return Err(err);
            }
        };
        let body = created.body.to_string();
        let stored =
            repo::complete(&txn, &scope, key, &holder.0, created.status.as_u16(), &body, created.location.as_deref())
                .await?;
        if !stored {
            // Our lease ran out and a retry took the key over: that retry
            // answers for the key, so this copy of the work must not commit.
            drop(txn.rollback().await);
            return Err(in_progress());
        }
        txn.commit().await?;
        Ok(created)
    }
    .await;
    match outcome {
        Ok(created) => Ok(created.into_response(false)),
        Err(err) => {
            // Best effort: if this fails too (database gone), `holder` drops
            // with this request, and the claim is taken over at the next
            // retry here, or after its lease elsewhere.
            drop(repo::release(db, &scope, key, &holder.0).await);
            Err(err)
        }
    }
}

/// [`run`] on PostgreSQL: the key's advisory lock, its lookup, the work and
/// the stored answer in one transaction (see the module doc).
async fn run_locked<F>(
    db: &DatabaseConnection,
    scope: &str,
    key: &str,
    fingerprint: &str,
    work: F,
) -> Result<HttpResponse, ApiError>
where
    F: AsyncFnOnce(&DatabaseTransaction) -> Result<Created, ApiError>,
{
    let txn = db.begin().await?;
    let outcome: Result<Result<Created, HttpResponse>, ApiError> = async {
        if !repo::try_lock(&txn, scope, key).await? {
            return Err(in_progress());
        }
        let started = now();
        if let Some(existing) = repo::find(&txn, scope, key).await? {
            match judge(&existing, fingerprint, started)? {
                Found::Replay(replay) => return Ok(Err(replay)),
                Found::Running if !abandoned(&existing, started) => return Err(in_progress()),
                // Past its retention, or a claim whose holder died: gone with this commit.
                Found::Expired | Found::Running => repo::remove(&txn, scope, key).await?,
            }
        }
        let created = work(&txn).await?;
        let body = created.body.to_string();
        let status = created.status.as_u16();
        if !repo::insert_completed(&txn, scope, key, fingerprint, started, status, &body, created.location.as_deref())
            .await?
        {
            // A batch claimed the key meanwhile (batches do not take the lock).
            return Err(in_progress());
        }
        Ok(Ok(created))
    }
    .await;
    match outcome {
        Ok(Ok(created)) => {
            txn.commit().await?;
            Ok(created.into_response(false))
        }
        Ok(Err(replay)) => {
            drop(txn.rollback().await);
            Ok(replay)
        }
        Err(err) => {
            drop(txn.rollback().await);
            Err(err)
        }
    }
}

/// Like [`run`], for work that opens its own transactions (a batch, whose
/// items commit one by one so a bad item never undoes the good ones). The key
/// is claimed *before* the work, so a replay answers from the store without
/// running the work again — running a batch's items a second time could
/// create referrals anew. The answer is stored once the work is done; if that
/// fails, the claim goes stale and a retry runs the work again, which the
/// items' own duplicate checks make safe.
pub async fn run_self_committing<F>(
    db: &DatabaseConnection,
    principal: &Principal,
    key: &IdempotencyKey,
    request: (&str, &str, &Value),
    work: F,
) -> Result<HttpResponse, ApiError>
where
    F: AsyncFnOnce() -> Result<Created, ApiError>,
{
    let Some(key) = key.0.as_deref() else {
        return Ok(work().await?.into_response(false));
    };
    let scope = principal.scope();
    let holder = match claim(db, &scope, key, &fingerprint(request)).await? {
        Claim::Replay(replay) => return Ok(replay),
        Claim::Fresh(holder) => holder,
    };
    match work().await {
        Ok(created) => {
            let body = created.body.to_string();
            // `false` (taken over meanwhile) still answers this caller: its
            // items are committed and their own duplicate checks guard the
            // other copy.
            repo::complete(db, &scope, key, &holder.0, created.status.as_u16(), &body, created.location.as_deref())
                .await?;
            Ok(created.into_response(false))
        }
        Err(err) => {
            // Best effort, as in `run`.
            drop(repo::release(db, &scope, key, &holder.0).await);
            Err(err)
        }
    }
}

enum Claim {
    /// The stored answer of an earlier request with this key.
    Replay(HttpResponse),
    /// The key is ours; do the work.
    Fresh(Holder),
}

fn in_progress() -> ApiError {
    ApiError::new(
        Problem::IdempotencyInProgress,
        "A request with this Idempotency-Key is still being processed; retry shortly.",
    )
    .with_retry_after(1)
}

/// Claims the key; returns the stored response when this is a replay.
async fn claim(db: &DatabaseConnection, scope: &str, key: &str, fingerprint: &str) -> Result<Claim, ApiError> {
    // Two rounds: the second follows the removal of an expired key.
    for _ in 0..2 {
        let started = now();
        // Live before it is written, so no request of ours sees it dead.
        let holder = Holder::new();
        match repo::claim(db, scope, key, fingerprint, started, holder.lease(started)).await {
            Ok(()) => return Ok(Claim::Fresh(holder)),
            Err(e) if is_unique_violation(&e) => {}
            Err(e) => return Err(e.into()),
        }
        let Some(existing) = repo::find(db, scope, key).await? else { continue };
        match judge(&existing, fingerprint, started)? {
            Found::Expired => {
                repo::remove(db, scope, key).await?;
                continue;
            }
            Found::Replay(replay) => return Ok(Claim::Replay(replay)),
            Found::Running => {
                if abandoned(&existing, started)
                    && repo::take_over(db, &existing, started, holder.lease(started)).await?
                {
                    return Ok(Claim::Fresh(holder));
                }
                return Err(in_progress());
            }
        }
    }
    Err(ApiError::new(Problem::IdempotencyInProgress, "The Idempotency-Key is contended; retry shortly.")
        .with_retry_after(1))
}

/// What a stored row of the key means for a request with `fingerprint`.
enum Found {
    /// Past its retention: the key is free again.
    Expired,
    /// The stored answer (same request, completed).
    Replay(HttpResponse),
    /// Same request, still in progress (or left behind by a dead holder).
    Running,
}

/// Judges `existing`; a different request under the key is a `422`.
fn judge(
    existing: &repo::ClaimRow,
    fingerprint: &str,
    started: chrono::DateTime<chrono::Utc>,
) -> Result<Found, ApiError> {
    if existing.created_at < started - Duration::hours(RETENTION_HOURS) {
        return Ok(Found::Expired);
    }
    if existing.fingerprint != fingerprint {
        return Err(ApiError::new(
            Problem::IdempotencyKeyReused,
            "This Idempotency-Key was used for a different request within the last 24 hours.",
        ));
    }
    if existing.state != repo::COMPLETED {
        return Ok(Found::Running);
    }
    let status = existing
        .status_code
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let body = existing.response_body.as_deref().and_then(|b| serde_json::from_str(b).ok()).unwrap_or(Value::Null);
    Ok(Found::Replay(Created { status, location: existing.location.clone(), body }.into_response(true)))
}

/// Method, path and the canonical body (object keys sorted by `serde_json`).
pub fn fingerprint((method, path, body): (&str, &str, &Value)) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(b" ");
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    hasher.update(body.to_string().as_bytes());
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_ignores_key_order_and_whitespace_but_not_values() {
        let a: Value = serde_json::from_str(r#"{"a":1,"b":2}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{ "b": 2, "a": 1 }"#).unwrap();
        let c: Value = serde_json::from_str(r#"{"a":1,"b":3}"#).unwrap();
        assert_eq!(fingerprint(("POST", "/x", &a)), fingerprint(("POST", "/x", &b)));
        assert_ne!(fingerprint(("POST", "/x", &a)), fingerprint(("POST", "/x", &c)));
        assert_ne!(fingerprint(("POST", "/x", &a)), fingerprint(("POST", "/y", &a)));
    }
}
