//! `Idempotency-Key` on creating POSTs (SPEC §1).
//!
//! Scope is the caller (`iss` + `sub`). The key is claimed in its own short
//! transaction *before* the work starts, so a concurrent retry sees it and
//! gets `409`; the work and the stored response then commit together, so a
//! crash leaves either nothing (the claim goes stale and may be taken over)
//! or the finished response. Only successful responses are stored: a failed
//! attempt releases the key so the caller can correct and retry.
use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, HttpResponse, dev::Payload, http::StatusCode};
use chrono::Duration;
use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};
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
/// An in-progress claim older than this is taken to be abandoned.
const STALE_SECONDS: i64 = 120;

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
    let fingerprint = fingerprint(request);

    if let Some(replay) = claim(db, &scope, key, &fingerprint).await? {
        return Ok(replay);
    }

    let txn = db.begin().await?;
    match work(&txn).await {
        Ok(created) => {
            let body = created.body.to_string();
            repo::complete(&txn, &scope, key, created.status.as_u16(), &body, created.location.as_deref()).await?;
            txn.commit().await?;
            Ok(created.into_response(false))
        }
        Err(err) => {
            drop(txn.rollback().await);
            // Best effort: if this fails too the claim goes stale and is taken over.
            drop(repo::release(db, &scope, key).await);
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
    if let Some(replay) = claim(db, &scope, key, &fingerprint(request)).await? {
        return Ok(replay);
    }
    match work().await {
        Ok(created) => {
            let body = created.body.to_string();
            repo::complete(db, &scope, key, created.status.as_u16(), &body, created.location.as_deref()).await?;
            Ok(created.into_response(false))
        }
        Err(err) => {
            // Best effort, as in `run`.
            drop(repo::release(db, &scope, key).await);
            Err(err)
        }
    }
}

/// Claims the key; returns the stored response when this is a replay.
async fn claim(
    db: &DatabaseConnection,
    scope: &str,
    key: &str,
    fingerprint: &str,
) -> Result<Option<HttpResponse>, ApiError> {
    // Two rounds: the second follows the removal of an expired key.
    for _ in 0..2 {
        let started = now();
        match repo::claim(db, scope, key, fingerprint, started).await {
            Ok(()) => return Ok(None),
            Err(e) if is_unique_violation(&e) => {}
            Err(e) => return Err(e.into()),
        }
        let Some(existing) = repo::find(db, scope, key).await? else { continue };
        if existing.created_at < started - Duration::hours(RETENTION_HOURS) {
            repo::release(db, scope, key).await?;
            continue;
        }
        if existing.fingerprint != fingerprint {
            return Err(ApiError::new(
                Problem::IdempotencyKeyReused,
                "This Idempotency-Key was used for a different request within the last 24 hours.",
            ));
        }
        if existing.state == repo::COMPLETED {
            let status = existing
                .status_code
                .and_then(|s| u16::try_from(s).ok())
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::OK);
            let body =
                existing.response_body.as_deref().and_then(|b| serde_json::from_str(b).ok()).unwrap_or(Value::Null);
            return Ok(Some(Created { status, location: existing.location, body }.into_response(true)));
        }
        if existing.created_at < started - Duration::seconds(STALE_SECONDS)
            && repo::take_over(db, &existing, started).await?
        {
            return Ok(None);
        }
        return Err(ApiError::new(
            Problem::IdempotencyInProgress,
            "A request with this Idempotency-Key is still being processed; retry shortly.",
        )
        .with_retry_after(1));
    }
    Err(ApiError::new(Problem::IdempotencyInProgress, "The Idempotency-Key is contended; retry shortly.")
        .with_retry_after(1))
}

/// Method, path and the canonical body (object keys sorted by `serde_json`).
fn fingerprint((method, path, body): (&str, &str, &Value)) -> String {
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
