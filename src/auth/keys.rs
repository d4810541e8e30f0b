//! Verification keys: a shared HS256 secret and/or an OIDC provider's JWKS.
//!
//! The algorithm is pinned by the key that verifies, never taken from the
//! token header: an HS256 token is checked only against the secret, a token
//! with a `kid` only against that JWKS key with the algorithm the key states
//! (or its key type implies). `alg: none` cannot even be parsed.
use std::{
    collections::HashMap,
    sync::RwLock,
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey, Validation,
    errors::ErrorKind,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm},
};
use tokio::sync::Mutex;

use super::{Claims, Principal};
use crate::{config::Settings, error::ApiError};

/// Minimum length of `OSTWERK_JWT_SECRET` in bytes (RFC 7518 §3.2: key ≥ hash size).
pub const MIN_SECRET_BYTES: usize = 32;
const LEEWAY_SECS: u64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum KeyConfigError {
    #[error("OSTWERK_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long (it has {0})")]
    SecretTooShort(usize),
    #[error("OSTWERK_JWT_JWKS_URL is not a valid http(s) URL: {0}")]
    BadJwksUrl(String),
    #[error("could not build the HTTP client for JWKS: {0}")]
    Client(#[from] reqwest::Error),
}

pub struct Authenticator {
    hmac: Option<DecodingKey>,
    jwks: Option<JwksCache>,
    issuer: Option<String>,
    audience: Option<String>,
}

struct JwksCache {
    url: String,
    client: reqwest::Client,
    keys: RwLock<HashMap<String, (DecodingKey, Algorithm)>>,
    /// Serialises refreshes and remembers when the last one ran.
    last_fetch: Mutex<Option<Instant>>,
    min_refresh: Duration,
}

impl Authenticator {
    /// Builds the key sources from the settings. `secret` overrides
    /// `settings.jwt_secret` (development mode passes its ephemeral one).
    pub fn new(settings: &Settings, secret: Option<&str>) -> Result<Self, KeyConfigError> {
        let hmac = match secret.or(settings.jwt_secret.as_deref()) {
            Some(s) if s.len() < MIN_SECRET_BYTES => return Err(KeyConfigError::SecretTooShort(s.len())),
            Some(s) => Some(DecodingKey::from_secret(s.as_bytes())),
            None => None,
        };
        let jwks = match &settings.jwt_jwks_url {
            Some(url) if !url.is_empty() => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(KeyConfigError::BadJwksUrl(url.clone()));
                }
                crate::startup::install_crypto_provider();
                let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
                Some(JwksCache {
                    url: url.clone(),
                    client,
                    keys: RwLock::new(HashMap::new()),
                    last_fetch: Mutex::new(None),
                    min_refresh: Duration::from_secs(settings.jwks_min_refresh_secs),
                })
            }
            _ => None,
        };
        Ok(Self {
            hmac,
            jwks,
            issuer: settings.jwt_issuer.clone().filter(|s| !s.is_empty()),
            audience: settings.jwt_audience.clone().filter(|s| !s.is_empty()),
        })
    }

    pub fn has_keys(&self) -> bool {
        self.hmac.is_some() || self.jwks.is_some()
    }

    /// Loads the JWKS once at start-up; a failure is logged, not fatal (the
    /// provider may come up after us; the next unknown `kid` retries).
    pub async fn warm_up(&self) {
        if let Some(jwks) = &self.jwks
            && let Err(e) = jwks.refresh(true).await
        {
            tracing::warn!(error = %e, "could not load the JWKS at start-up; will retry on demand");
        }
    }

    /// Verifies a bearer token and returns the principal, or a `401`.
    pub async fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| ApiError::unauthorized("The bearer token is not a well-formed JWT."))?;
        let (key, alg) = match (header.alg, &header.kid) {
            (Algorithm::HS256, _) if self.hmac.is_some() => match &self.hmac {
                Some(k) => (k.clone(), Algorithm::HS256),
                None => return Err(no_key()),
            },
            (_, Some(kid)) if self.jwks.is_some() => match &self.jwks {
                Some(jwks) => jwks.key(kid).await.ok_or_else(no_key)?,
                None => return Err(no_key()),
            },
            _ => return Err(no_key()),
        };
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &self.validation(alg))
            .map_err(|e| ApiError::unauthorized(describe(e.kind())))?
            .claims;
        principal_from(claims)
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = LEEWAY_SECS;
        v.validate_exp = true;
        v.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        match &self.issuer {
            Some(iss) => {
                v.set_issuer(&[iss]);
                required.push("iss");
            }
            None => v.iss = None,
        }
        match &self.audience {
            Some(aud) => {
                v.set_audience(&[aud]);
                required.push("aud");
            }
            None => v.validate_aud = false,
        }
        v.set_required_spec_claims(&required);
        v
    }
}

fn no_key() -> ApiError {
    ApiError::unauthorized("The token is not signed with a key this service accepts.")
}

