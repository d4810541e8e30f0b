//! Bearer-token authentication (SPEC §2): HS256 secret, JWKS, claims, and
//! the `ostwerk token` command.
use std::{
    process::Command,
    sync::{Arc, Mutex},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::{
    SecretKey,
    elliptic_curve::sec1::ToEncodedPoint,
    pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding},
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

use crate::helpers::*;

const PROVIDERS: &str = "/api/v1/providers";
const ISSUER: &str = "https://idp.example/realms/ostwerk";
const AUDIENCE: &str = "ostwerk-api";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Claims of a caseworker token valid for an hour; tests change what they test.
fn caseworker_claims() -> Value {
    json!({"sub": "cw-1", "roles": ["caseworker"], "iat": now(), "exp": now() + 3600})
}

/// Signs `claims` with HS256 and the test secret.
fn hs256(claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
}

/// A fixed P-256 key (no RNG: the test must not depend on rand_core versions).
fn ec_key(seed: u8) -> SecretKey {
    SecretKey::from_slice(&[seed; 32]).unwrap()
}

fn es256(key: &SecretKey, kid: Option<&str>, claims: &Value) -> String {
    // jsonwebtoken's PEM loader needs its `use_pem` feature; PKCS#8 DER needs nothing.
    let der = key.to_pkcs8_der().unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(der.as_bytes())).unwrap()
}

/// The public half of `key` as a JWK.
fn jwk(key: &SecretKey, kid: &str) -> Value {
    let point = key.public_key().to_encoded_point(false);
    json!({
        "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
        "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
    })
}

fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// Replaces the header segment of a signed token, keeping payload and signature.
fn with_header(token: &str, header: &Value) -> String {
    let (_, rest) = token.split_once('.').unwrap();
    format!("{}.{rest}", b64_json(header))
}

async fn get_providers(app: &TestApp, token: &str) -> reqwest::Response {
    app.client.get(app.url(PROVIDERS)).bearer_auth(token).send().await.unwrap()
}

async fn assert_unauthorized(res: reqwest::Response) {
    let www = res.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    assert_problem(res, 401, "unauthorized").await;
    assert!(www.is_some_and(|v| v.starts_with("Bearer")), "WWW-Authenticate: Bearer missing");
}

/// A JWKS endpoint the test controls: a raw HTTP/1.1 responder that serves
/// whatever document is currently in `doc`.
struct JwksServer {
    url: String,
    doc: Arc<Mutex<Value>>,
}

impl JwksServer {
    async fn start(keys: Vec<Value>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let doc = Arc::new(Mutex::new(json!({ "keys": keys })));
        let served = doc.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let body = served.lock().unwrap().to_string();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self { url, doc }
    }

    fn publish(&self, keys: Vec<Value>) {
        *self.doc.lock().unwrap() = json!({ "keys": keys });
    }
}

/// An app that trusts only the JWKS (no shared secret).
async fn spawn_jwks_app(jwks: &JwksServer) -> TestApp {
    spawn_app_with(Options { jwks_url: Some(jwks.url.clone()), jwt_secret: Some(None), ..Default::default() }).await
}

async fn spawn_app_with_issuer_and_audience() -> TestApp {
    spawn_app_with(Options { issuer: Some(ISSUER.into()), audience: Some(AUDIENCE.into()), ..Default::default() }).await
}

// ---- HS256 secret -------------------------------------------------------

#[tokio::test]
async fn valid_hs256_token_is_accepted() {
    // Arrange
    let app = spawn_app().await;
    // Act
    let res = get_providers(&app, &hs256(&caseworker_claims())).await;
    // Assert
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn request_without_authorization_header_is_401_with_bearer_challenge() {
    let app = spawn_app().await;

    let res = app.client.get(app.url(PROVIDERS)).send().await.unwrap();

    assert_unauthorized(res).await;
}

#[tokio::test]
async fn basic_authorization_scheme_is_401() {
    let app = spawn_app().await;

    let res = app.client.get(app.url(PROVIDERS)).header("authorization", "Basic xyz").send().await.unwrap();

    assert_unauthorized(res).await;
}

#[tokio::test]
async fn garbage_token_is_401() {
    let app = spawn_app().await;

    let res = get_providers(&app, "not-a-jwt").await;

    assert_unauthorized(res).await;
}

#[tokio::test]
async fn token_signed_with_another_secret_is_401() {
    let app = spawn_app().await;
    let other = EncodingKey::from_secret(b"another-secret-that-is-also-32-bytes-long");
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &caseworker_claims(), &other).unwrap();

    let res = get_providers(&app, &token).await;

    assert_unauthorized(res).await;
}

