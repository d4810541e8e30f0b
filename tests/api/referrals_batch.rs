//! `POST /api/v1/referrals/batch` (SPEC §3): up to 500 referrals, one result
//! per item in order, safe to retry, Idempotency-Key replays the answer.
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    helpers::*,
    referral_fixtures::{self as fx, Target},
};

const BATCH: &str = "/api/v1/referrals/batch";

async fn post_batch(app: &TestApp, caller: &Caller, items: &[Value], key: Option<&str>) -> reqwest::Response {
    let mut req = app.request(Method::POST, BATCH, Some(caller)).json(&json!({"items": items}));
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    req.send().await.unwrap()
}

/// The results of a `207`.
async fn results_of(res: reqwest::Response) -> Vec<Value> {
    assert_eq!(res.status(), 207);
    let body: Value = res.json().await.unwrap();
    body["results"].as_array().unwrap().clone()
}

fn problem_type(result: &Value) -> &str {
    result["problem"]["type"].as_str().unwrap_or_default().trim_start_matches("https://ostwerk.dev/problems/")
}

/// A job centre, two measures (one for youth only) and its clients.
struct Push {
    jobcenter: Caller,
    open: Target,
    youth_only: Target,
}

async fn push(app: &TestApp) -> Push {
    let provider = fx::provider(app).await;
    let open = fx::id(&fx::measure(app, &provider.id, 50, json!({})).await);
    let youth = fx::id(&fx::measure(app, &provider.id, 50, json!({"target_groups": ["youth"]})).await);
    Push { jobcenter: Caller::new("jobcenter"), open: Target::Measure(open), youth_only: Target::Measure(youth) }
}

impl Push {
    async fn client(&self, app: &TestApp) -> String {
        fx::id(&fx::client(app, &self.jobcenter, json!({})).await)
    }
}

#[tokio::test]
async fn a_mixed_batch_answers_207_with_one_result_per_item_in_order() {
    // Arrange: JC-1 is taken before the batch arrives.
    let app = spawn_app().await;
    let p = push(&app).await;
    let earlier = p.client(&app).await;
    let taken = fx::refer(&app, &p.jobcenter, &fx::referral_body(&earlier, &p.open, json!({"external_id": "JC-1"})))
        .await
        .json::<Value>()
        .await
        .unwrap();
    let (a, b, c, d) = (p.client(&app).await, p.client(&app).await, p.client(&app).await, p.client(&app).await);
    let items = [
        fx::referral_body(&a, &p.open, json!({"external_id": "JC-2"})),
        // Items that break the declared schema (unknown member, malformed
        // UUID) refuse the whole batch (`fuzz_regressions`); what only the
        // data decides is answered per item.
        json!({"client_id": b}),
        fx::referral_body(&c, &p.open, json!({"external_id": "JC-1"})),
        fx::referral_body(&d, &p.youth_only, json!({})),
        fx::referral_body(&d, &p.open, json!({"note": "zweiter Anlauf"})),
    ];
    // Act
    let results = results_of(post_batch(&app, &p.jobcenter, &items, None).await).await;
    // Assert
    let summary: Vec<(u64, u64, &str)> = results
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["status"].as_u64().unwrap(), problem_type(r)))
        .collect();
    assert_eq!(
        summary,
        [
            (0, 201, ""),
            (1, 422, "validation-failed"),
            (2, 409, "duplicate-external-id"),
            (3, 422, "not-eligible"),
            (4, 201, ""),
        ]
    );
    for good in [&results[0], &results[4]] {
        assert_eq!(good["id"], good["referral"]["id"]);
        assert!(good.get("problem").is_none());
        let stored = fx::referral_of(&app, good["id"].as_str().unwrap()).await;
        assert_eq!(stored["status"], "requested");
        assert_eq!(stored["referring_org"], "jc-leipzig");
    }
    assert_eq!(results[0]["referral"]["external_id"], "JC-2");
    assert_eq!(results[2]["problem"]["existing_id"], fx::id(&taken));
    assert_eq!(results[1]["problem"]["errors"][0]["field"], "measure_id");
    assert_eq!(results[3]["problem"]["errors"][0]["field"], "target_groups");
    for bad in &results[1..4] {
        assert!(bad.get("id").is_none() && bad.get("referral").is_none(), "{bad}");
        assert_eq!(bad["problem"]["status"], bad["status"]);
    }
    let all = fx::list(&app, &p.jobcenter, fx::REFERRALS, &[]).await;
    assert_eq!(fx::ids_of(&all).len(), 3, "the earlier one and two from the batch");
}

