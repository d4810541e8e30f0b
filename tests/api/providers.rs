//! Providers (SPEC §3): who may call what, lists and cursors, ETags, merge
//! patches, Idempotency-Key, deletion.
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn caseworker_creates_and_reads_a_provider() {
    // Arrange
    let app = spawn_app().await;
    // Act
    let res = app.post("/api/v1/providers", &caseworker(), &provider_body("Bildungswerk Ost")).await;
    // Assert
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(res.headers()["etag"], "\"1\"");
    let created: Value = res.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/providers/{}", created["id"].as_str().unwrap()));
    assert_eq!(created["version"], 1);
    let read = app.get(&location, &caseworker()).await;
    assert_eq!(read.status(), 200);
    assert_eq!(read.headers()["etag"], "\"1\"");
    let read: Value = read.json().await.unwrap();
    assert_eq!(read, created);
}

#[tokio::test]
async fn invalid_provider_fields_are_listed_in_a_422() {
    let app = spawn_app().await;
    let body =
        json!({"name": "  ", "kind": "castle", "district": "99", "contact": {"email": "nope"}, "website": "ftp://x"});
    let res = app.post("/api/v1/providers", &caseworker(), &body).await;
    let problem = assert_problem(res, 422, "validation-failed").await;
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    for f in ["name", "kind", "district", "contact.email", "website"] {
        assert!(fields.contains(&f), "{f} missing in {fields:?}");
    }
}

// ---------------------------------------------------------------------------
// Helpers of this file
// ---------------------------------------------------------------------------

const PROVIDERS: &str = "/api/v1/providers";

/// Query parameters of a list request.
type Query<'a> = &'a [(&'a str, &'a str)];

fn id_of(provider: &Value) -> String {
    provider["id"].as_str().expect("provider has an id").to_owned()
}

fn path_of(provider: &Value) -> String {
    format!("{PROVIDERS}/{}", id_of(provider))
}

/// The ids of a list page, in the order given.
fn ids_of(page: &Value) -> Vec<String> {
    page["items"].as_array().expect("items").iter().map(id_of).collect()
}

fn ids(providers: &[&Value]) -> Vec<String> {
    providers.iter().map(|p| id_of(p)).collect()
}

/// `GET /providers` with URL-encoded query parameters.
async fn list_with(app: &TestApp, query: Query<'_>) -> Response {
    let mut url = reqwest::Url::parse(&app.url(PROVIDERS)).unwrap();
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    app.client.get(url).bearer_auth(token_for(&caseworker())).send().await.unwrap()
}

/// One page that must be `200`.
async fn page(app: &TestApp, query: Query<'_>) -> Value {
    let res = list_with(app, query).await;
    assert_eq!(res.status(), 200, "list {query:?}");
    res.json().await.unwrap()
}

/// Follows `next_cursor` from `cursor` (or the start) to the end; returns the
/// ids of every page.
async fn walk_from(app: &TestApp, query: Query<'_>, limit: u64, cursor: Option<String>) -> Vec<Vec<String>> {
    let limit = limit.to_string();
    let mut cursor = cursor;
    let mut pages = Vec::new();
    loop {
        let mut q = query.to_vec();
        q.push(("limit", &limit));
        if let Some(c) = &cursor {
            q.push(("cursor", c));
        }
        let body = page(app, &q).await;
        pages.push(ids_of(&body));
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => {
                assert!(body["next_cursor"].is_null(), "next_cursor is a string or null: {body}");
                return pages;
            }
        }
        assert!(pages.len() <= 100, "paging does not end");
    }
}

async fn count(app: &TestApp) -> usize {
    ids_of(&page(app, &[("limit", "200")]).await).len()
}

/// `PATCH` with an optional `If-Match`.
async fn patch_if_match(app: &TestApp, path: &str, body: &Value, if_match: Option<&str>) -> Response {
    let mut rb = app
        .request(Method::PATCH, path, Some(&caseworker()))
        .header("content-type", "application/merge-patch+json")
        .body(body.to_string());
    if let Some(tag) = if_match {
        rb = rb.header("If-Match", tag);
    }
    rb.send().await.unwrap()
}

async fn delete_if_match(app: &TestApp, path: &str, if_match: &str) -> Response {
    app.request(Method::DELETE, path, Some(&caseworker())).header("If-Match", if_match).send().await.unwrap()
}

/// `POST /providers` with an `Idempotency-Key`.
async fn create_with_key(app: &TestApp, caller: &Caller, key: &str, body: &Value) -> Response {
    app.request(Method::POST, PROVIDERS, Some(caller)).header("Idempotency-Key", key).json(body).send().await.unwrap()
}

