//! The FHIR R4 view of referrals (`/fhir/r4`): reads, search with paging,
//! status changes through the referral status machine, visibility, errors
//! as OperationOutcome — and every resource served (errors included)
//! validated against the official FHIR R4 JSON schema (`tests/fhir/`).
use std::sync::OnceLock;

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::{helpers::*, referral_fixtures as fx};

const FHIR_JSON: &str = "application/fhir+json";

/// The official R4 `fhir.schema.json` (see `tests/fhir/README.md`), compiled once.
fn fhir_schema() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let gz: &[u8] = include_bytes!("../fhir/fhir.schema.json.gz");
        let mut schema: Value = serde_json::from_reader(flate2::read::GzDecoder::new(gz)).expect("the schema is JSON");
        assert_eq!(schema["id"], "http://hl7.org/fhir/json-schema/4.0");
        // The vendored file is the R4 4.0.0 release; the 4.0.1 technical
        // correction (which we implement) differs, for every definition we
        // serve, only in allowing its own version number here (README).
        let versions = &mut schema["definitions"]["CapabilityStatement"]["properties"]["fhirVersion"]["enum"];
        if let Some(versions) = versions.as_array_mut().filter(|v| !v.contains(&json!("4.0.1"))) {
            versions.push(json!("4.0.1"));
        }
        jsonschema::options().with_draft(jsonschema::Draft::Draft6).build(&schema).expect("the schema compiles")
    })
}

/// Fails with every violation when `resource` is not valid FHIR R4 JSON.
fn assert_valid_fhir(resource: &Value) {
    let validator = fhir_schema();
    let errors: Vec<String> =
        validator.iter_errors(resource).map(|e| format!("{} at {}", e, e.instance_path())).take(10).collect();
    assert!(errors.is_empty(), "not valid FHIR R4:\n{}\nin {resource:#}", errors.join("\n"));
}

/// The answer's status, after checking it is FHIR JSON and valid FHIR R4; its body.
async fn fhir_answer(res: Response, status: u16) -> Value {
    let got = res.status().as_u16();
    let content_type = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let body: Value = res.json().await.unwrap();
    assert_eq!(got, status, "{body}");
    assert!(content_type.starts_with(FHIR_JSON), "content-type {content_type}");
    assert_valid_fhir(&body);
    body
}

/// An error answer: an OperationOutcome with `status` and the problem `slug`.
async fn assert_outcome(res: Response, status: u16, slug: &str) -> Value {
    let body = fhir_answer(res, status).await;
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
    assert_eq!(body["issue"][0]["details"]["coding"][0]["code"], slug, "{body}");
    body
}

/// A test app, after the schema is compiled: compiling it takes seconds in a
/// debug build, and a pooled connection left idle that long meanwhile is
/// closed by the server's keep-alive timeout under the next request.
async fn fhir_app() -> TestApp {
    fhir_schema();
    spawn_app().await
}

async fn fhir_get(app: &TestApp, path: &str, caller: Option<&Caller>) -> Response {
    app.request(Method::GET, path, caller).send().await.unwrap()
}

async fn fhir_patch(
    app: &TestApp,
    id: &str,
    caller: &Caller,
    content_type: &str,
    if_match: Option<&str>,
    body: &Value,
) -> Response {
    let mut request = app
        .request(Method::PATCH, &format!("/fhir/r4/Task/{id}"), Some(caller))
        .header("content-type", content_type)
        .body(body.to_string());
    if let Some(tag) = if_match {
        request = request.header("if-match", tag);
    }
    request.send().await.unwrap()
}

/// A provider with a measure of `capacity` seats, and a referral into it made by a caseworker.
struct Scene {
    provider: fx::Org,
    measure_id: String,
    referral: Value,
}

async fn scene(app: &TestApp, capacity: i64) -> Scene {
    let provider = fx::provider(app).await;
    let measure = fx::measure(app, &provider.id, capacity, json!({})).await;
    let measure_id = fx::id(&measure);
    let referral = fx::fresh_referral(app, &caseworker(), &fx::Target::Measure(measure_id.clone())).await;
    Scene { provider, measure_id, referral }
}