#[tokio::test]
async fn a_batch_of_no_items_or_more_than_500_is_422() {
    let app = spawn_app().await;
    let p = push(&app).await;
    let client = p.client(&app).await;
    let item = fx::referral_body(&client, &p.open, json!({}));
    for n in [0, 501] {
        let res = post_batch(&app, &p.jobcenter, &vec![item.clone(); n], None).await;
        let problem = assert_problem(res, 422, "validation-failed").await;
        assert_eq!(problem["errors"][0]["field"], "items", "{n}");
    }
    assert!(fx::ids_of(&fx::list(&app, &caseworker(), fx::REFERRALS, &[]).await).is_empty());
}

#[tokio::test]
async fn a_batch_of_500_items_is_answered_item_by_item() {
    let app = spawn_app().await;
    let p = push(&app).await;
    let nobody = "0193a5b0-7c1e-7d2a-9f3b-2c4d5e6f7a8b";
    let items = vec![fx::referral_body(nobody, &p.open, json!({})); 500];
    let results = results_of(post_batch(&app, &p.jobcenter, &items, None).await).await;
    assert_eq!(results.len(), 500);
    let first = results[0]["status"].clone();
    assert!(first.as_u64().is_some_and(|s| (400..500).contains(&s)), "{first}");
    assert!(results.iter().enumerate().all(|(i, r)| r["index"] == i && r["status"] == first));
}

#[tokio::test]
async fn only_office_staff_and_job_centres_may_send_a_batch() {
    let app = spawn_app().await;
    let p = push(&app).await;
    let client = p.client(&app).await;
    let items = [fx::referral_body(&client, &p.open, json!({}))];
    for role in ["provider", "employer", "analyst"] {
        assert_problem(post_batch(&app, &Caller::new(role), &items, None).await, 403, "forbidden").await;
    }
}

#[tokio::test]
async fn a_retried_batch_reports_409_with_the_existing_id_for_items_already_created() {
    // Arrange: the first push got through; the answer was lost.
    let app = spawn_app().await;
    let p = push(&app).await;
    let (a, b) = (p.client(&app).await, p.client(&app).await);
    let items =
        [fx::referral_body(&a, &p.open, json!({"external_id": "NIGHT-1"})), fx::referral_body(&b, &p.open, json!({}))];
    let first = results_of(post_batch(&app, &p.jobcenter, &items, None).await).await;
    assert!(first.iter().all(|r| r["status"] == 201));
    // Act
    let retried = results_of(post_batch(&app, &p.jobcenter, &items, None).await).await;
    // Assert: by external id where it has one, else as the client's active referral.
    assert_eq!((retried[0]["status"].as_u64(), problem_type(&retried[0])), (Some(409), "duplicate-external-id"));
    assert_eq!((retried[1]["status"].as_u64(), problem_type(&retried[1])), (Some(409), "duplicate-referral"));
    for (again, before) in retried.iter().zip(&first) {
        assert_eq!(again["problem"]["existing_id"], before["id"]);
    }
    assert_eq!(fx::ids_of(&fx::list(&app, &p.jobcenter, fx::REFERRALS, &[]).await).len(), 2);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_whole_batch_answer() {
    // Arrange
    let app = spawn_app().await;
    let p = push(&app).await;
    let (a, b) = (p.client(&app).await, p.client(&app).await);
    let items = [fx::referral_body(&a, &p.open, json!({})), fx::referral_body(&b, &p.youth_only, json!({}))];
    let first = post_batch(&app, &p.jobcenter, &items, Some("night-2026-11-02")).await;
    assert_eq!(first.status(), 207);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    // Act
    let replay = post_batch(&app, &p.jobcenter, &items, Some("night-2026-11-02")).await;
    // Assert
    assert_eq!(replay.status(), 207);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.json::<Value>().await.unwrap(), first);
    assert_eq!(fx::ids_of(&fx::list(&app, &p.jobcenter, fx::REFERRALS, &[]).await).len(), 1);
}

#[tokio::test]
async fn replaying_a_batch_creates_nothing_even_after_its_referrals_moved_on() {
    // Arrange: the batch's referral was cancelled since, so running its items
    // again would create a new one — a replay must not run them.
    let app = spawn_app().await;
    let p = push(&app).await;
    let client = p.client(&app).await;
    let items = [fx::referral_body(&client, &p.open, json!({}))];
    let first = results_of(post_batch(&app, &p.jobcenter, &items, Some("night-2026-11-03")).await).await;
    let referral = first[0]["id"].as_str().unwrap().to_owned();
    fx::take(&app, &p.jobcenter, &referral, "cancel").await;
    // Act
    let replay = post_batch(&app, &p.jobcenter, &items, Some("night-2026-11-03")).await;
    // Assert
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(results_of(replay).await, first);
    let all = fx::list(&app, &p.jobcenter, fx::REFERRALS, &[("client_id", &client)]).await;
    assert_eq!(fx::ids_of(&all), vec![referral]);
}
