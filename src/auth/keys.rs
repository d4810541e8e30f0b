//! Verification keys: a shared HS256 secret and/or an OIDC provider's JWKS,
//! named directly (`OSTWERK_JWT_JWKS_URL`) or found through the provider's
//! discovery document (`OSTWERK_OIDC_ISSUER`).
//!
//! The algorithm is pinned by the key that verifies, never taken from the
//! token header: an HS256 token is checked only against the secret, a token
//! with a `kid` only against that JWKS key with the algorithm the key states
//! (or its key type implies). `alg: none` cannot even be parsed. The issuer
//! is pinned the same way: a token verified by the provider's keys must
//! carry the provider's `iss` (`OSTWERK_OIDC_ISSUER`, else
//! `OSTWERK_JWT_ISSUER`); an HS256 token the `OSTWERK_JWT_ISSUER`, if set.
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

use super::{Claims, Principal, roles::OFFICE_ORG};
use crate::{config::Settings, error::ApiError};

/// Minimum length of `OSTWERK_JWT_SECRET` in bytes (RFC 7518 §3.2: key ≥ hash size).
pub const MIN_SECRET_BYTES: usize = 32;
const LEEWAY_SECS: u64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum KeyConfigError {
    #[error("{0} must be at least {MIN_SECRET_BYTES} bytes long (it has {1})")]
    SecretTooShort(String, usize),
    #[error("OSTWERK_JWT_JWKS_URL is not a valid http(s) URL: {0}")]
    BadJwksUrl(String),
    #[error("OSTWERK_OIDC_ISSUER is not a valid http(s) URL: {0}")]
    BadIssuerUrl(String),
    #[error("set either OSTWERK_JWT_JWKS_URL or OSTWERK_OIDC_ISSUER (which finds the JWKS itself), not both")]
    JwksAndIssuer,
    #[error("could not build the HTTP client for JWKS: {0}")]
    Client(#[from] reqwest::Error),
}

pub struct Authenticator {
    /// HS256 keys, newest first: during a rotation a token signed with any of
    /// them verifies; `ostwerk token` signs with the first only.
    hmac: Vec<DecodingKey>,
    jwks: Option<JwksCache>,
    /// Required `iss` of HS256 tokens (`OSTWERK_JWT_ISSUER`).
    issuer: Option<String>,
    /// Required `iss` of tokens verified by the JWKS: the OIDC issuer, else `OSTWERK_JWT_ISSUER`.
    jwks_issuer: Option<String>,
    audience: Option<String>,
    max_lifetime_secs: u64,
}

/// Where the JWKS comes from.
enum JwksSource {
    /// `OSTWERK_JWT_JWKS_URL`.
    Url(String),
    /// `OSTWERK_OIDC_ISSUER`: `jwks_uri` of `<issuer>/.well-known/openid-configuration`,
    /// looked up again on every fetch, so a provider that moves its keys is followed.
    Discovery { issuer: String },
}

/// The part of an OpenID Provider Metadata document (OpenID Connect Discovery 1.0 §3) we read.
#[derive(serde::Deserialize)]
struct ProviderMetadata {
    issuer: String,
    jwks_uri: String,
}

fn is_http_url(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

struct JwksCache {
    source: JwksSource,
    client: reqwest::Client,
    keys: RwLock<HashMap<String, (DecodingKey, Algorithm)>>,
    /// Until when the last good set may be used without asking again.
    fresh_until: RwLock<Option<Instant>>,
    /// Serialises fetches and remembers when the last one was tried.
    last_fetch: Mutex<Option<Instant>>,
    /// Least time between two fetches not due to age (unknown `kid`, retry after an error).
    min_refresh: Duration,
    /// Most time a fetched set is trusted (`OSTWERK_JWKS_REFRESH_SECS`).
    refresh_every: Duration,
}

/// Why the JWKS is fetched: the rate limits differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fetch {
    /// Start-up: always.
    Initial,
    /// The set is older than its lifetime: at most once per lifetime, and
    /// after a failed fetch not again before `min_refresh`.
    Stale,
    /// A token names a `kid` we do not have: at most once per `min_refresh`.
    UnknownKid,
}

impl Authenticator {
    /// Builds the key sources from the settings. `secret` overrides
    /// `settings.jwt_secret` and its predecessors (development mode passes its ephemeral one).
    pub fn new(settings: &Settings, secret: Option<&str>) -> Result<Self, KeyConfigError> {
        let secrets: Vec<(String, &str)> = match secret {
            Some(s) => vec![("OSTWERK_JWT_SECRET".to_owned(), s)],
            None => settings
                .jwt_secret
                .iter()
                .map(|s| ("OSTWERK_JWT_SECRET".to_owned(), s.as_str()))
                .chain(
                    settings
                        .jwt_previous_secrets
                        .iter()
                        .enumerate()
                        .map(|(i, s)| (format!("previous JWT secret #{}", i + 1), s.as_str())),
                )
                .collect(),
        };
        let mut hmac = Vec::new();
        for (name, s) in secrets {
            if s.len() < MIN_SECRET_BYTES {
                return Err(KeyConfigError::SecretTooShort(name, s.len()));
            }
            hmac.push(DecodingKey::from_secret(s.as_bytes()));
        }
        let set = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        let oidc_issuer = set(&settings.oidc_issuer);
        let source = match (set(&settings.jwt_jwks_url), oidc_issuer.clone()) {
            (Some(_), Some(_)) => return Err(KeyConfigError::JwksAndIssuer),
            (Some(url), None) if !is_http_url(&url) => return Err(KeyConfigError::BadJwksUrl(url)),
            (Some(url), None) => Some(JwksSource::Url(url)),
            (None, Some(issuer)) if !is_http_url(&issuer) => return Err(KeyConfigError::BadIssuerUrl(issuer)),
            (None, Some(issuer)) => Some(JwksSource::Discovery { issuer }),
            (None, None) => None,
        };
        let jwks = match source {
            Some(source) => {
                crate::startup::install_crypto_provider();
                let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
                Some(JwksCache {
                    source,
                    client,
                    keys: RwLock::new(HashMap::new()),
                    fresh_until: RwLock::new(None),
                    last_fetch: Mutex::new(None),
                    min_refresh: Duration::from_secs(settings.jwks_min_refresh_secs),
                    refresh_every: Duration::from_secs(settings.jwks_refresh_secs.max(1)),
                })
            }
            None => None,
        };
        let issuer = set(&settings.jwt_issuer);
        Ok(Self {
            hmac,
            jwks,
            jwks_issuer: oidc_issuer.or_else(|| issuer.clone()),
            issuer,
            audience: settings.jwt_audience.clone().filter(|s| !s.is_empty()),
            max_lifetime_secs: settings.jwt_max_lifetime_secs,
        })
    }

    pub fn has_keys(&self) -> bool {
        !self.hmac.is_empty() || self.jwks.is_some()
    }

    /// Loads the JWKS once at start-up; a failure is logged, not fatal (the
    /// provider may come up after us; the next request retries).
    pub async fn warm_up(&self) {
        if let Some(jwks) = &self.jwks {
            jwks.refresh(Fetch::Initial).await;
        }
    }

    /// Verifies a bearer token and returns the principal, or a `401`.
    pub async fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| ApiError::unauthorized("The bearer token is not a well-formed JWT."))?;
        let claims = match (header.alg, &header.kid) {
            (Algorithm::HS256, _) if !self.hmac.is_empty() => self.decode_hs256(token)?,
            (_, Some(kid)) if self.jwks.is_some() => {
                let (key, alg) = match &self.jwks {
                    Some(jwks) => jwks.key(kid).await.ok_or_else(no_key)?,
                    None => return Err(no_key()),
                };
                decode(token, &key, &self.validation(alg, self.jwks_issuer.as_deref()))?
            }
            _ => return Err(no_key()),
        };
        self.check_times(&claims)?;
        principal_from(claims)
    }

    /// Tries the HS256 secrets newest first; only a bad signature moves on
    /// to the next (an expired token stays expired under every key).
    fn decode_hs256(&self, token: &str) -> Result<Claims, ApiError> {
        let validation = self.validation(Algorithm::HS256, self.issuer.as_deref());
        let mut last = None;
        for key in &self.hmac {
            match jsonwebtoken::decode::<Claims>(token, key, &validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => last = Some(e),
                Err(e) => return Err(ApiError::unauthorized(describe(e.kind()))),
            }
        }
        Err(ApiError::unauthorized(last.map_or("The token is invalid.", |e| describe(e.kind()))))
    }

    /// What jsonwebtoken does not check: `iat` in the future, and a lifetime
    /// beyond `OSTWERK_JWT_MAX_LIFETIME_SECS` (a stolen long-lived token
    /// would otherwise stay useful for as long as its issuer chose).
    fn check_times(&self, claims: &Claims) -> Result<(), ApiError> {
        let now = chrono::Utc::now().timestamp() as f64;
        let leeway = LEEWAY_SECS as f64;
        if let Some(iat) = claims.iat
            && iat > now + leeway
        {
            return Err(ApiError::unauthorized("The token was issued in the future (iat)."));
        }
        let exp = claims.exp.unwrap_or(now);
        let lifetime = exp - claims.iat.unwrap_or(now);
        if lifetime > self.max_lifetime_secs as f64 {
            return Err(ApiError::unauthorized(format!(
                "The token's lifetime exceeds the accepted maximum of {} seconds.",
                self.max_lifetime_secs
            )));
        }
        Ok(())
    }

    fn validation(&self, alg: Algorithm, issuer: Option<&str>) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = LEEWAY_SECS;
        v.validate_exp = true;
        v.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        match issuer {
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

fn decode(token: &str, key: &DecodingKey, validation: &Validation) -> Result<Claims, ApiError> {
    jsonwebtoken::decode::<Claims>(token, key, validation)
        .map(|data| data.claims)
        .map_err(|e| ApiError::unauthorized(describe(e.kind())))
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
/// Longest `iss` a token may carry.
pub const MAX_ISSUER_CHARS: usize = 300;

/// The one canonical spelling of an org id, decided once at the edge so
/// every comparison after it can be exact: trimmed, and a UUID (in any case
/// or form) as its lower-case hyphenated string — the form ids are stored in.
pub fn canonical_org(raw: &str) -> Option<String> {
    let org = raw.trim();
    if org.is_empty() {
        return None;
    }
    Some(match uuid::Uuid::parse_str(org) {
        Ok(id) => id.to_string(),
        Err(_) => org.to_owned(),
    })
}

fn principal_from(claims: Claims) -> Result<Principal, ApiError> {
    if !claims.states_roles() {
        return Err(ApiError::unauthorized(
            "The token has no roles claim (nor realm_access.roles); it is required, an empty array is allowed.",
        ));
    }
    let roles = claims.ostwerk_roles();
    if claims.sub.trim().is_empty() {
        return Err(ApiError::unauthorized("The token's sub claim is empty."));
    }
    // Control characters (NUL above all: PostgreSQL refuses it) would be
    // stored with everything the principal does and forge log lines.
    for (claim, value) in [("sub", Some(claims.sub.as_str())), ("org", claims.org.as_deref())] {
        if value.is_some_and(|v| v.chars().any(char::is_control)) {
            return Err(ApiError::unauthorized(format!("The token's {claim} claim contains control characters.")));
        }
    }
    let org = claims.org.as_deref().and_then(canonical_org);
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
    if let Some(role) = roles.iter().find(|r| r.needs_org()) {
        match &org {
            None => return Err(ApiError::unauthorized(format!("Role {role} requires an org claim in the token."))),
            // `office` is the office's own name as `referring_org` / creator;
            // a partner claiming it would own what the office owns.
            Some(o) if o.eq_ignore_ascii_case(OFFICE_ORG) => {
                return Err(ApiError::unauthorized(format!(
                    "The org \"{o}\" names the office itself and cannot be claimed for role {role}."
                )));
            }
            Some(_) => {}
        }
    }
    Ok(Principal { sub: claims.sub, iss: claims.iss, roles, org })
}

impl JwksCache {
    async fn key(&self, kid: &str) -> Option<(DecodingKey, Algorithm)> {
        if self.is_stale() {
            self.refresh(Fetch::Stale).await;
        }
        if let Some(found) = self.cached(kid) {
            return Some(found);
        }
        // Unknown kid: the provider may have rotated. Refresh, rate-limited so
        // a stream of forged kids cannot make us hammer the provider.
        self.refresh(Fetch::UnknownKid).await;
        self.cached(kid)
    }

    fn cached(&self, kid: &str) -> Option<(DecodingKey, Algorithm)> {
        self.keys.read().ok().and_then(|keys| keys.get(kid).cloned())
    }

    fn is_stale(&self) -> bool {
        self.fresh_until.read().map(|t| t.is_none_or(|t| Instant::now() >= t)).unwrap_or(true)
    }

    /// Fetches the set when `why` allows it now. A failure keeps the last
    /// good set (an IdP outage must not lock everybody out), is logged and
    /// counted in `ostwerk_jwks_fetch_errors_total`.
    async fn refresh(&self, why: Fetch) {
        let mut last = self.last_fetch.lock().await;
        let tried_within = |d: Duration| last.is_some_and(|t| t.elapsed() < d);
        let go = match why {
            Fetch::Initial => true,
            // Another request may have refreshed while we waited for the lock.
            Fetch::Stale => self.is_stale() && !tried_within(self.min_refresh.max(Duration::from_secs(1))),
            Fetch::UnknownKid => !tried_within(self.min_refresh),
        };
        if !go {
            return;
        }
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok((fresh, max_age)) => {
                tracing::info!(keys = fresh.len(), "JWKS loaded");
                // A shorter max-age wins, but not below the refetch floor.
                let lifetime = match max_age {
                    Some(age) => self.refresh_every.min(age.max(self.min_refresh).max(Duration::from_secs(1))),
                    None => self.refresh_every,
                };
                // Replacing the whole map drops keys the provider withdrew.
                if let Ok(mut keys) = self.keys.write() {
                    *keys = fresh;
                }
                if let Ok(mut until) = self.fresh_until.write() {
                    *until = Some(Instant::now() + lifetime);
                }
            }
            Err(e) => {
                metrics::counter!("ostwerk_jwks_fetch_errors_total").increment(1);
                tracing::warn!(error = %e, reason = ?why, "JWKS fetch failed; keeping the last good key set");
            }
        }
    }

    /// The JWKS URL: configured, or discovered from the issuer. The
    /// discovery document must name exactly the configured issuer (OpenID
    /// Connect Discovery §4.3), else a look-alike could hand out its own keys.
    async fn jwks_url(&self) -> anyhow::Result<String> {
        let issuer = match &self.source {
            JwksSource::Url(url) => return Ok(url.clone()),
            JwksSource::Discovery { issuer } => issuer,
        };
        let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let metadata: ProviderMetadata = self.client.get(&url).send().await?.error_for_status()?.json().await?;
        if metadata.issuer != *issuer {
            anyhow::bail!(
                "the discovery document at {url} names the issuer {:?}, not OSTWERK_OIDC_ISSUER {issuer:?}",
                metadata.issuer
            );
        }
        if !is_http_url(&metadata.jwks_uri) {
            anyhow::bail!("the discovery document at {url} has no http(s) jwks_uri");
        }
        Ok(metadata.jwks_uri)
    }

    async fn fetch(&self) -> anyhow::Result<(HashMap<String, (DecodingKey, Algorithm)>, Option<Duration>)> {
        let url = self.jwks_url().await?;
        let response = self.client.get(&url).send().await?.error_for_status()?;
        let max_age =
            response.headers().get(reqwest::header::CACHE_CONTROL).and_then(|v| v.to_str().ok()).and_then(max_age);
        let set: JwkSet = response.json().await?;
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
        Ok((fresh, max_age))
    }
}

/// `max-age` of a `Cache-Control` value.
fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control
        .split(',')
        .find_map(|d| {
            let (name, value) = d.trim().split_once('=')?;
            name.trim().eq_ignore_ascii_case("max-age").then(|| value.trim().trim_matches('"').parse().ok()).flatten()
        })
        .map(Duration::from_secs)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_is_trimmed_and_uuids_become_lower_case_hyphenated() {
        assert_eq!(canonical_org("  jc-leipzig "), Some("jc-leipzig".to_owned()));
        assert_eq!(
            canonical_org("0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B"),
            Some("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".to_owned())
        );
        assert_eq!(canonical_org("   "), None);
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(max_age("public, max-age=60"), Some(Duration::from_secs(60)));
        assert_eq!(max_age("no-cache"), None);
        assert_eq!(max_age("max-age=abc"), None);
    }
}