#[tokio::test]
async fn metadata_is_a_public_capability_statement() {
    // Arrange
    let app = fhir_app().await;
    // Act
    let res = fhir_get(&app, "/fhir/r4/metadata", None).await;
    // Assert
    let statement = fhir_answer(res, 200).await;
    assert_eq!(statement["resourceType"], "CapabilityStatement");
    assert_eq!(statement["fhirVersion"], "4.0.1");
    let types: Vec<&str> =
        statement["rest"][0]["resource"].as_array().unwrap().iter().map(|r| r["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["Task", "ServiceRequest"]);
}

#[tokio::test]
async fn a_referral_reads_as_a_valid_task_owned_by_the_provider() {
    // Arrange
    let app = fhir_app().await;
    let s = scene(&app, 3).await;
    let id = fx::id(&s.referral);
    // Act
    let res = fhir_get(&app, &format!("/fhir/r4/Task/{id}"), Some(&s.provider.caller)).await;
    // Assert
    assert_eq!(res.headers()["etag"], "W/\"1\"");
    let task = fhir_answer(res, 200).await;
    assert_eq!(task["resourceType"], "Task");
    assert_eq!(task["id"], id.as_str());
    assert_eq!(task["status"], "requested");
    assert_eq!(task["businessStatus"]["coding"][0]["code"], "requested");
    assert_eq!(task["meta"]["versionId"], "1");
    assert_eq!(task["basedOn"][0]["reference"], format!("ServiceRequest/{id}"));
    assert_eq!(task["for"]["reference"], format!("Patient/{}", s.referral["client_id"].as_str().unwrap()));
    assert_eq!(task["owner"]["reference"], format!("Organization/{}", s.provider.id));
    assert_eq!(task["requester"]["identifier"]["value"], "office");
    assert_eq!(task["lastModified"], task["meta"]["lastUpdated"]);
}

#[tokio::test]
async fn the_service_request_names_the_measure_and_no_personal_data() {
    // Arrange
    let app = fhir_app().await;
    let s = scene(&app, 3).await;
    let id = fx::id(&s.referral);
    // Act
    let res = fhir_get(&app, &format!("/fhir/r4/ServiceRequest/{id}"), Some(&s.provider.caller)).await;
    // Assert
    let request = fhir_answer(res, 200).await;
    assert_eq!(request["resourceType"], "ServiceRequest");
    assert_eq!(request["status"], "active");
    assert_eq!(request["intent"], "order");
    assert_eq!(request["subject"]["reference"], format!("Patient/{}", s.referral["client_id"].as_str().unwrap()));
    assert_eq!(request["performer"][0]["identifier"]["value"], s.measure_id.as_str());
    assert_eq!(request["performer"][1]["reference"], format!("Organization/{}", s.provider.id));
    assert_eq!(request["authoredOn"], request["meta"]["lastUpdated"]);
    let text = request.to_string();
    // The phone as a whole: three digits alone turn up in random ids (`…-555d-…`).
    for personal in ["Mara", "Beispiel", "1990-05-17", "mara.beispiel", "555 0101"] {
        assert!(!text.contains(personal), "{personal} in {text}");
    }
}

#[tokio::test]
async fn visibility_roles_and_tokens_are_those_of_the_referral_api_as_operation_outcomes() {
    // Arrange
    let app = fhir_app().await;
    let s = scene(&app, 3).await;
    let id = fx::id(&s.referral);
    let other = fx::provider(&app).await;
    let task = format!("/fhir/r4/Task/{id}");
    let service_request = format!("/fhir/r4/ServiceRequest/{id}");
    // Act + Assert: another provider sees nothing (404), an analyst may not (403), no token is 401
    assert_outcome(fhir_get(&app, &task, Some(&other.caller)).await, 404, "not-found").await;
    assert_outcome(fhir_get(&app, &service_request, Some(&other.caller)).await, 404, "not-found").await;
    assert_outcome(fhir_get(&app, &task, Some(&Caller::new("analyst"))).await, 403, "forbidden").await;
    assert_outcome(fhir_get(&app, "/fhir/r4/Task", Some(&Caller::new("analyst"))).await, 403, "forbidden").await;
    let res = fhir_get(&app, &task, None).await;
    assert!(res.headers().get("www-authenticate").is_some());
    assert_outcome(res, 401, "unauthorized").await;
    assert_outcome(fhir_get(&app, "/fhir/r4/Task/not-a-uuid", Some(&caseworker())).await, 404, "not-found").await;
    assert_outcome(fhir_get(&app, "/fhir/r4/Patient/1", Some(&caseworker())).await, 404, "not-found").await;
    // and the others still read it
    for caller in [caseworker(), admin(), s.provider.caller.clone()] {
        fhir_answer(fhir_get(&app, &task, Some(&caller)).await, 200).await;
    }
    let other_search = fhir_answer(fhir_get(&app, "/fhir/r4/Task", Some(&other.caller)).await, 200).await;
    assert!(other_search.get("entry").is_none(), "{other_search}");
}

/// Every Task id of a search, following `next` links to the end; checks each Bundle.
async fn search_all(app: &TestApp, caller: &Caller, query: &str) -> (Vec<String>, usize) {
    let mut url = app.url(&format!("/fhir/r4/Task?{query}"));
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let res = app.client.get(&url).bearer_auth(token_for(caller)).send().await.unwrap();
        let bundle = fhir_answer(res, 200).await;
        pages += 1;
        assert_eq!(bundle["type"], "searchset");
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            assert!(entry["fullUrl"].as_str().unwrap().ends_with(entry["resource"]["id"].as_str().unwrap()));
            ids.push(entry["resource"]["id"].as_str().unwrap().to_owned());
        }
        let next = bundle["link"].as_array().unwrap().iter().find(|l| l["relation"] == "next");
        match next {
            Some(link) => url = link["url"].as_str().unwrap().to_owned(),
            None => return (ids, pages),
        }
        assert!(pages < 20, "paging does not end");
    }
}