/// True when the problem's `detail` or one of its `errors` mentions `name`.
fn problem_mentions(problem: &Value, name: &str) -> bool {
    let in_errors = problem["errors"].as_array().is_some_and(|errors| {
        errors.iter().any(|e| e["field"] == name || e["message"].as_str().unwrap_or("").contains(name))
    });
    in_errors || problem["detail"].as_str().unwrap_or("").contains(name)
}

fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|e| e.iter().map(|e| e["field"].as_str().unwrap_or("").to_owned()).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// 1. Who may call what
// ---------------------------------------------------------------------------

/// The provider endpoints, each callable against an existing provider.
#[derive(Clone, Copy, Debug)]
enum Op {
    List,
    Get,
    Create,
    Patch,
    Delete,
}

impl Op {
    const ALL: [Op; 5] = [Op::List, Op::Get, Op::Create, Op::Patch, Op::Delete];

    /// Sends a well-formed request for this operation on `target` (a provider id).
    async fn send(self, app: &TestApp, caller: Option<&Caller>, target: &str) -> Response {
        let one = format!("{PROVIDERS}/{target}");
        let request = match self {
            Op::List => app.request(Method::GET, PROVIDERS, caller),
            Op::Get => app.request(Method::GET, &one, caller),
            Op::Create => app.request(Method::POST, PROVIDERS, caller).json(&provider_body("Stadtteilwerk e.V.")),
            Op::Patch => app
                .request(Method::PATCH, &one, caller)
                .header("content-type", "application/merge-patch+json")
                .body(json!({"website": "https://stadtteilwerk.example.org"}).to_string()),
            Op::Delete => app.request(Method::DELETE, &one, caller),
        };
        request.send().await.unwrap()
    }
}

/// SPEC §2 for providers: the status each role gets, in the column order of
/// [`ROLES`]. The provider principal acts for the very record it touches, so
/// its `200` on patch is "its own record" (another's reads as `404`, below).
#[rustfmt::skip]
const MATRIX: [(Op, [u16; 6]); 5] = [
    //               admin caseworker jobcenter provider employer analyst
    (Op::List,      [200,  200,       200,      200,     403,     403]),
    (Op::Get,       [200,  200,       200,      200,     403,     403]),
    (Op::Create,    [201,  201,       403,      403,     403,     403]),
    (Op::Patch,     [200,  200,       403,      200,     403,     403]),
    (Op::Delete,    [204,  204,       403,      403,     403,     403]),
];

