//! The edge of the service under attack: bounded costs (heavy endpoints,
//! `q`, anonymous callers), request ids in the audit, oversized requests,
//! idempotency keys of dead requests, and the security headers.
use chrono::Utc;
use ostwerk::config::Settings;
use ostwerk::entities::idempotency_key;
use reqwest::{Method, StatusCode};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::Value;

use crate::helpers::*;

const DEMAND: &str = "/api/v1/statistics/demand?group_by=district";

fn analyst() -> Caller {
    Caller::new("analyst")
}

// ---- heavy endpoints: concurrency per principal and a short cache ------------

#[tokio::test]
async fn analyst_flooding_statistics_gets_429s_while_another_principal_is_served() {
    // Arrange: one slot per principal, no cache (every call is real work).
    let app = spawn_app_with(Options {
        configure: Some(Box::new(|s: &mut Settings| {
            s.heavy_concurrency = 1;
            s.stats_cache_secs = 0;
        })),
        ..Default::default()
    })
    .await;
    for _ in 0..3 {
        app.create_client(&caseworker(), &client_body_with(serde_json::json!({"external_id": null}))).await;
    }
    let flooder = analyst();
    let other = caseworker();

    // Act: bursts of parallel calls from one principal, with one call of
    // another principal in each burst, until the flood overlaps itself.
    let mut flood_statuses = Vec::new();
    let mut other_statuses = Vec::new();
    for _ in 0..10 {
        let flood = (0..12).map(|i| {
            let app = &app;
            let flooder = &flooder;
            async move { app.get(&format!("{DEMAND},target_group&district={i:02}"), flooder).await.status() }
        });
        let (statuses, other_status) =
            tokio::join!(futures_util::future::join_all(flood), async { app.get(DEMAND, &other).await.status() });
        flood_statuses.extend(statuses);
        other_statuses.push(other_status);
        if flood_statuses.contains(&StatusCode::TOO_MANY_REQUESTS) {
            break;
        }
    }

    // Assert
    assert!(flood_statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "no 429 in {flood_statuses:?}");
    assert!(
        flood_statuses.iter().all(|s| *s == StatusCode::OK || *s == StatusCode::TOO_MANY_REQUESTS),
        "{flood_statuses:?}"
    );
    assert!(other_statuses.iter().all(|s| *s == StatusCode::OK), "other principal: {other_statuses:?}");
}

#[tokio::test]
async fn refused_heavy_request_is_a_problem_with_retry_after() {
    // Arrange: a zero-length cache and one slot; saturate with a burst.
    let app = spawn_app_with(Options {
        configure: Some(Box::new(|s: &mut Settings| {
            s.heavy_concurrency = 1;
            s.stats_cache_secs = 0;
        })),
        ..Default::default()
    })
    .await;
    let flooder = analyst();

    // Act
    let mut refused = None;
    for _ in 0..10 {
        let burst = (0..12).map(|_| app.get(DEMAND, &flooder));
        let responses = futures_util::future::join_all(burst).await;
        refused = responses.into_iter().find(|r| r.status() == StatusCode::TOO_MANY_REQUESTS);
        if refused.is_some() {
            break;
        }
    }

    // Assert
    let res = refused.expect("a burst of 12 overlapped at least once");
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 429, "rate-limited").await;
}

#[tokio::test]
async fn statistics_cache_hit_returns_identical_body_to_the_same_principal_only() {
    // Arrange: no suppression, so one more client changes the table.
    let app = spawn_app_with(Options {
        configure: Some(Box::new(|s: &mut Settings| s.stats_min_cell = 1)),
        ..Default::default()
    })
    .await;
    let reader = analyst();
    app.create_client(&caseworker(), &client_body_with(serde_json::json!({"external_id": "A-1"}))).await;
    let first = app.get(DEMAND, &reader).await.text().await.unwrap();
    app.create_client(&caseworker(), &client_body_with(serde_json::json!({"external_id": "A-2"}))).await;
    // Record keys 0: no cell-key noise, so 2 clients cannot come out as 1.
    crate::statistics_privacy::set_all_record_keys(&app, 0).await;

    // Act
    let again = app.get(DEMAND, &reader).await.text().await.unwrap();
    let someone_else = app.get(DEMAND, &analyst()).await.text().await.unwrap();

    // Assert: the same principal gets the cached answer; another principal
    // never shares it and sees the present.
    assert_eq!(again, first);
    assert_ne!(someone_else, first, "another principal must not be served the first principal's cached answer");
}

// ---- q is bounded -----------------------------------------------------------------