#[tokio::test]
async fn search_by_status_pages_with_next_links_in_order_of_change() {
    // Arrange: three requested, one accepted, one rejected
    let app = fhir_app().await;
    let s = scene(&app, 5).await;
    let target = fx::Target::Measure(s.measure_id.clone());
    let mut requested = vec![fx::id(&s.referral)];
    for _ in 0..2 {
        requested.push(fx::id(&fx::fresh_referral(&app, &caseworker(), &target).await));
    }
    let accepted = fx::id(&fx::fresh_referral(&app, &caseworker(), &target).await);
    fx::drive(&app, &accepted, "accepted").await;
    let rejected = fx::id(&fx::fresh_referral(&app, &caseworker(), &target).await);
    fx::drive(&app, &rejected, "rejected").await;
    // Act
    let (ids, pages) = search_all(&app, &s.provider.caller, "status=requested&_count=1").await;
    let (both, _) = search_all(&app, &s.provider.caller, "status=accepted,rejected&_count=50").await;
    let (all, _) = search_all(&app, &s.provider.caller, "_count=2").await;
    // Assert
    assert_eq!(ids, requested);
    assert_eq!(pages, 3);
    assert_eq!(both, [accepted.clone(), rejected.clone()]);
    assert_eq!(all.len(), 5);
    let (none, _) = search_all(&app, &s.provider.caller, "status=draft").await;
    assert!(none.is_empty());
}

#[tokio::test]
async fn search_by_last_updated_gives_only_later_changes() {
    // Arrange
    let app = fhir_app().await;
    let s = scene(&app, 5).await;
    let first = fx::id(&s.referral);
    let task = fhir_answer(fhir_get(&app, &format!("/fhir/r4/Task/{first}"), Some(&caseworker())).await, 200).await;
    let since = task["meta"]["lastUpdated"].as_str().unwrap().to_owned();
    let later = fx::id(&fx::fresh_referral(&app, &caseworker(), &fx::Target::Measure(s.measure_id.clone())).await);
    fx::drive(&app, &first, "accepted").await;
    // Act
    let query = format!("_lastUpdated=gt{}", since.replace('+', "%2B"));
    let (ids, _) = search_all(&app, &s.provider.caller, &query).await;
    // Assert: the later referral, then the first one's change, in order of change
    assert_eq!(ids, [later, first]);
}