fn describe(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "The token has expired.",
        ErrorKind::ImmatureSignature => "The token is not valid yet (nbf).",
        ErrorKind::InvalidSignature => "The token signature is invalid.",
        ErrorKind::InvalidAlgorithm => "The token's algorithm does not match its key.",
        ErrorKind::InvalidIssuer => "The token's issuer is not accepted.",
        ErrorKind::InvalidAudience => "The token's audience is not accepted.",
        ErrorKind::MissingRequiredClaim(_) => "The token lacks a required claim (exp, sub, iss or aud).",
        _ => "The token is invalid.",
    }
}

/// Longest `sub` and `org` a token may carry: they are stored with what the
/// principal does (`consultations.counsellor`, `*.created_by_org`,
/// `audit_events.actor_org`, … are `VARCHAR(200)`), and PostgreSQL refuses
/// longer values where SQLite silently keeps them — a `500` on every write.
pub const MAX_PRINCIPAL_CHARS: usize = 200;
/// Longest `iss`: the idempotency scope `iss|sub` is a `VARCHAR(600)`.
pub const MAX_ISSUER_CHARS: usize = 300;

fn principal_from(claims: Claims) -> Result<Principal, ApiError> {
    let roles = claims.ostwerk_roles();
    let org = claims.org.clone().filter(|o| !o.trim().is_empty());
    if claims.sub.trim().is_empty() {
        return Err(ApiError::unauthorized("The token's sub claim is empty."));
    }
    let too_long = |value: Option<&str>, max: usize| value.is_some_and(|v| v.chars().count() > max);
    for (claim, value, max) in [
        ("sub", Some(claims.sub.as_str()), MAX_PRINCIPAL_CHARS),
        ("org", org.as_deref(), MAX_PRINCIPAL_CHARS),
        ("iss", claims.iss.as_deref(), MAX_ISSUER_CHARS),
    ] {
        if too_long(value, max) {
            return Err(ApiError::unauthorized(format!("The token's {claim} claim is longer than {max} characters.")));
        }
    }
    if let Some(role) = roles.iter().find(|r| r.needs_org())
        && org.is_none()
    {
        return Err(ApiError::unauthorized(format!("Role {role} requires an org claim in the token.")));
    }
    Ok(Principal { sub: claims.sub, iss: claims.iss, roles, org })
}

impl JwksCache {
    async fn key(&self, kid: &str) -> Option<(DecodingKey, Algorithm)> {
        if let Some(found) = self.cached(kid) {
            return Some(found);
        }
        // Unknown kid: the provider may have rotated. Refresh, rate-limited so
        // a stream of forged kids cannot make us hammer the provider.
        if let Err(e) = self.refresh(false).await {
            tracing::warn!(error = %e, "JWKS refresh failed");
        }
        self.cached(kid)
    }

    fn cached(&self, kid: &str) -> Option<(DecodingKey, Algorithm)> {
        self.keys.read().ok().and_then(|keys| keys.get(kid).cloned())
    }

    async fn refresh(&self, force: bool) -> anyhow::Result<()> {
        let mut last = self.last_fetch.lock().await;
        if !force && last.is_some_and(|t| t.elapsed() < self.min_refresh) {
            return Ok(());
        }
        *last = Some(Instant::now());
        let set: JwkSet = self.client.get(&self.url).send().await?.error_for_status()?.json().await?;
        let mut fresh = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Some(alg)) = (jwk.common.key_id.clone(), algorithm_of(jwk)) else { continue };
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => {
                    fresh.insert(kid, (key, alg));
                }
                Err(e) => tracing::warn!(kid, error = %e, "skipping unusable JWKS key"),
            }
        }
        tracing::info!(keys = fresh.len(), "JWKS loaded");
        if let Ok(mut keys) = self.keys.write() {
            *keys = fresh;
        }
        Ok(())
    }
}

/// The algorithm a JWK is for: its `alg`, else what its key type implies.
/// Only RS256, ES256/ES384 and EdDSA are accepted from a JWKS.
fn algorithm_of(jwk: &Jwk) -> Option<Algorithm> {
    let stated = jwk.common.key_algorithm.and_then(|a| match a {
        KeyAlgorithm::RS256 => Some(Algorithm::RS256),
        KeyAlgorithm::ES256 => Some(Algorithm::ES256),
        KeyAlgorithm::ES384 => Some(Algorithm::ES384),
        KeyAlgorithm::EdDSA => Some(Algorithm::EdDSA),
        _ => None,
    });
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Some(Algorithm::ES256),
            EllipticCurve::P384 => Some(Algorithm::ES384),
            _ => None,
        },
        AlgorithmParameters::OctetKeyPair(_) => Some(Algorithm::EdDSA),
        _ => None,
    };
    let alg = stated.or(implied)?;
    matches!(alg, Algorithm::RS256 | Algorithm::ES256 | Algorithm::ES384 | Algorithm::EdDSA).then_some(alg)
}
