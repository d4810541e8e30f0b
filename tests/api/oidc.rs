//! A real OpenID provider end to end (issue 11): node-oidc-provider
//! (`tests/oidc/provider.mjs`) hands out JWT access tokens by
//! `client_credentials`; Ostwerk, configured with only `OSTWERK_OIDC_ISSUER`
//! and the audience, finds the keys through discovery and maps the tokens'
//! roles and org.
//!
//! Needs `node` and `tests/oidc/node_modules` (`npm ci` in `tests/oidc`).
//! Without them each test prints a skip line and passes, unless
//! `OSTWERK_REQUIRE_OIDC=1` (set by `.ci/run`), when it fails.
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{helpers::*, operations::Running, referral_fixtures as fx};

/// What Ostwerk is configured to accept as `aud`, and what the provider issues by default.
const AUDIENCE: &str = "https://ostwerk.test/api";
/// A list every role used here may read (analysts browse measures).
const MEASURES: &str = "/api/v1/measures";

fn oidc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

/// Whether the provider can run here; prints why not (or fails, when required).
fn provider_available() -> bool {
    let required = std::env::var("OSTWERK_REQUIRE_OIDC").is_ok_and(|v| v == "1");
    let node = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    let package = oidc_dir().join("node_modules/oidc-provider/package.json").is_file();
    let missing = match (node, package) {
        (true, true) => return true,
        (false, _) => "node is not installed",
        (true, false) => "tests/oidc/node_modules is missing (run `npm ci` in tests/oidc)",
    };
    assert!(!required, "OSTWERK_REQUIRE_OIDC=1, but {missing}");
    eprintln!("SKIPPED: the OIDC end-to-end test needs the real provider: {missing}");
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The OpenID provider as a child process on a loopback port, stopped when dropped.
struct Idp {
    issuer: String,
    http: reqwest::Client,
    _process: Running,
}

impl Idp {
    /// Starts a provider; with `keys`, it signs with the key set in that
    /// file (made there if missing), so two issuers can share one key.
    async fn start(keys: Option<&Path>) -> Self {
        let port = free_port();
        let mut cmd = Command::new("node");
        cmd.arg(oidc_dir().join("provider.mjs"))
            .args(["--port", &port.to_string(), "--audience", AUDIENCE])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(keys) = keys {
            cmd.arg("--keys").arg(keys);
        }
        let mut process = Running(cmd.spawn().expect("start node tests/oidc/provider.mjs"));
        ostwerk::startup::install_crypto_provider();
        let (issuer, http) = (format!("http://127.0.0.1:{port}"), reqwest::Client::new());
        let discovery = format!("{issuer}/.well-known/openid-configuration");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if http.get(&discovery).send().await.is_ok_and(|r| r.status().is_success()) {
                return Idp { issuer, http, _process: process };
            }
            assert!(process.0.try_wait().unwrap().is_none(), "the OpenID provider exited at start");
            assert!(Instant::now() < deadline, "the OpenID provider did not come up within 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn admin(&self, path: &str, body: Value) -> Value {
        let res = self.http.post(format!("{}/_admin/{path}", self.issuer)).json(&body).send().await.unwrap();
        assert_eq!(res.status(), 200, "admin {path}");
        res.json().await.unwrap()
    }

    /// Registers a `client_credentials` client whose tokens carry `claims`; returns its id.
    async fn client(&self, claims: Value) -> String {
        let client_id = format!("svc-{}", uuid::Uuid::new_v4().simple());
        self.admin(
            "clients",
            json!({"client_id": client_id, "client_secret": secret_of(&client_id), "claims": claims}),
        )
        .await;
        client_id
    }

    /// An access token for `client_id`, for `resource` (default: Ostwerk's audience).
    async fn token(&self, client_id: &str, resource: Option<&str>) -> String {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        if let Some(resource) = resource {
            form.append_pair("resource", resource);
        }
        let res = self
            .http
            .post(format!("{}/token", self.issuer))
            .basic_auth(client_id, Some(secret_of(client_id)))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.finish())
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, 200, "token request: {body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// A new signing key; the previous one is withdrawn from the JWKS. Returns the new `kid`.
    async fn rotate(&self) -> String {
        self.admin("rotate", json!({"keep_previous": false})).await["kid"].as_str().unwrap().to_owned()
    }
}

fn secret_of(client_id: &str) -> String {
    format!("{client_id}-secret")
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// Ostwerk trusting the provider at `issuer` (`OSTWERK_OIDC_ISSUER`) with
/// `AUDIENCE`. (The test secret stays configured, but its tokens lack the
/// audience, so all data here is arranged with the provider's tokens.)
async fn app_trusting(issuer: String) -> TestApp {
    spawn_app_with(Options {
        audience: Some(AUDIENCE.to_owned()),
        configure: Some(Box::new(move |s| {
            s.oidc_issuer = Some(issuer);
            s.jwks_refresh_secs = 1;
        })),
        ..Default::default()
    })
    .await
}

async fn get_with(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client.get(app.url(path)).bearer_auth(token).send().await.unwrap()
}

/// POSTs `body` with `token`; must be `201`; returns the resource.
async fn create_with(app: &TestApp, path: &str, token: &str, body: &Value) -> Value {
    let res = app.client.post(app.url(path)).bearer_auth(token).json(body).send().await.unwrap();
    let status = res.status();
    let created: Value = res.json().await.unwrap();
    assert_eq!(status, 201, "POST {path}: {created}");
    created
}

/// Asks with `token` until the answer is `status` (bounded: 15 s).
async fn poll_until(app: &TestApp, token: &str, status: u16) -> bool {
    for _ in 0..150 {
        if get_with(app, MEASURES, token).await.status().as_u16() == status {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn assert_refused(res: reqwest::Response, detail_part: &str) {
    assert_eq!(res.status(), 401);
    assert!(res.headers().get("www-authenticate").is_some_and(|v| v.to_str().unwrap().starts_with("Bearer")));
    let body: Value = res.json().await.unwrap();
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(detail_part), "detail {detail:?} does not mention {detail_part:?}");
}

#[tokio::test]
async fn a_jobcenter_token_of_the_provider_creates_and_reads_its_client() {
    if !provider_available() {
        return;
    }
    // Arrange
    let idp = Idp::start(None).await;
    let app = app_trusting(idp.issuer.clone()).await;
    let jobcenter = idp.client(json!({"roles": ["jobcenter"], "org": "jc-leipzig-ost"})).await;
    let token = idp.token(&jobcenter, None).await;
    // Act
    let created = create_with(&app, "/api/v1/clients", &token, &client_body()).await;
    // Assert
    assert_eq!(created["external_id"], client_body()["external_id"]);
    let read = get_with(&app, &format!("/api/v1/clients/{}", id_of(&created)), &token).await;
    assert_eq!(read.status(), 200);
    // The org came from the token: a job centre of another org does not see the client.
    let other = idp.client(json!({"roles": ["jobcenter"], "org": "jc-somewhere-else"})).await;
    let other_token = idp.token(&other, None).await;
    assert_eq!(get_with(&app, &format!("/api/v1/clients/{}", id_of(&created)), &other_token).await.status(), 404);
}

#[tokio::test]
async fn a_provider_token_with_keycloak_realm_roles_sees_only_referrals_into_its_measures() {
    if !provider_available() {
        return;
    }
    // Arrange: two providers with a measure and a referral each, made by a
    // caseworker of the OpenID provider.
    let idp = Idp::start(None).await;
    let app = app_trusting(idp.issuer.clone()).await;
    let caseworker = idp.token(&idp.client(json!({"roles": ["caseworker"]})).await, None).await;
    let mut referrals = Vec::new();
    let mut providers = Vec::new();
    for n in 0..2 {
        let provider = create_with(&app, "/api/v1/providers", &caseworker, &provider_body("Bildungswerk Ost")).await;
        let measure = create_with(&app, "/api/v1/measures", &caseworker, &measure_body(&id_of(&provider))).await;
        let client_body = client_body_with(json!({"external_id": format!("JC-OIDC-{n}")}));
        let client = create_with(&app, "/api/v1/clients", &caseworker, &client_body).await;
        let body = json!({"client_id": id_of(&client), "measure_id": id_of(&measure)});
        referrals.push(id_of(&create_with(&app, fx::REFERRALS, &caseworker, &body).await));
        providers.push(id_of(&provider));
    }
    // Keycloak's shape: no top-level `roles`, realm roles with IdP extras.
    let client = idp
        .client(json!({"realm_access": {"roles": ["offline_access", "uma_authorization", "provider"]}, "org": providers[0]}))
        .await;
    let token = idp.token(&client, None).await;
    // Act
    let res = get_with(&app, fx::REFERRALS, &token).await;
    // Assert
    assert_eq!(res.status(), 200);
    let page: Value = res.json().await.unwrap();
    assert_eq!(fx::ids_of(&page), vec![referrals[0].clone()]);
}

#[tokio::test]
async fn a_key_rotated_at_the_provider_is_picked_up_without_restart() {
    if !provider_available() {
        return;
    }
    // Arrange
    let idp = Idp::start(None).await;
    let app = app_trusting(idp.issuer.clone()).await;
    let client = idp.client(json!({"roles": ["analyst"]})).await;
    let old_token = idp.token(&client, None).await;
    assert_eq!(get_with(&app, MEASURES, &old_token).await.status(), 200);
    // Act
    let new_kid = idp.rotate().await;
    let new_token = idp.token(&client, None).await;
    // Assert: the new key is fetched on its first unknown kid…
    assert_eq!(kid_of(&new_token), new_kid);
    assert_ne!(kid_of(&old_token), new_kid);
    assert_eq!(get_with(&app, MEASURES, &new_token).await.status(), 200);
    // …and the withdrawn one stops being accepted.
    assert!(poll_until(&app, &old_token, 401).await, "a token of the withdrawn key is still accepted");
}

#[tokio::test]
async fn a_token_of_another_issuer_is_refused_even_with_the_same_key() {
    if !provider_available() {
        return;
    }
    // Arrange: two providers (two issuers) signing with one key.
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    let idp = Idp::start(Some(&keys)).await;
    let stranger = Idp::start(Some(&keys)).await;
    let app = app_trusting(idp.issuer.clone()).await;
    let claims = json!({"roles": ["analyst"]});
    let ours = idp.token(&idp.client(claims.clone()).await, None).await;
    let theirs = stranger.token(&stranger.client(claims).await, None).await;
    assert_eq!(kid_of(&ours), kid_of(&theirs));
    assert_eq!(get_with(&app, MEASURES, &ours).await.status(), 200);
    // Act
    let res = get_with(&app, MEASURES, &theirs).await;
    // Assert
    assert_refused(res, "issuer").await;
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    if !provider_available() {
        return;
    }
    // Arrange
    let idp = Idp::start(None).await;
    let app = app_trusting(idp.issuer.clone()).await;
    let client = idp.client(json!({"roles": ["analyst"]})).await;
    let token = idp.token(&client, Some("https://other-service.example/api")).await;
    // Act
    let res = get_with(&app, MEASURES, &token).await;
    // Assert
    assert_refused(res, "audience").await;
}

#[tokio::test]
async fn keys_are_not_trusted_when_the_discovery_document_names_another_issuer() {
    if !provider_available() {
        return;
    }
    // Arrange: configured with a trailing slash, the provider calls itself without one.
    let idp = Idp::start(None).await;
    let app = app_trusting(format!("{}/", idp.issuer)).await;
    let client = idp.client(json!({"roles": ["analyst"]})).await;
    let token = idp.token(&client, None).await;
    // Act
    let res = get_with(&app, MEASURES, &token).await;
    // Assert
    assert_refused(res, "not signed with a key this service accepts").await;
}

#[test]
fn the_start_is_refused_with_both_a_jwks_url_and_an_issuer_or_a_non_http_issuer() {
    use ostwerk::auth::{Authenticator, KeyConfigError};
    // Arrange
    let mut both = ostwerk::config::Settings::defaults().unwrap();
    both.jwt_jwks_url = Some("https://sso.example.org/realms/ostwerk/protocol/openid-connect/certs".to_owned());
    both.oidc_issuer = Some("https://sso.example.org/realms/ostwerk".to_owned());
    let mut not_http = both.clone();
    not_http.jwt_jwks_url = None;
    not_http.oidc_issuer = Some("sso.example.org/realms/ostwerk".to_owned());
    // Act
    let (both, not_http) = (Authenticator::new(&both, None), Authenticator::new(&not_http, None));
    // Assert
    assert!(matches!(both, Err(KeyConfigError::JwksAndIssuer)));
    assert!(matches!(not_http, Err(KeyConfigError::BadIssuerUrl(_))));
}