#[tokio::test]
async fn bad_search_parameters_and_cursors_are_400_operation_outcomes() {
    let app = fhir_app().await;
    for query in
        ["status=in_progress", "_lastUpdated=lt2026-01-01T00:00:00Z", "_count=0", "subject=Patient/1", "_cursor=abc"]
    {
        let res = fhir_get(&app, &format!("/fhir/r4/Task?{query}"), Some(&caseworker())).await;
        let slug = if query.starts_with("_cursor") { "invalid-cursor" } else { "bad-request" };
        assert_outcome(res, 400, slug).await;
    }
}

#[tokio::test]
async fn a_json_patch_of_the_status_runs_the_referral_transition() {
    // Arrange
    let app = fhir_app().await;
    let s = scene(&app, 3).await;
    let id = fx::id(&s.referral);
    let patch = json!([{"op": "replace", "path": "/status", "value": "accepted"}]);
    // Act
    let res = fhir_patch(&app, &id, &s.provider.caller, "application/json-patch+json", Some("W/\"1\""), &patch).await;
    // Assert: the Task, the referral, its history and the measure's seats all moved
    assert_eq!(res.headers()["etag"], "W/\"2\"");
    let task = fhir_answer(res, 200).await;
    assert_eq!(task["status"], "accepted");
    assert_eq!(task["meta"]["versionId"], "2");
    assert_eq!(fx::referral_of(&app, &id).await["status"], "accepted");
    let events = fx::events_of(&app, &id).await;
    assert_eq!(events.last().unwrap()["action"], "accept");
    assert_eq!(events.last().unwrap()["actor_org"], s.provider.id.as_str());
    assert_eq!(fx::measure_of(&app, &s.measure_id).await["seats_taken"], 1);
}

#[tokio::test]
async fn a_merge_patch_rejects_with_its_reason_and_completion_records_the_outcome() {
    // Arrange
    let app = fhir_app().await;
    let s = scene(&app, 3).await;
    let id = fx::id(&s.referral);
    let reject = json!({"status": "rejected", "statusReason": {"coding": [{
        "system": "https://ostwerk.dev/fhir/CodeSystem/reason-code", "code": "no_capacity"}]}});
    // Act
    let res = fhir_patch(&app, &id, &s.provider.caller, "application/merge-patch+json", None, &reject).await;
    // Assert
    let task = fhir_answer(res, 200).await;
    assert_eq!(task["status"], "rejected");
    assert_eq!(task["statusReason"]["coding"][0]["code"], "no_capacity");
    let referral = fx::referral_of(&app, &id).await;
    assert_eq!(
        (referral["reason_code"].as_str(), referral["rejected_by"].as_str()),
        (Some("no_capacity"), Some("provider"))
    );

    // Arrange: another referral, in progress
    let other = fx::id(&fx::fresh_referral(&app, &caseworker(), &fx::Target::Measure(s.measure_id.clone())).await);
    fx::drive(&app, &other, "in_progress").await;
    let complete = json!({"status": "completed", "output": [{"type": {"text": "outcome"}, "valueCodeableConcept": {
        "coding": [{"system": "https://ostwerk.dev/fhir/CodeSystem/outcome", "code": "apprenticeship"}]}}]});
    // Act
    let res = fhir_patch(&app, &other, &s.provider.caller, FHIR_JSON, None, &complete).await;
    // Assert
    let task = fhir_answer(res, 200).await;
    assert_eq!(task["status"], "completed");
    assert_eq!(task["output"][0]["valueCodeableConcept"]["coding"][0]["code"], "apprenticeship");
    assert_eq!(fx::referral_of(&app, &other).await["outcome"], "apprenticeship");
}

#[tokio::test]
async fn a_stale_version_is_a_412_operation_outcome() {
    // Arrange: the referral moved to version 2 meanwhile
    let app = fhir_app().await;
    let s = scene(&app, 3).await;
    let id = fx::id(&s.referral);
    fx::drive(&app, &id, "accepted").await;
    let start = json!([{"op": "replace", "path": "/status", "value": "in-progress"}]);
    let tested = json!([
        {"op": "test", "path": "/meta/versionId", "value": "1"},
        {"op": "replace", "path": "/status", "value": "in-progress"}
    ]);
    // Act + Assert: by If-Match and by a JSON Patch test
    let res = fhir_patch(&app, &id, &s.provider.caller, "application/json-patch+json", Some("W/\"1\""), &start).await;
    assert_outcome(res, 412, "precondition-failed").await;
    let res = fhir_patch(&app, &id, &s.provider.caller, "application/json-patch+json", None, &tested).await;
    assert_outcome(res, 412, "precondition-failed").await;
    assert_eq!(fx::referral_of(&app, &id).await["status"], "accepted");
    // the current version passes
    let res = fhir_patch(&app, &id, &s.provider.caller, "application/json-patch+json", Some("W/\"2\""), &start).await;
    assert_eq!(fhir_answer(res, 200).await["status"], "in-progress");
}