#[tokio::test]
async fn token_expired_beyond_the_leeway_is_401() {
    let app = spawn_app().await;
    let mut claims = caseworker_claims();
    claims["exp"] = json!(now() - 120);

    let res = get_providers(&app, &hs256(&claims)).await;

    assert_unauthorized(res).await;
}

#[tokio::test]
async fn token_expired_within_the_30_second_leeway_is_accepted() {
    let app = spawn_app().await;
    let mut claims = caseworker_claims();
    claims["exp"] = json!(now() - 10);

    let res = get_providers(&app, &hs256(&claims)).await;

    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn token_not_yet_valid_is_401() {
    let app = spawn_app().await;
    let mut claims = caseworker_claims();
    claims["nbf"] = json!(now() + 120);

    let res = get_providers(&app, &hs256(&claims)).await;

    assert_unauthorized(res).await;
}

#[tokio::test]
async fn token_without_exp_is_401() {
    let app = spawn_app().await;
    let mut claims = caseworker_claims();
    claims.as_object_mut().unwrap().remove("exp");

    let res = get_providers(&app, &hs256(&claims)).await;

    assert_unauthorized(res).await;
}

#[tokio::test]
async fn unsigned_alg_none_token_is_401() {
    let app = spawn_app().await;
    let token = format!("{}.{}.", b64_json(&json!({"alg": "none", "typ": "JWT"})), b64_json(&caseworker_claims()));

    let res = get_providers(&app, &token).await;

    assert_unauthorized(res).await;
}

#[tokio::test]
async fn hs256_header_on_a_token_signed_with_an_ec_key_is_401() {
    let app = spawn_app().await;
    let es = es256(&ec_key(7), None, &caseworker_claims());
    let token = with_header(&es, &json!({"alg": "HS256", "typ": "JWT"}));

    let res = get_providers(&app, &token).await;

    assert_unauthorized(res).await;
}

#[tokio::test]
async fn es256_token_is_401_when_only_a_secret_is_configured() {
    let app = spawn_app().await;

    let res = get_providers(&app, &es256(&ec_key(7), Some("k1"), &caseworker_claims())).await;

    assert_unauthorized(res).await;
}

#[tokio::test]
async fn provider_token_without_org_claim_is_401() {
    let app = spawn_app().await;
    let claims = json!({"sub": "p-1", "roles": ["provider"], "exp": now() + 3600});

    let res = get_providers(&app, &hs256(&claims)).await;

    assert_unauthorized(res).await;
}

#[tokio::test]
async fn roles_are_read_from_keycloak_realm_access_when_roles_is_absent() {
    let app = spawn_app().await;
    let claims = json!({
        "sub": "kc-user", "exp": now() + 3600,
        "realm_access": {"roles": ["offline_access", "uma_authorization", "caseworker"]}
    });

    let res = get_providers(&app, &hs256(&claims)).await;

    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn token_with_only_unknown_roles_is_403() {
    let app = spawn_app().await;
    let claims = json!({"sub": "u-1", "roles": ["offline_access", "superuser"], "exp": now() + 3600});

    let res = get_providers(&app, &hs256(&claims)).await;

    assert_problem(res, 403, "forbidden").await;
}

// ---- issuer and audience --------------------------------------------------

#[tokio::test]
async fn token_without_issuer_is_401_when_an_issuer_is_configured() {
    let app = spawn_app_with_issuer_and_audience().await;
    let mut claims = caseworker_claims();
    claims["aud"] = json!(AUDIENCE);

    let res = get_providers(&app, &hs256(&claims)).await;

    assert_unauthorized(res).await;
}

#[tokio::test]
async fn token_with_wrong_issuer_is_401() {
    let app = spawn_app_with_issuer_and_audience().await;
    let mut claims = caseworker_claims();
    claims["iss"] = json!("https://evil.example");
    claims["aud"] = json!(AUDIENCE);

    let res = get_providers(&app, &hs256(&claims)).await;

    assert_unauthorized(res).await;
}

#[tokio::test]
async fn token_without_audience_is_401_when_an_audience_is_configured() {
    let app = spawn_app_with_issuer_and_audience().await;
    let mut claims = caseworker_claims();
    claims["iss"] = json!(ISSUER);

    let res = get_providers(&app, &hs256(&claims)).await;

    assert_unauthorized(res).await;
}

#[tokio::test]
async fn token_with_wrong_audience_is_401() {
    let app = spawn_app_with_issuer_and_audience().await;
    let mut claims = caseworker_claims();
    claims["iss"] = json!(ISSUER);
    claims["aud"] = json!(["account", "someone-else"]);

    let res = get_providers(&app, &hs256(&claims)).await;

    assert_unauthorized(res).await;
}

#[tokio::test]
async fn token_with_configured_issuer_and_audience_is_accepted() {
    let app = spawn_app_with_issuer_and_audience().await;
    let mut claims = caseworker_claims();
    claims["iss"] = json!(ISSUER);
    claims["aud"] = json!(["account", AUDIENCE]);

    let res = get_providers(&app, &hs256(&claims)).await;

    assert_eq!(res.status(), StatusCode::OK);
}

// ---- JWKS -------------------------------------------------------------------

#[tokio::test]
async fn es256_token_verified_by_a_jwks_key_is_accepted() {
    // Arrange
    let key = ec_key(1);
    let jwks = JwksServer::start(vec![jwk(&key, "k1")]).await;
    let app = spawn_jwks_app(&jwks).await;
    // Act
    let res = get_providers(&app, &es256(&key, Some("k1"), &caseworker_claims())).await;
    // Assert
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn rotated_jwks_key_is_fetched_on_unknown_kid_without_restart() {
    // Arrange: the app has loaded k1; then the provider rotates to k2.
    let old = ec_key(1);
    let new = ec_key(2);
    let jwks = JwksServer::start(vec![jwk(&old, "k1")]).await;
    let app = spawn_jwks_app(&jwks).await;
    assert_eq!(get_providers(&app, &es256(&old, Some("k1"), &caseworker_claims())).await.status(), StatusCode::OK);
    jwks.publish(vec![jwk(&new, "k2")]);
    // Act
    let res = get_providers(&app, &es256(&new, Some("k2"), &caseworker_claims())).await;
    // Assert
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn token_with_a_kid_the_jwks_does_not_have_is_401() {
    let jwks = JwksServer::start(vec![jwk(&ec_key(1), "k1")]).await;
    let app = spawn_jwks_app(&jwks).await;

    let res = get_providers(&app, &es256(&ec_key(3), Some("k9"), &caseworker_claims())).await;

    assert_unauthorized(res).await;
}

#[tokio::test]
async fn hs256_token_carrying_a_jwks_kid_is_401() {
    // The classic confusion attack: HMAC-sign with the public key as secret.
    let key = ec_key(1);
    let jwks = JwksServer::start(vec![jwk(&key, "k1")]).await;
    let app = spawn_jwks_app(&jwks).await;
    let public_pem = key.public_key().to_public_key_pem(LineEnding::LF).unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let token =
        jsonwebtoken::encode(&header, &caseworker_claims(), &EncodingKey::from_secret(public_pem.as_bytes())).unwrap();

    let res = get_providers(&app, &token).await;

    assert_unauthorized(res).await;
}

// ---- `ostwerk token` and `ostwerk openapi` ----------------------------------

/// The binary with no inherited Ostwerk configuration.
fn ostwerk() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ostwerk"));
    for var in
        ["OSTWERK_JWT_SECRET", "OSTWERK_JWT_JWKS_URL", "OSTWERK_JWT_ISSUER", "OSTWERK_JWT_AUDIENCE", "DATABASE_URL"]
    {
        cmd.env_remove(var);
    }
    cmd.env("OSTWERK_LOG", "error");
    cmd
}

const TOKEN_ARGS: [&str; 9] = ["token", "--role", "provider", "--org", "X", "--sub", "s", "--ttl", "60"];

#[tokio::test]
async fn token_command_prints_a_token_the_service_accepts() {
    // Arrange
    let app = spawn_app().await;
    // Act
    let out = ostwerk().args(TOKEN_ARGS).env("OSTWERK_JWT_SECRET", SECRET).output().unwrap();
    // Assert
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(get_providers(&app, &token).await.status(), StatusCode::OK);
}

#[test]
fn token_command_fails_without_a_secret() {
    let out = ostwerk().args(TOKEN_ARGS).output().unwrap();

    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("eyJ"), "a token was printed");
}

#[test]
fn token_command_refuses_a_secret_shorter_than_32_bytes() {
    let out = ostwerk().args(TOKEN_ARGS).env("OSTWERK_JWT_SECRET", "too-short-secret").output().unwrap();

    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("eyJ"), "a token was printed");
}

#[test]
fn openapi_command_prints_the_openapi_document() {
    let out = ostwerk().arg("openapi").output().unwrap();

    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "openapi key: {}", doc["openapi"]);
}