#[tokio::test]
async fn provider_endpoints_admit_exactly_the_roles_of_the_matrix() {
    // Arrange
    let app = spawn_app().await;
    let mut wrong = Vec::new();
    for (op, statuses) in MATRIX {
        for (role, expected) in ROLES.into_iter().zip(statuses) {
            // A fresh target per call, so a delete cannot disturb the next row.
            let target = id_of(&app.create_provider("Zielträger gGmbH").await);
            let caller = caller_acting_for(role, &target);
            // Act
            let res = op.send(&app, Some(&caller), &target).await;
            // Assert (collected, so one run shows the whole matrix)
            let status = res.status().as_u16();
            if status != expected {
                wrong.push(format!("{op:?} as {role}: expected {expected}, got {status}"));
            } else if status == 403 {
                let body: Value = res.json().await.unwrap();
                if body["type"] != "https://ostwerk.dev/problems/forbidden" {
                    wrong.push(format!("{op:?} as {role}: 403 without the forbidden problem: {body}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "authorization matrix violated:\n{}", wrong.join("\n"));
}

#[tokio::test]
async fn every_provider_endpoint_without_a_token_is_401_with_a_bearer_challenge() {
    // Arrange
    let app = spawn_app().await;
    let target = id_of(&app.create_provider("Bildungswerk Ost").await);
    for op in Op::ALL {
        // Act
        let res = op.send(&app, None, &target).await;
        // Assert
        let challenge = res.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
        assert!(
            challenge.as_deref().is_some_and(|c| c.starts_with("Bearer")),
            "{op:?}: WWW-Authenticate was {challenge:?}"
        );
        assert_problem(res, 401, "unauthorized").await;
    }
    assert_eq!(count(&app).await, 1, "nothing was created or deleted");
}

#[tokio::test]
async fn provider_principal_may_patch_its_own_record() {
    // Arrange
    let app = spawn_app().await;
    let own = app.create_provider("Bildungswerk Ost").await;
    let principal = Caller::new("provider").with_org(id_of(&own));
    // Act
    let res = app.patch(&path_of(&own), &principal, &json!({"website": "https://bildungswerk-ost.example.org"})).await;
    // Assert
    assert_eq!(res.status(), 200);
    let changed: Value = res.json().await.unwrap();
    assert_eq!(changed["website"], "https://bildungswerk-ost.example.org");
    assert_eq!(changed["version"], 2);
}

#[tokio::test]
async fn provider_principal_patching_another_providers_record_gets_404_and_changes_nothing() {
    // Arrange
    let app = spawn_app().await;
    let own = app.create_provider("Bildungswerk Ost").await;
    let other = app.create_provider("Konkurrenz gGmbH").await;
    let principal = Caller::new("provider").with_org(id_of(&own));
    // Act
    let res = app.patch(&path_of(&other), &principal, &json!({"name": "Übernommen"})).await;
    // Assert
    assert_problem(res, 404, "not-found").await;
    let unchanged: Value = app.get(&path_of(&other), &caseworker()).await.json().await.unwrap();
    assert_eq!(unchanged, other);
}

// ---------------------------------------------------------------------------
// 2. Lists: order, paging, cursors, filters
// ---------------------------------------------------------------------------

#[tokio::test]
async fn providers_are_listed_newest_first() {
    // Arrange
    let app = spawn_app().await;
    let a = app.create_provider("Erster Träger").await;
    let b = app.create_provider("Zweiter Träger").await;
    let c = app.create_provider("Dritter Träger").await;
    // Act
    let body = page(&app, &[]).await;
    // Assert
    assert_eq!(ids_of(&body), ids(&[&c, &b, &a]));
    assert!(body["next_cursor"].is_null());
}

#[tokio::test]
async fn paging_with_any_limit_walks_every_provider_exactly_once() {
    // Arrange
    let app = spawn_app().await;
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(id_of(&app.create_provider(&format!("Träger {i}")).await));
    }
    created.reverse(); // newest first
    for limit in 1..=8u64 {
        // Act
        let pages = walk_from(&app, &[], limit, None).await;
        // Assert: full pages but the last, no empty trailing page, no repeats, nothing left out
        let expected_pages = 7u64.div_ceil(limit) as usize;
        assert_eq!(pages.len(), expected_pages, "limit {limit}: pages {pages:?}");
        assert!(pages.iter().all(|p| !p.is_empty() && p.len() as u64 <= limit), "limit {limit}: pages {pages:?}");
        let walked: Vec<String> = pages.concat();
        assert_eq!(walked, created, "limit {limit}");
    }
}

#[tokio::test]
async fn cursor_skips_nothing_and_shows_nothing_newer_when_providers_are_inserted_between_pages() {
    // Arrange: five providers and the first page of two
    let app = spawn_app().await;
    let mut before = Vec::new();
    for i in 0..5 {
        before.push(id_of(&app.create_provider(&format!("Bestand {i}")).await));
    }
    before.reverse(); // newest first
    let first = page(&app, &[("limit", "2")]).await;
    let cursor = first["next_cursor"].as_str().expect("a second page").to_owned();
    // Act: others insert while the caller pages on
    let inserted = [app.create_provider("Neu A").await, app.create_provider("Neu B").await];
    let rest = walk_from(&app, &[], 2, Some(cursor)).await.concat();
    // Assert
    let mut walked = ids_of(&first);
    walked.extend(rest);
    assert_eq!(walked, before, "exactly the providers present at the first page, each once, in order");
    let fresh = ids_of(&page(&app, &[("limit", "2")]).await);
    assert_eq!(fresh, ids(&[&inserted[1], &inserted[0]]), "a new walk starts with the new providers");
}

#[tokio::test]
async fn oldest_first_cursor_continues_into_providers_inserted_between_pages() {
    // Arrange
    let app = spawn_app().await;
    let mut all = Vec::new();
    for i in 0..3 {
        all.push(id_of(&app.create_provider(&format!("Bestand {i}")).await));
    }
    let first = page(&app, &[("sort", "created_at"), ("limit", "2")]).await;
    let cursor = first["next_cursor"].as_str().expect("a second page").to_owned();
    // Act
    all.push(id_of(&app.create_provider("Neu").await));
    let rest = walk_from(&app, &[("sort", "created_at")], 2, Some(cursor)).await.concat();
    // Assert
    let mut walked = ids_of(&first);
    walked.extend(rest);
    assert_eq!(walked, all);
}

#[tokio::test]
async fn cursor_stays_valid_when_the_provider_it_points_at_is_deleted() {
    // Arrange
    let app = spawn_app().await;
    let a = app.create_provider("A").await;
    let b = app.create_provider("B").await;
    let c = app.create_provider("C").await;
    let first = page(&app, &[("limit", "2")]).await;
    assert_eq!(ids_of(&first), ids(&[&c, &b]));
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(app.delete(&path_of(&b), &caseworker()).await.status(), 204);
    // Act
    let rest = walk_from(&app, &[], 2, Some(cursor)).await.concat();
    // Assert
    assert_eq!(rest, ids(&[&a]));
}

#[tokio::test]
async fn cursor_survives_a_restart_of_the_service() {
    // Arrange: the cursor's key is in the database, shared by every instance
    let app = spawn_app().await;
    let a = app.create_provider("A").await;
    let b = app.create_provider("B").await;
    let first = page(&app, &[("limit", "1")]).await;
    assert_eq!(ids_of(&first), ids(&[&b]));
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let restarted =
        spawn_app_with(Options { database_url: Some(app.database_url.clone()), ..Default::default() }).await;
    // Act
    let rest = walk_from(&restarted, &[], 1, Some(cursor)).await.concat();
    // Assert
    assert_eq!(rest, ids(&[&a]));
}

#[tokio::test]
async fn sort_created_at_lists_oldest_first() {
    // Arrange
    let app = spawn_app().await;
    let a = app.create_provider("Erster Träger").await;
    let b = app.create_provider("Zweiter Träger").await;
    let c = app.create_provider("Dritter Träger").await;
    // Act
    let oldest_first = page(&app, &[("sort", "created_at")]).await;
    let newest_first = page(&app, &[("sort", "-created_at")]).await;
    // Assert
    assert_eq!(ids_of(&oldest_first), ids(&[&a, &b, &c]));
    assert_eq!(ids_of(&newest_first), ids(&[&c, &b, &a]));
}

#[tokio::test]
async fn unknown_sort_is_a_bad_request_naming_sort() {
    // Arrange
    let app = spawn_app().await;
    // Act
    let res = list_with(&app, &[("sort", "name")]).await;
    // Assert
    let problem = assert_problem(res, 400, "bad-request").await;
    assert_eq!(error_fields(&problem), ["sort"]);
}

#[tokio::test]
async fn tampered_or_foreign_cursors_are_rejected_as_invalid_cursor() {
    // Arrange
    let app = spawn_app().await;
    for i in 0..3 {
        app.create_provider(&format!("Träger {i}")).await;
    }
    let genuine = page(&app, &[("limit", "1")]).await["next_cursor"].as_str().unwrap().to_owned();
    let flip = |s: &str, at: usize| {
        let mut chars: Vec<char> = s.chars().collect();
        chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
        chars.into_iter().collect::<String>()
    };
    let (payload, tag) = genuine.split_once('.').expect("payload.tag");
    let cases = [
        ("payload altered", flip(&genuine, 0)),
        ("tag altered", flip(&genuine, genuine.len() - 1)),
        ("tag dropped", payload.to_owned()),
        ("payload swapped for another", format!("{}.{tag}", flip(payload, payload.len() / 2))),
        ("not a cursor", "not-a-cursor".to_owned()),
    ];
    for (what, cursor) in cases {
        // Act
        let res = list_with(&app, &[("limit", "1"), ("cursor", &cursor)]).await;
        // Assert
        assert_eq!(res.status(), 400, "{what}");
        assert_problem(res, 400, "invalid-cursor").await;
    }
    // ...while the genuine one works, and a cursor of one order is refused under the other.
    assert_eq!(list_with(&app, &[("limit", "1"), ("cursor", &genuine)]).await.status(), 200);
    let res = list_with(&app, &[("limit", "1"), ("sort", "created_at"), ("cursor", &genuine)]).await;
    assert_problem(res, 400, "invalid-cursor").await;
}

#[tokio::test]
async fn limit_outside_1_to_200_is_a_bad_request_naming_limit() {
    // Arrange
    let app = spawn_app().await;
    app.create_provider("Bildungswerk Ost").await;
    for limit in ["0", "201"] {
        // Act
        let res = list_with(&app, &[("limit", limit)]).await;
        // Assert
        let problem = assert_problem(res, 400, "bad-request").await;
        assert_eq!(error_fields(&problem), ["limit"], "limit={limit}: {problem}");
    }
    for limit in ["1", "200"] {
        assert_eq!(list_with(&app, &[("limit", limit)]).await.status(), 200, "limit={limit}");
    }
}

#[tokio::test]
async fn each_list_filter_narrows_the_result() {
    // Arrange
    let app = spawn_app().await;
    let with = |name: &str, changes: Value| {
        let mut body = provider_body(name);
        json_patch::merge(&mut body, &changes);
        body
    };
    let bodies = [
        with("Bildungswerk Ost", json!({"kind": "training_provider", "district": "21", "azav_certified": true})),
        with(
            "Nachbarschaftsverein Volkmarsdorf",
            json!({"kind": "association", "district": "20", "azav_certified": false}),
        ),
        with("OSTWERKSTATT gGmbH", json!({"kind": "social_enterprise", "district": "21", "azav_certified": false})),
    ];
    let mut created = Vec::new();
    for body in &bodies {
        let res = app.post(PROVIDERS, &caseworker(), body).await;
        assert_eq!(res.status(), 201);
        created.push(id_of(&res.json().await.unwrap()));
    }
    let [werk, verein, werkstatt] = [0, 1, 2].map(|i| created[i].as_str());
    #[rustfmt::skip]
    let cases: [(Query, Vec<&str>); 10] = [
        (&[("kind", "association")],                           vec![verein]),
        (&[("district", "20")],                                vec![verein]),
        (&[("district", "21")],                                vec![werkstatt, werk]),
        (&[("azav_certified", "true")],                        vec![werk]),
        (&[("azav_certified", "false")],                       vec![werkstatt, verein]),
        (&[("q", "ost")],                                      vec![werkstatt, werk]),
        (&[("q", "VEREIN")],                                   vec![verein]),
        (&[("kind", "training_provider"), ("district", "21")], vec![werk]),
        // LIKE wildcards are matched literally
        (&[("q", "%")],                                        vec![]),
        (&[("q", "_")],                                        vec![]),
    ];
    for (query, expected) in cases {
        // Act
        let body = page(&app, query).await;
        // Assert
        assert_eq!(ids_of(&body), expected, "filter {query:?}");
    }
}

#[tokio::test]
async fn q_filter_ignores_case_of_umlauts_too() {
    // Arrange: German names often start with a capital umlaut
    let app = spawn_app().await;
    let oestliche = id_of(&app.create_provider("Östliche Werkstatt").await);
    let uebergang = id_of(&app.create_provider("ÜBERGANGSWERK Schönefeld").await);
    let ost = id_of(&app.create_provider("Bildungswerk Ost").await);
    #[rustfmt::skip]
    let cases = [
        ("Östliche",   vec![oestliche.as_str()]),
        ("östliche",   vec![oestliche.as_str()]),
        ("ÖSTLICHE",   vec![oestliche.as_str()]),
        ("übergang",   vec![uebergang.as_str()]),
        ("SCHÖNEFELD", vec![uebergang.as_str()]),
        ("ost",        vec![ost.as_str()]),
    ];
    for (q, expected) in cases {
        // Act
        let body = page(&app, &[("q", q)]).await;
        // Assert
        assert_eq!(ids_of(&body), expected, "q={q}");
    }
}

#[tokio::test]
async fn unknown_kind_filter_is_a_bad_request_naming_kind() {
    // Arrange
    let app = spawn_app().await;
    // Act
    let res = list_with(&app, &[("kind", "castle")]).await;
    // Assert
    let problem = assert_problem(res, 400, "bad-request").await;
    assert_eq!(error_fields(&problem), ["kind"]);
}

#[tokio::test]
async fn non_boolean_azav_filter_is_a_bad_request() {
    // Arrange
    let app = spawn_app().await;
    // Act
    let res = list_with(&app, &[("azav_certified", "maybe")]).await;
    // Assert
    assert_problem(res, 400, "bad-request").await;
}

// ---------------------------------------------------------------------------
// 3. ETag and If-Match
// ---------------------------------------------------------------------------

#[tokio::test]
async fn get_answers_the_version_as_etag() {
    // Arrange
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Ost").await;
    // Act
    let res = app.get(&path_of(&provider), &Caller::new("jobcenter")).await;
    // Assert
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["etag"], "\"1\"");
    assert_eq!(res.json::<Value>().await.unwrap()["version"], 1);
}

#[tokio::test]
async fn patch_with_the_current_if_match_bumps_version_and_etag() {
    // Arrange
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Ost").await;
    // Act
    let res =
        patch_if_match(&app, &path_of(&provider), &json!({"name": "Bildungswerk Leipzig-Ost"}), Some("\"1\"")).await;
    // Assert
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["etag"], "\"2\"");
    let changed: Value = res.json().await.unwrap();
    assert_eq!(changed["version"], 2);
    assert_eq!(changed["name"], "Bildungswerk Leipzig-Ost");
    let read = app.get(&path_of(&provider), &caseworker()).await;
    assert_eq!(read.headers()["etag"], "\"2\"");
}

#[tokio::test]
async fn patch_with_a_stale_if_match_is_412_and_changes_nothing() {
    // Arrange
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Ost").await;
    let path = path_of(&provider);
    let res = patch_if_match(&app, &path, &json!({"name": "Erste Änderung"}), Some("\"1\"")).await;
    assert_eq!(res.status(), 200);
    // Act
    let res = patch_if_match(&app, &path, &json!({"name": "Verlorene Änderung"}), Some("\"1\"")).await;
    // Assert
    assert_problem(res, 412, "precondition-failed").await;
    let current: Value = app.get(&path, &caseworker()).await.json().await.unwrap();
    assert_eq!(current["name"], "Erste Änderung");
    assert_eq!(current["version"], 2);
}

#[tokio::test]
async fn patch_without_if_match_is_applied() {
    // Arrange
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Ost").await;
    // Act
    let res = patch_if_match(&app, &path_of(&provider), &json!({"azav_certified": false}), None).await;
    // Assert
    assert_eq!(res.status(), 200);
    let changed: Value = res.json().await.unwrap();
    assert_eq!(changed["azav_certified"], false);
    assert_eq!(changed["version"], 2);
}

#[tokio::test]
async fn delete_with_a_stale_if_match_is_412_and_keeps_the_provider() {
    // Arrange
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Ost").await;
    let path = path_of(&provider);
    assert_eq!(patch_if_match(&app, &path, &json!({"district": "20"}), None).await.status(), 200);
    // Act
    let res = delete_if_match(&app, &path, "\"1\"").await;
    // Assert
    assert_problem(res, 412, "precondition-failed").await;
    assert_eq!(app.get(&path, &caseworker()).await.status(), 200);
}

#[tokio::test]
async fn delete_with_the_current_if_match_deletes() {
    // Arrange
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Ost").await;
    // Act
    let res = delete_if_match(&app, &path_of(&provider), "\"1\"").await;
    // Assert
    assert_eq!(res.status(), 204);
    assert_eq!(app.get(&path_of(&provider), &caseworker()).await.status(), 404);
}

#[tokio::test]
async fn if_match_star_matches_any_current_version() {
    // Arrange
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Ost").await;
    let path = path_of(&provider);
    assert_eq!(patch_if_match(&app, &path, &json!({"district": "20"}), None).await.status(), 200);
    // Act
    let patched = patch_if_match(&app, &path, &json!({"district": "22"}), Some("*")).await;
    let deleted = delete_if_match(&app, &path, "*").await;
    // Assert
    assert_eq!(patched.status(), 200);
    assert_eq!(patched.headers()["etag"], "\"3\"");
    assert_eq!(deleted.status(), 204);
}

// ---------------------------------------------------------------------------
// 4. Merge patch (RFC 7396)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn merge_patch_null_removes_the_website() {
    // Arrange
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Ost").await;
    assert_eq!(provider["website"], "https://example.org");
    // Act
    let res = app.patch(&path_of(&provider), &caseworker(), &json!({"website": null})).await;
    // Assert
    assert_eq!(res.status(), 200);
    let changed: Value = res.json().await.unwrap();
    assert!(changed["website"].is_null(), "{changed}");
    assert_eq!(changed["name"], provider["name"], "other fields stay");
    let read: Value = app.get(&path_of(&provider), &caseworker()).await.json().await.unwrap();
    assert!(read["website"].is_null());
}

#[tokio::test]
async fn merge_patch_null_inside_contact_removes_only_that_member() {
    // Arrange
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Ost").await;
    // Act
    let res = app.patch(&path_of(&provider), &caseworker(), &json!({"contact": {"phone": null}})).await;
    // Assert
    assert_eq!(res.status(), 200);
    let contact = res.json::<Value>().await.unwrap()["contact"].clone();
    assert!(contact["phone"].is_null(), "{contact}");
    assert_eq!(contact["name"], "Petra Lehmann");
    assert_eq!(contact["email"], "kontakt@example.org");
}

#[tokio::test]
async fn merge_patch_with_an_empty_name_is_422_naming_name() {
    // Arrange
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Ost").await;
    // Act
    let res = app.patch(&path_of(&provider), &caseworker(), &json!({"name": ""})).await;
    // Assert
    let problem = assert_problem(res, 422, "validation-failed").await;
    assert_eq!(error_fields(&problem), ["name"]);
    let read: Value = app.get(&path_of(&provider), &caseworker()).await.json().await.unwrap();
    assert_eq!(read, provider, "nothing changed");
}

#[tokio::test]
async fn merge_patch_with_an_unknown_district_is_422_naming_district() {
    // Arrange
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Ost").await;
    // Act
    let res = app.patch(&path_of(&provider), &caseworker(), &json!({"district": "99"})).await;
    // Assert
    let problem = assert_problem(res, 422, "validation-failed").await;
    assert_eq!(error_fields(&problem), ["district"]);
}

#[tokio::test]
async fn merge_patch_with_an_unknown_field_is_400_naming_it() {
    // Arrange
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Ost").await;
    for (patch, name) in [(json!({"nmae": "x"}), "nmae"), (json!({"contact": {"fax": "0341 1"}}), "fax")] {
        // Act
        let res = app.patch(&path_of(&provider), &caseworker(), &patch).await;
        // Assert
        let problem = assert_problem(res, 400, "bad-request").await;
        assert!(problem_mentions(&problem, name), "{name} not named in {problem}");
    }
}

#[tokio::test]
async fn merge_patch_cannot_write_read_only_fields() {
    // Arrange
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Ost").await;
    let other_id = uuid::Uuid::now_v7().to_string();
    let patches = [
        (json!({"id": other_id}), "id"),
        (json!({"version": 5}), "version"),
        (json!({"created_at": "2001-01-01T00:00:00Z"}), "created_at"),
        (json!({"updated_at": "2001-01-01T00:00:00Z"}), "updated_at"),
    ];
    for (patch, field) in patches {
        // Act
        let res = app.patch(&path_of(&provider), &caseworker(), &patch).await;
        // Assert
        let problem = assert_problem(res, 400, "bad-request").await;
        assert!(problem_mentions(&problem, field), "{field} not named in {problem}");
    }
    let read: Value = app.get(&path_of(&provider), &caseworker()).await.json().await.unwrap();
    assert_eq!(read, provider, "nothing changed");
}

#[tokio::test]
async fn merge_patch_that_is_not_an_object_is_400() {
    // Arrange
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Ost").await;
    for patch in [json!([{"name": "x"}]), json!([]), json!("name"), json!(42)] {
        // Act
        let res = app.patch(&path_of(&provider), &caseworker(), &patch).await;
        // Assert
        assert_problem(res, 400, "bad-request").await;
    }
    let read: Value = app.get(&path_of(&provider), &caseworker()).await.json().await.unwrap();
    assert_eq!(read, provider, "nothing changed");
}

// ---------------------------------------------------------------------------
// 5. Idempotency-Key
// ---------------------------------------------------------------------------

#[tokio::test]
async fn create_repeated_with_the_same_key_replays_the_original_response() {
    // Arrange
    let app = spawn_app().await;
    let caller = caseworker();
    let body = provider_body("Bildungswerk Ost");
    let first = create_with_key(&app, &caller, "create-bildungswerk-1", &body).await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none(), "the original is no replay");
    let first_location = first.headers()["location"].clone();
    let first_etag = first.headers()["etag"].clone();
    let first_body: Value = first.json().await.unwrap();
    // Act
    let again = create_with_key(&app, &caller, "create-bildungswerk-1", &body).await;
    // Assert
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["location"], first_location);
    assert_eq!(again.headers()["etag"], first_etag);
    assert_eq!(again.json::<Value>().await.unwrap(), first_body);
    assert_eq!(count(&app).await, 1, "only one provider exists");
}