#[tokio::test]
async fn search_text_of_12600_characters_is_a_400_on_every_list() {
    // Arrange
    let app = spawn_app().await;
    let long = "a".repeat(12_600);
    let longest_allowed = "a".repeat(200);

    for list in ["clients", "employers", "measures", "providers"] {
        // Act
        let res = app.get(&format!("/api/v1/{list}?q={long}"), &caseworker()).await;
        let allowed = app.get(&format!("/api/v1/{list}?q={longest_allowed}"), &caseworker()).await;

        // Assert
        let body = assert_problem(res, 400, "bad-request").await;
        assert_eq!(body["errors"][0]["field"], "q", "{list}: {body}");
        assert_eq!(allowed.status(), StatusCode::OK, "{list}: 200 characters are allowed");
    }
}

#[tokio::test]
async fn spec_declares_max_length_of_every_q() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let spec: Value = app.client.get(app.url("/api-docs/openapi.json")).send().await.unwrap().json().await.unwrap();

    // Assert
    for list in ["clients", "employers", "measures", "providers"] {
        let params = spec["paths"][format!("/api/v1/{list}")]["get"]["parameters"].as_array().unwrap();
        let q = params.iter().find(|p| p["name"] == "q").unwrap();
        assert_eq!(q["schema"]["maxLength"], 200, "{list}");
    }
}

// ---- unauthenticated callers are limited by address --------------------------