#[tokio::test]
async fn illegal_changes_are_operation_outcomes_and_change_nothing() {
    // Arrange
    let app = fhir_app().await;
    let s = scene(&app, 3).await;
    let id = fx::id(&s.referral);
    let patch = |status: &str| json!({"status": status});
    let p = &s.provider.caller;
    let merge = "application/merge-patch+json";
    // Act + Assert
    // not allowed from `requested`
    let body =
        assert_outcome(fhir_patch(&app, &id, p, merge, None, &patch("completed")).await, 409, "invalid-transition")
            .await;
    assert_eq!(body["issue"][0]["code"], "conflict");
    // no action leads there
    assert_outcome(fhir_patch(&app, &id, p, merge, None, &patch("draft")).await, 409, "invalid-transition").await;
    // not a Task status, a reason missing, a member that cannot change
    assert_outcome(fhir_patch(&app, &id, p, merge, None, &patch("in_progress")).await, 422, "validation-failed").await;
    let body =
        assert_outcome(fhir_patch(&app, &id, p, merge, None, &patch("rejected")).await, 422, "validation-failed").await;
    assert_eq!(body["issue"][1]["expression"][0], "statusReason");
    let owner = json!({"status": "accepted", "owner": {"reference": "Organization/x"}});
    assert_outcome(fhir_patch(&app, &id, p, merge, None, &owner).await, 422, "validation-failed").await;
    // the referring side's action is not the provider's
    let cancel = json!({"status": "cancelled", "statusReason": {"coding": [{"code": "duplicate"}]}});
    assert_outcome(fhir_patch(&app, &id, p, merge, None, &cancel).await, 403, "forbidden").await;
    // not JSON, wrong media type
    let res = app
        .request(Method::PATCH, &format!("/fhir/r4/Task/{id}"), Some(p))
        .header("content-type", merge)
        .body("{")
        .send()
        .await
        .unwrap();
    assert_outcome(res, 400, "bad-request").await;
    let res = fhir_patch(&app, &id, p, "text/plain", None, &patch("accepted")).await;
    assert_outcome(res, 415, "unsupported-media-type").await;
    // another provider cannot see it at all
    let other = fx::provider(&app).await;
    assert_outcome(fhir_patch(&app, &id, &other.caller, merge, None, &patch("accepted")).await, 404, "not-found").await;
    assert_eq!(fx::referral_of(&app, &id).await["version"], 1);
}

#[test]
fn the_documented_examples_are_valid_fhir() {
    // Arrange: the examples the OpenAPI document shows partners
    let spec: Value = serde_json::from_str(&ostwerk::openapi::to_pretty_json()).unwrap();
    let schemas = &spec["components"]["schemas"];
    // Act + Assert
    for name in ["FhirTask", "FhirServiceRequest", "FhirBundle", "FhirCapabilityStatement", "FhirOperationOutcome"] {
        let example = &schemas[name]["example"];
        assert!(example.is_object(), "{name} has no example");
        assert_valid_fhir(example);
    }
}

#[test]
fn the_official_schema_refuses_what_is_not_fhir() {
    // Arrange: a Task with our status code instead of FHIR's, and a member FHIR does not know
    let wrong_status = json!({"resourceType": "Task", "status": "in_progress", "intent": "order"});
    let unknown = json!({"resourceType": "Task", "status": "requested", "intent": "order", "note_text": "x"});
    // Act + Assert
    assert!(!fhir_schema().is_valid(&wrong_status));
    assert!(!fhir_schema().is_valid(&unknown));
    assert!(fhir_schema().is_valid(&json!({"resourceType": "Task", "status": "in-progress", "intent": "order"})));
}