#[tokio::test]
async fn same_key_with_a_different_body_is_422_idempotency_key_reused() {
    // Arrange
    let app = spawn_app().await;
    let caller = caseworker();
    let res = create_with_key(&app, &caller, "k-42", &provider_body("Bildungswerk Ost")).await;
    assert_eq!(res.status(), 201);
    // Act
    let res = create_with_key(&app, &caller, "k-42", &provider_body("Ganz anderer Träger")).await;
    // Assert
    assert_problem(res, 422, "idempotency-key-reused").await;
    assert_eq!(count(&app).await, 1);
}

#[tokio::test]
async fn idempotency_keys_are_scoped_per_caller() {
    // Arrange
    let app = spawn_app().await;
    let body = provider_body("Bildungswerk Ost");
    let res = create_with_key(&app, &caseworker(), "shared-key", &body).await;
    assert_eq!(res.status(), 201);
    let first: Value = res.json().await.unwrap();
    // Act: another principal (another sub) with the same key and body
    let res = create_with_key(&app, &caseworker(), "shared-key", &body).await;
    // Assert
    assert_eq!(res.status(), 201);
    assert!(res.headers().get("idempotent-replayed").is_none());
    let second: Value = res.json().await.unwrap();
    assert_ne!(id_of(&second), id_of(&first));
    assert_eq!(count(&app).await, 2);
}