#[tokio::test]
async fn requests_without_a_valid_token_are_limited_per_address_but_valid_tokens_are_not() {
    // Arrange
    let app = spawn_app_with(Options {
        configure: Some(Box::new(|s: &mut Settings| s.rate_limit_anon = 3)),
        ..Default::default()
    })
    .await;
    for _ in 0..2 {
        let res = app.client.get(app.url("/api/v1/clients")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let bad_token = app.client.get(app.url("/api/v1/clients")).bearer_auth("not-a-token").send().await.unwrap();
    assert_eq!(bad_token.status(), StatusCode::UNAUTHORIZED);

    // Act
    let no_token = app.client.get(app.url("/api/v1/clients")).send().await.unwrap();
    let forged = app.client.get(app.url("/api/v1/clients")).bearer_auth("forged").send().await.unwrap();
    let docs = app.client.get(app.url("/api-docs/openapi.json")).send().await.unwrap();
    let with_token = app.get("/api/v1/clients", &caseworker()).await;
    let probe = app.client.get(app.url("/readyz")).send().await.unwrap();

    // Assert: everything without a valid token is refused from here on;
    // a valid token and the orchestrator's probe are not.
    assert!(no_token.headers().contains_key("retry-after"));
    assert_problem(no_token, 429, "rate-limited").await;
    assert_problem(forged, 429, "rate-limited").await;
    assert_eq!(docs.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(with_token.status(), StatusCode::OK);
    assert_eq!(probe.status(), StatusCode::OK);
}

// ---- request ids ------------------------------------------------------------------

#[tokio::test]
async fn caller_request_id_is_echoed_but_audit_records_our_own_id_beside_it() {
    // Arrange
    let app = spawn_app().await;
    let cw = caseworker();
    let client = app.create_client(&cw, &client_body()).await;
    let id = client["id"].as_str().unwrap();

    // Act: one sane caller id, one too long to keep.
    let res = app
        .request(Method::GET, &format!("/api/v1/clients/{id}"), Some(&cw))
        .header("X-Request-Id", "partner-4711")
        .send()
        .await
        .unwrap();
    let overlong = app
        .request(Method::GET, &format!("/api/v1/clients/{id}"), Some(&cw))
        .header("X-Request-Id", "r".repeat(129))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-request-id"], "partner-4711");
    assert_ne!(overlong.headers()["x-request-id"], "r".repeat(129).as_str());
    let page: Value =
        app.get(&format!("/api/v1/audit-events?client_id={id}&actor={}", cw.sub), &admin()).await.json().await.unwrap();
    let reads: Vec<Value> =
        page["items"].as_array().unwrap().iter().filter(|e| e["action"] == "client.read").cloned().collect();
    assert_eq!(reads.len(), 2);
    let (newest, older) = (&reads[0], &reads[1]);
    assert_eq!(older["client_request_id"], "partner-4711");
    let own = older["request_id"].as_str().unwrap();
    assert_ne!(own, "partner-4711");
    assert!(uuid::Uuid::parse_str(own).is_ok(), "own request id {own}");
    assert_eq!(newest["client_request_id"], Value::Null, "an overlong caller id is not stored");
}

// ---- oversized requests -----------------------------------------------------------

#[tokio::test]
async fn header_of_100_kb_is_a_431_problem() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let res = app
        .request(Method::GET, "/api/v1/providers", Some(&caseworker()))
        .header("X-Padding", "p".repeat(100 * 1024))
        .send()
        .await
        .unwrap();

    // Assert
    assert_problem(res, 431, "request-header-fields-too-large").await;
}

#[tokio::test]
async fn uri_of_20_kb_is_a_414_problem() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let res = app.get(&format!("/api/v1/providers?district={}", "1".repeat(20 * 1024)), &caseworker()).await;

    // Assert
    assert_problem(res, 414, "uri-too-long").await;
}

// ---- idempotency keys of requests that died ---------------------------------------

/// Makes provider inserts fail and claims undeletable, as a database that
/// breaks mid-request would: the work fails and so does the release.
async fn break_database(app: &TestApp) {
    let db = app.db().await;
    let statements: &[&str] = if is_postgres() {
        &[
            "CREATE FUNCTION simulated_outage() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'simulated outage'; END $$",
            "CREATE TRIGGER fail_providers BEFORE INSERT ON providers FOR EACH ROW EXECUTE FUNCTION simulated_outage()",
            "CREATE TRIGGER keep_claims BEFORE DELETE ON idempotency_keys FOR EACH ROW EXECUTE FUNCTION simulated_outage()",
        ]
    } else {
        &[
            "CREATE TRIGGER fail_providers BEFORE INSERT ON providers BEGIN SELECT RAISE(ABORT, 'simulated outage'); END",
            "CREATE TRIGGER keep_claims BEFORE DELETE ON idempotency_keys BEGIN SELECT RAISE(ABORT, 'simulated outage'); END",
        ]
    };
    for sql in statements {
        db.execute_unprepared(sql).await.unwrap();
    }
}

async fn repair_database(app: &TestApp) {
    let db = app.db().await;
    let on = if is_postgres() { " ON providers" } else { "" };
    db.execute_unprepared(&format!("DROP TRIGGER fail_providers{on}")).await.unwrap();
    let on = if is_postgres() { " ON idempotency_keys" } else { "" };
    db.execute_unprepared(&format!("DROP TRIGGER keep_claims{on}")).await.unwrap();
}

async fn create_provider_with_key(app: &TestApp, caller: &Caller, key: &str) -> reqwest::Response {
    app.request(Method::POST, "/api/v1/providers", Some(caller))
        .header("Idempotency-Key", key)
        .json(&provider_body("Bildungswerk Ost"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn retry_after_a_create_whose_transaction_and_release_failed_does_the_work() {
    // Arrange: the first attempt dies with the database.
    let app = spawn_app().await;
    let cw = caseworker();
    break_database(&app).await;
    let failed = create_provider_with_key(&app, &cw, "key-dead-1").await;
    assert!(failed.status().is_server_error(), "{}", failed.status());
    repair_database(&app).await;

    // Act
    let retry = create_provider_with_key(&app, &cw, "key-dead-1").await;

    // Assert
    assert_eq!(retry.status(), StatusCode::CREATED);
    let replay = create_provider_with_key(&app, &cw, "key-dead-1").await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
}

/// The caller's idempotency scope as the service stores it (read off the
/// row of a create with a probe key).
async fn scope_of(app: &TestApp, caller: &Caller) -> String {
    let probe = app
        .request(Method::POST, "/api/v1/providers", Some(caller))
        .header("Idempotency-Key", "scope-probe")
        .json(&provider_body("Scope Probe"))
        .send()
        .await
        .unwrap();
    assert_eq!(probe.status(), StatusCode::CREATED);
    let row = idempotency_key::Entity::find()
        .filter(idempotency_key::Column::Key.eq("scope-probe"))
        .one(&app.db().await)
        .await
        .unwrap()
        .unwrap();
    row.scope
}

#[tokio::test]
async fn claim_left_by_a_dead_instance_is_taken_over_once_its_lease_ran_out() {
    // Arrange: an in-progress claim of this very request held by another
    // instance (a batch's claim, or one written before an upgrade).
    let app = spawn_app().await;
    let cw = caseworker();
    let scope = scope_of(&app, &cw).await;
    let db = app.db().await;
    let fingerprint =
        ostwerk::service::idempotency::fingerprint(("POST", "/api/v1/providers", &provider_body("Bildungswerk Ost")));
    idempotency_key::Entity::insert(idempotency_key::ActiveModel {
        scope: Set(scope),
        key: Set("key-dead-2".to_owned()),
        fingerprint: Set(fingerprint),
        state: Set("in_progress".to_owned()),
        status_code: Set(None),
        response_body: Set(None),
        location: Set(None),
        created_at: Set(Utc::now() - chrono::Duration::seconds(60)),
        holder: Set(Some("another-instance/claim".to_owned())),
        lease_until: Set(Some(Utc::now() + chrono::Duration::seconds(60))),
    })
    .exec_without_returning(&db)
    .await
    .unwrap();
    let while_alive = create_provider_with_key(&app, &cw, "key-dead-2").await;
    assert_problem(while_alive, 409, "idempotency-key-in-use").await;
    let expired = idempotency_key::Entity::update_many()
        .col_expr(idempotency_key::Column::LeaseUntil, Expr::value(Utc::now() - chrono::Duration::seconds(1)))
        .filter(idempotency_key::Column::Key.eq("key-dead-2"))
        .exec(&db)
        .await
        .unwrap();
    assert_eq!(expired.rows_affected, 1);

    // Act
    let retry = create_provider_with_key(&app, &cw, "key-dead-2").await;

    // Assert
    assert_eq!(retry.status(), StatusCode::CREATED);
    let replay = create_provider_with_key(&app, &cw, "key-dead-2").await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
}

/// On PostgreSQL a create holds its key's advisory lock for its whole
/// transaction: while another transaction holds it, the same key is a `409`
/// with `Retry-After`; once it is released the create runs. A failed create
/// leaves nothing behind.
#[tokio::test]
async fn postgres_create_holds_its_key_for_its_transaction_and_leaves_nothing_when_it_fails() {
    if !is_postgres() {
        return;
    }
    // Arrange: another transaction holds the lock of the key.
    let app = spawn_app().await;
    let cw = caseworker();
    let scope = scope_of(&app, &cw).await;
    let db = app.db().await;
    let holder = sea_orm::TransactionTrait::begin(&db).await.unwrap();
    holder
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            [format!("{scope}\nkey-held").into()],
        ))
        .await
        .unwrap();

    // Act
    let while_held = create_provider_with_key(&app, &cw, "key-held").await;
    holder.rollback().await.unwrap();
    let after = create_provider_with_key(&app, &cw, "key-held").await;

    // Assert
    assert!(while_held.headers().contains_key("retry-after"));
    assert_problem(while_held, 409, "idempotency-key-in-use").await;
    assert_eq!(after.status(), StatusCode::CREATED);

    // Act: a create whose transaction fails.
    break_database(&app).await;
    let failed = create_provider_with_key(&app, &cw, "key-failed").await;
    repair_database(&app).await;

    // Assert: no claim stays behind, and the retry does the work.
    assert!(failed.status().is_server_error(), "{}", failed.status());
    let left =
        idempotency_key::Entity::find().filter(idempotency_key::Column::Key.eq("key-failed")).all(&db).await.unwrap();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(create_provider_with_key(&app, &cw, "key-failed").await.status(), StatusCode::CREATED);
}

// ---- security headers -------------------------------------------------------------

#[tokio::test]
async fn api_answers_and_errors_are_no_store_and_nosniff() {
    // Arrange
    let app = spawn_app().await;
    let cw = caseworker();
    let client = app.create_client(&cw, &client_body()).await;

    // Act
    let ok = app.get(&format!("/api/v1/clients/{}", client["id"].as_str().unwrap()), &cw).await;
    let not_found = app.get(&format!("/api/v1/clients/{}", uuid::Uuid::now_v7()), &cw).await;
    let unauthorized = app.client.get(app.url("/api/v1/clients")).send().await.unwrap();

    // Assert
    for res in [ok, not_found, unauthorized] {
        assert_eq!(res.headers()["cache-control"], "no-store", "{}", res.status());
        assert_eq!(res.headers()["x-content-type-options"], "nosniff", "{}", res.status());
    }
}

#[tokio::test]
async fn every_answer_outside_the_api_is_nosniff() {
    // Arrange
    let app = spawn_app().await;

    for path in ["/metrics", "/docs/", "/api-docs/openapi.json", "/livez", "/no-such-page"] {
        // Act
        let res = app.client.get(app.url(path)).send().await.unwrap();

        // Assert
        assert_eq!(res.headers()["x-content-type-options"], "nosniff", "{path}");
    }
}

#[tokio::test]
async fn docs_ui_has_a_csp_that_forbids_framing_and_foreign_code() {
    // Arrange
    let app = spawn_app().await;

    for path in ["/docs/", "/docs/swagger-ui-bundle.js", "/docs", "/swagger-ui"] {
        // Act
        let res = app.client.get(app.url(path)).send().await.unwrap();

        // Assert
        let csp = res.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-eval"), "{path}: {csp}");
        assert_eq!(res.headers()["x-frame-options"], "DENY", "{path}");
    }
}
