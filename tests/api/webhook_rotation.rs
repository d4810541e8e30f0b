//! Webhook secret rotation (issue 10): `POST /webhooks/{id}/rotate-secret`,
//! both signatures during the overlap, only the new one after it — checked
//! on real deliveries with the Standard Webhooks reference verifier (PyPI
//! `standardwebhooks`, run by `tests/webhooks/verify.py`).
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use crate::helpers::*;

#[derive(Clone, Debug, serde::Serialize)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// A partner endpoint on 127.0.0.1 that records every request and answers `204`.
async fn receiver() -> (String, Arc<Mutex<Vec<Received>>>) {
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let store = got.clone();
    let server = HttpServer::new(move || {
        let store = store.clone();
        App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
            let store = store.clone();
            async move {
                let h = |n: &str| req.headers().get(n).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
                store.lock().unwrap().push(Received {
                    id: h("webhook-id"),
                    timestamp: h("webhook-timestamp"),
                    signature: h("webhook-signature"),
                    body: String::from_utf8(body.to_vec()).unwrap(),
                });
                HttpResponse::NoContent().finish()
            }
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let url = format!("http://{}/hook", server.addrs()[0]);
    tokio::spawn(server.run());
    (url, got)
}

async fn wait_for(got: &Arc<Mutex<Vec<Received>>>, n: usize) -> Vec<Received> {
    for _ in 0..200 {
        if got.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    got.lock().unwrap().clone()
}

const OVERLAP_SECS: u64 = 3;

async fn app_with_short_overlap() -> TestApp {
    spawn_app_with(Options {
        webhook_allow_private: true,
        configure: Some(Box::new(|s| s.webhook_secret_overlap_secs = OVERLAP_SECS)),
        ..Default::default()
    })
    .await
}

/// Which of `secrets` verify `delivery`, by the reference verifier; `None`
/// when Python or the `standardwebhooks` package is missing (the test then
/// says so and relies on its own check only). `OSTWERK_TEST_PYTHON` names
/// the interpreter (CI points it at a venv with the pinned package).
fn reference_verifies(secrets: &[&str], delivery: &Received) -> Option<Vec<bool>> {
    use std::{io::Write, process::Stdio};
    let python = std::env::var("OSTWERK_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/webhooks/verify.py");
    let mut child = std::process::Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .ok()?;
    let request = json!({"secrets": secrets, "deliveries": [delivery]});
    child.stdin.take().unwrap().write_all(request.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.code() == Some(3) {
        eprintln!("SKIPPED: the standardwebhooks package is missing (pip install -r tests/webhooks/requirements.txt)");
        return None;
    }
    assert!(out.status.success(), "verify.py failed");
    let answer: Vec<Vec<bool>> = serde_json::from_slice(&out.stdout).unwrap();
    Some(answer[0].clone())
}

/// Our own check, independent of Python: which secrets made one of the signatures.
fn signed_with(secret: &str, d: &Received) -> bool {
    let ours = ostwerk::domain::webhooks::signature(secret, &d.id, d.timestamp.parse().unwrap(), &d.body).unwrap();
    d.signature.split(' ').any(|s| s == ours)
}

async fn new_measure(app: &TestApp, provider_id: &str) {
    app.create_measure(&measure_body(provider_id)).await;
}

#[tokio::test]
async fn a_rotated_secret_verifies_at_once_and_the_old_one_only_during_the_overlap() {
    // Arrange: a subscription and one delivery under the first secret.
    let app = app_with_short_overlap().await;
    let (url, got) = receiver().await;
    let hook = app.create("/api/v1/webhooks", &caseworker(), &json!({"url": url, "events": ["measure.changed"]})).await;
    let old = hook["secret"].as_str().unwrap().to_owned();
    let provider = id_of(&app.create_provider("Träger").await);
    new_measure(&app, &provider).await;
    let before = wait_for(&got, 1).await[0].clone();
    // Act: rotate, deliver during the overlap, wait it out, deliver again.
    let res = app.post(&format!("/api/v1/webhooks/{}/rotate-secret", id_of(&hook)), &caseworker(), &json!({})).await;
    assert_eq!(res.status(), 200);
    let rotated: Value = res.json().await.unwrap();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    new_measure(&app, &provider).await;
    let during = wait_for(&got, 2).await[1].clone();
    tokio::time::sleep(Duration::from_secs(OVERLAP_SECS)).await;
    new_measure(&app, &provider).await;
    let after = wait_for(&got, 3).await[2].clone();
    // Assert
    assert!(new.starts_with("whsec_") && new != old);
    assert!(rotated["previous_secret_expires_at"].is_string(), "{rotated}");
    assert_eq!(rotated["version"], hook["version"].as_i64().unwrap() + 1);
    assert_eq!(during.signature.split(' ').count(), 2, "{}", during.signature);
    assert_eq!(after.signature.split(' ').count(), 1, "{}", after.signature);
    let ours = |d: &Received| vec![signed_with(&old, d), signed_with(&new, d)];
    assert_eq!(ours(&before), [true, false]);
    assert_eq!(ours(&during), [true, true]);
    assert_eq!(ours(&after), [false, true]);
    for (d, expected) in [(&before, [true, false]), (&during, [true, true]), (&after, [false, true])] {
        if let Some(reference) = reference_verifies(&[&old, &new], d) {
            assert_eq!(reference, expected, "reference verifier on {d:?}");
        }
    }
    let read: Value = app.get(&format!("/api/v1/webhooks/{}", id_of(&hook)), &caseworker()).await.json().await.unwrap();
    assert!(read.get("secret").is_none() && read.get("previous_secret_expires_at").is_none(), "{read}");
}

#[tokio::test]
async fn only_the_owner_or_an_admin_may_rotate() {
    // Arrange
    let app = spawn_app().await;
    let jc_a = Caller::new("jobcenter").with_org("jc-a");
    let hook = app
        .create("/api/v1/webhooks", &jc_a, &json!({"url": "https://93.184.215.14/h", "events": ["referral.created"]}))
        .await;
    let path = format!("/api/v1/webhooks/{}/rotate-secret", id_of(&hook));
    // Act + Assert
    let other = app.post(&path, &Caller::new("jobcenter").with_org("jc-b"), &json!({})).await;
    assert_problem(other, 404, "not-found").await;
    assert_problem(app.post(&path, &Caller::new("analyst"), &json!({})).await, 403, "forbidden").await;
    let stale =
        app.request(reqwest::Method::POST, &path, Some(&jc_a)).header("If-Match", "\"7\"").send().await.unwrap();
    assert_problem(stale, 412, "precondition-failed").await;
    assert_eq!(app.post(&path, &jc_a, &json!({})).await.status(), 200);
    assert_eq!(app.post(&path, &admin(), &json!({})).await.status(), 200);
}