#[tokio::test]
async fn malformed_idempotency_key_is_400_and_creates_nothing() {
    // Arrange
    let app = spawn_app().await;
    let keys: [(&str, Vec<u8>); 5] = [
        ("empty", Vec::new()),
        ("256 characters", "k".repeat(256).into_bytes()),
        ("300 characters", "k".repeat(300).into_bytes()),
        ("non-ASCII", "schlüssel-1".as_bytes().to_vec()),
        ("a tab", b"key\twith-tab".to_vec()),
    ];
    for (what, key) in keys {
        // Act
        let res = app
            .request(Method::POST, PROVIDERS, Some(&caseworker()))
            .header("Idempotency-Key", reqwest::header::HeaderValue::from_bytes(&key).unwrap())
            .json(&provider_body("Bildungswerk Ost"))
            .send()
            .await
            .unwrap();
        // Assert
        assert_eq!(res.status(), 400, "{what}");
        assert_problem(res, 400, "bad-request").await;
    }
    assert_eq!(count(&app).await, 0);
}

#[tokio::test]
async fn idempotency_key_of_1_to_255_printable_ascii_is_accepted() {
    // Arrange
    let app = spawn_app().await;
    for key in ["k".to_owned(), "k".repeat(255), " ~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}".to_owned()] {
        // Act
        let res = create_with_key(&app, &caseworker(), &key, &provider_body("Bildungswerk Ost")).await;
        // Assert
        assert_eq!(res.status(), 201, "key {key:?}");
    }
}

