//! Webhooks (SPEC §3): subscriptions, refused private targets, signed
//! deliveries of the events a subscriber may see, the delivery log.
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use crate::helpers::*;

/// What the receiver got: headers of interest and the raw body.
#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// A partner's endpoint on 127.0.0.1 answering `status` (test apps allow private targets).
async fn receiver(status: u16) -> (String, Arc<Mutex<Vec<Received>>>) {
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
                HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
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

async fn app_allowing_private_targets() -> TestApp {
    spawn_app_with(Options { webhook_allow_private: true, ..Default::default() }).await
}

/// Waits (bounded) until the receiver has `n` requests: delivery is asynchronous.
async fn wait_for(got: &Arc<Mutex<Vec<Received>>>, n: usize) -> Vec<Received> {
    for _ in 0..200 {
        if got.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    got.lock().unwrap().clone()
}

/// A provider with an open measure, a client, and the job centre that refers.
async fn referral_setup(app: &TestApp) -> (String, String, String) {
    let provider = app.create_provider("Bildungswerk Ost").await;
    let mut measure = measure_body(&id_of(&provider));
    measure["status"] = json!("open");
    measure["target_groups"] = json!([]);
    measure["min_age"] = Value::Null;
    measure["max_age"] = Value::Null;
    let measure = app.create_measure(&measure).await;
    let client = app.create_client(&caseworker(), &client_body()).await;
    (id_of(&provider), id_of(&measure), id_of(&client))
}

#[tokio::test]
async fn the_secret_is_shown_once_at_creation() {
    let app = app_allowing_private_targets().await;
    let body = json!({"url": "https://partner.example.org/hook", "events": ["measure.changed"]});
    let created = app.create("/api/v1/webhooks", &caseworker(), &body).await;
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    let read: Value =
        app.get(&format!("/api/v1/webhooks/{}", id_of(&created)), &caseworker()).await.json().await.unwrap();
    assert!(read.get("secret").is_none(), "{read}");
    assert_eq!(read["org"], "office");
}

#[tokio::test]
async fn private_and_loopback_targets_are_refused_by_default() {
    let app = spawn_app().await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://10.0.0.5/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "ftp://x.example/",
    ] {
        let res =
            app.post("/api/v1/webhooks", &caseworker(), &json!({"url": url, "events": ["measure.changed"]})).await;
        let problem = assert_problem(res, 422, "validation-failed").await;
        assert_eq!(problem["errors"][0]["field"], "url", "{url}");
    }
}

#[tokio::test]
async fn unknown_events_are_a_422() {
    let app = spawn_app().await;
    let res = app
        .post("/api/v1/webhooks", &caseworker(), &json!({"url": "https://p.example/h", "events": ["client.created"]}))
        .await;
    let problem = assert_problem(res, 422, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "events[0]");
}

#[tokio::test]
async fn a_new_referral_is_delivered_signed_and_without_personal_data() {
    // Arrange
    let app = app_allowing_private_targets().await;
    let (url, got) = receiver(204).await;
    let jobcenter = Caller::new("jobcenter");
    let hook = app.create("/api/v1/webhooks", &jobcenter, &json!({"url": url, "events": ["referral.created"]})).await;
    let (_, measure_id, client_id) = referral_setup(&app).await;
    // Act
    let referral = app
        .create("/api/v1/referrals", &caseworker(), &json!({"client_id": client_id, "measure_id": measure_id}))
        .await;
    // Assert: the job centre's hook gets nothing (not its referral); an office hook would.
    let office_hook =
        app.create("/api/v1/webhooks", &caseworker(), &json!({"url": url, "events": ["referral.created"]})).await;
    let client2 = app.create_client(&caseworker(), &client_body_with(json!({"external_id": "JC-2"}))).await;
    let referral2 = app
        .create("/api/v1/referrals", &caseworker(), &json!({"client_id": id_of(&client2), "measure_id": measure_id}))
        .await;
    let received = wait_for(&got, 1).await;
    assert_eq!(received.len(), 1, "only the office hook may see the office's referrals");
    let delivery = &received[0];
    let body: Value = serde_json::from_str(&delivery.body).unwrap();
    assert_eq!(body["type"], "referral.created");
    assert_eq!(body["data"]["id"], id_of(&referral2));
    assert_eq!(body["data"]["link"], format!("/api/v1/referrals/{}", id_of(&referral2)));
    assert!(
        !delivery.body.contains("Mara") && !delivery.body.contains("Beispiel"),
        "no personal data: {}",
        delivery.body
    );
    let secret = office_hook["secret"].as_str().unwrap();
    let expected =
        ostwerk::domain::webhooks::signature(secret, &delivery.id, delivery.timestamp.parse().unwrap(), &delivery.body)
            .unwrap();
    assert_eq!(delivery.signature, expected);
    let _ = (hook, referral);
}

#[tokio::test]
async fn status_changes_reach_the_provider_of_the_measure_and_are_logged_as_delivered() {
    // Arrange
    let app = app_allowing_private_targets().await;
    let (url, got) = receiver(200).await;
    let (provider_id, measure_id, client_id) = referral_setup(&app).await;
    let provider = Caller::new("provider").with_org(provider_id.clone());
    let hook =
        app.create("/api/v1/webhooks", &provider, &json!({"url": url, "events": ["referral.status_changed"]})).await;
    let referral = app
        .create("/api/v1/referrals", &caseworker(), &json!({"client_id": client_id, "measure_id": measure_id}))
        .await;
    // Act
    let res = app
        .post(&format!("/api/v1/referrals/{}/transitions", id_of(&referral)), &provider, &json!({"action": "accept"}))
        .await;
    assert_eq!(res.status(), 200);
    // Assert
    let received = wait_for(&got, 1).await;
    let body: Value = serde_json::from_str(&received[0].body).unwrap();
    assert_eq!(body["data"]["status"], "accepted");
    assert_eq!(body["data"]["previous_status"], "requested");
    let mut deliveries = Value::Null;
    for _ in 0..100 {
        deliveries =
            app.get(&format!("/api/v1/webhooks/{}/deliveries", id_of(&hook)), &provider).await.json().await.unwrap();
        if deliveries["items"][0]["status"] == "delivered" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(deliveries["items"][0]["status"], "delivered", "{deliveries}");
    assert_eq!(deliveries["items"][0]["last_status"], 200);
    assert_eq!(deliveries["items"][0]["event_id"], received[0].id);
}

#[tokio::test]
async fn a_failing_receiver_leaves_the_delivery_pending_for_a_retry() {
    let app = app_allowing_private_targets().await;
    let (url, got) = receiver(500).await;
    let hook = app.create("/api/v1/webhooks", &caseworker(), &json!({"url": url, "events": ["measure.changed"]})).await;
    let provider = app.create_provider("Träger").await;
    app.create_measure(&measure_body(&id_of(&provider))).await;
    wait_for(&got, 1).await;
    let mut item = Value::Null;
    for _ in 0..100 {
        let page: Value = app
            .get(&format!("/api/v1/webhooks/{}/deliveries", id_of(&hook)), &caseworker())
            .await
            .json()
            .await
            .unwrap();
        item = page["items"][0].clone();
        if item["attempts"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(item["status"], "pending", "{item}");
    assert_eq!(item["attempts"], 1);
    assert_eq!(item["last_status"], 500);
}

#[tokio::test]
async fn webhooks_of_other_organisations_are_invisible_but_admins_see_all() {
    let app = spawn_app().await;
    let jc_a = Caller::new("jobcenter").with_org("jc-a");
    let jc_b = Caller::new("jobcenter").with_org("jc-b");
    let hook = app
        .create("/api/v1/webhooks", &jc_a, &json!({"url": "https://93.184.215.14/h", "events": ["referral.created"]}))
        .await;
    let path = format!("/api/v1/webhooks/{}", id_of(&hook));
    assert_problem(app.get(&path, &jc_b).await, 404, "not-found").await;
    assert_eq!(app.get(&path, &admin()).await.status(), 200);
    assert_problem(app.get("/api/v1/webhooks", &Caller::new("analyst")).await, 403, "forbidden").await;
    let res = app
        .post(
            "/api/v1/webhooks",
            &jc_b,
            &json!({"url": "https://93.184.215.14/b", "events": ["measure.changed"], "org": "jc-a"}),
        )
        .await;
    assert_problem(res, 403, "forbidden").await;
}

#[tokio::test]
async fn several_delivery_workers_on_one_database_send_each_event_once() {
    // Arrange: the app's own worker plus four more "instances" on the same database.
    let app = app_allowing_private_targets().await;
    let (url, got) = receiver(200).await;
    app.create("/api/v1/webhooks", &caseworker(), &json!({"url": url, "events": ["measure.changed"]})).await;
    let provider = app.create_provider("Träger").await;
    let mut settings = app.settings.clone();
    settings.database_url = app.database_url.clone();
    // Act: several measures (events) and several workers racing for them.
    for n in 0..5 {
        app.create_measure(&with(measure_body(&id_of(&provider)), json!({"title": format!("Kurs {n}")}))).await;
    }
    let mut workers = Vec::new();
    for _ in 0..4 {
        let settings = settings.clone();
        workers.push(tokio::spawn(async move {
            let db = ostwerk::db::connect(&settings).await.unwrap();
            let limits = ostwerk::service::webhook_delivery::DeliveryLimits::from_settings(&settings);
            let deliverer = ostwerk::service::webhook_delivery::Deliverer::new(limits).unwrap();
            for _ in 0..10 {
                deliverer.deliver_due(&db).await.unwrap();
            }
            deliverer.idle().await;
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    // Assert
    let received = wait_for(&got, 5).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await; // let any duplicate arrive
    let received_after = got.lock().unwrap().clone();
    assert_eq!(received.len(), 5);
    let mut ids: Vec<String> = received_after.iter().map(|r| r.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(received_after.len(), ids.len(), "an event was delivered twice: {received_after:?}");
}