#[tokio::test]
async fn idempotency_key_survives_a_restart_of_the_service() {
    // Arrange
    let app = spawn_app().await;
    let caller = caseworker();
    let body = provider_body("Bildungswerk Ost");
    let res = create_with_key(&app, &caller, "before-restart", &body).await;
    assert_eq!(res.status(), 201);
    let original: Value = res.json().await.unwrap();
    // Act: a second instance on the same database
    let restarted =
        spawn_app_with(Options { database_url: Some(app.database_url.clone()), ..Default::default() }).await;
    let res = create_with_key(&restarted, &caller, "before-restart", &body).await;
    // Assert
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    assert_eq!(res.json::<Value>().await.unwrap(), original);
    assert_eq!(count(&restarted).await, 1);
}

#[tokio::test]
async fn failed_create_does_not_use_up_the_idempotency_key() {
    // Arrange
    let app = spawn_app().await;
    let caller = caseworker();
    let mut invalid = provider_body("Bildungswerk Ost");
    invalid["name"] = json!("");
    let res = create_with_key(&app, &caller, "retry-me", &invalid).await;
    assert_problem(res, 422, "validation-failed").await;
    // Act
    let res = create_with_key(&app, &caller, "retry-me", &provider_body("Bildungswerk Ost")).await;
    // Assert
    assert_eq!(res.status(), 201);
    assert!(res.headers().get("idempotent-replayed").is_none());
    assert_eq!(count(&app).await, 1);
}

#[tokio::test]
async fn concurrent_creates_with_one_key_create_one_provider() {
    // Arrange
    let app = spawn_app().await;
    let caller = caseworker();
    let body = provider_body("Bildungswerk Ost");
    // Act
    let responses =
        futures_util::future::join_all((0..6).map(|_| create_with_key(&app, &caller, "burst", &body))).await;
    // Assert: one original, the others replays of it or "still in progress"
    let mut originals = 0;
    for res in responses {
        match res.status().as_u16() {
            201 if res.headers().get("idempotent-replayed").is_none() => originals += 1,
            201 => {}
            409 => {
                assert_problem(res, 409, "idempotency-key-in-use").await;
            }
            other => panic!("unexpected status {other}: {}", res.text().await.unwrap()),
        }
    }
    assert_eq!(originals, 1);
    assert_eq!(count(&app).await, 1);
}

// ---------------------------------------------------------------------------
// 6. Delete and malformed ids
// ---------------------------------------------------------------------------

#[tokio::test]
async fn deleted_provider_reads_as_not_found() {
    // Arrange
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Ost").await;
    // Act
    let res = app.delete(&path_of(&provider), &caseworker()).await;
    // Assert
    assert_eq!(res.status(), 204);
    assert_problem(app.get(&path_of(&provider), &caseworker()).await, 404, "not-found").await;
    assert_problem(app.delete(&path_of(&provider), &caseworker()).await, 404, "not-found").await;
    assert_eq!(count(&app).await, 0);
}

#[tokio::test]
async fn deleting_an_unknown_provider_is_404() {
    // Arrange
    let app = spawn_app().await;
    let unknown = format!("{PROVIDERS}/{}", uuid::Uuid::now_v7());
    // Act
    let res = app.delete(&unknown, &admin()).await;
    // Assert
    assert_problem(res, 404, "not-found").await;
}

#[tokio::test]
async fn malformed_provider_id_is_400() {
    // Arrange
    let app = spawn_app().await;
    let path = format!("{PROVIDERS}/not-a-uuid");
    // Act
    let get = app.get(&path, &caseworker()).await;
    let patch = app.patch(&path, &caseworker(), &json!({"name": "x"})).await;
    let delete = app.delete(&path, &caseworker()).await;
    // Assert
    assert_problem(get, 400, "bad-request").await;
    assert_problem(patch, 400, "bad-request").await;
    assert_problem(delete, 400, "bad-request").await;
}

#[tokio::test]
async fn every_provider_kind_of_the_code_list_can_be_stored() {
    // Arrange
    let app = spawn_app().await;
    let kinds: Value = app.get("/api/v1/code-lists/provider_kinds", &caseworker()).await.json().await.unwrap();
    let kinds: Vec<&str> = kinds["items"].as_array().unwrap().iter().map(|k| k["code"].as_str().unwrap()).collect();
    assert_eq!(kinds.len(), 6);
    for kind in kinds {
        let mut body = provider_body("Träger");
        body["kind"] = json!(kind);
        // Act
        let res = app.post(PROVIDERS, &caseworker(), &body).await;
        // Assert
        assert_eq!(res.status(), 201, "kind {kind}");
        assert_eq!(res.json::<Value>().await.unwrap()["kind"], kind);
    }
}
