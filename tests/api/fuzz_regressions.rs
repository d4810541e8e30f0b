//! Regressions found by fuzzing the service against its own OpenAPI document
//! with schemathesis (`scripts/fuzz.sh`). Each test pins one fixed finding:
//! a `500`, a response that contradicted the document, or a document that
//! offered requests the service refuses.
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// The document as served.
async fn served_spec(app: &TestApp) -> Value {
    app.client.get(app.url("/api-docs/openapi.json")).send().await.unwrap().json().await.unwrap()
}

/// The parameter `name` of the operation at `path`/`method`.
fn parameter<'a>(spec: &'a Value, path: &str, method: &str, name: &str) -> &'a Value {
    spec["paths"][path][method]["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("{method} {path} has no parameter {name}"))
}

async fn created(res: reqwest::Response, what: &str) -> Value {
    assert_eq!(res.status(), 201, "create {what}");
    res.json().await.unwrap()
}

/// An employer with one vacancy and a client referred to it: (vacancy id).
async fn vacancy_with_a_referral(app: &TestApp) -> String {
    let caller = caseworker();
    let employer =
        created(app.post("/api/v1/employers", &caller, &json!({"name": "Bäckerei Sommer GmbH"})).await, "employer")
            .await;
    let vacancy = created(
        app.post(
            &format!("/api/v1/employers/{}/vacancies", employer["id"].as_str().unwrap()),
            &caller,
            &json!({"kind": "job", "title": "Verkäufer:in", "occupation_code": "62102"}),
        )
        .await,
        "vacancy",
    )
    .await;
    let client = created(
        app.post("/api/v1/clients", &caller, &json!({"first_name": "Mara", "last_name": "Beispiel"})).await,
        "client",
    )
    .await;
    created(
        app.post("/api/v1/referrals", &caller, &json!({"client_id": client["id"], "vacancy_id": vacancy["id"]})).await,
        "referral",
    )
    .await;
    vacancy["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn deleting_a_vacancy_that_has_referrals_is_409_in_use_not_500() {
    // Arrange: SQLite enforces `ON DELETE RESTRICT` through a trigger, whose
    // error code (1811) sea-orm did not recognise as a foreign-key violation.
    let app = spawn_app().await;
    let vacancy_id = vacancy_with_a_referral(&app).await;
    // Act
    let res = app.delete(&format!("/api/v1/vacancies/{vacancy_id}"), &caseworker()).await;
    // Assert
    assert_problem(res, 409, "in-use").await;
}

#[tokio::test]
async fn deleting_a_provider_that_has_measures_is_409_in_use_not_500() {
    // Arrange
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Leipzig-Ost gGmbH").await;
    let measure = json!({"provider_id": provider["id"], "title": "Bewerbungswerkstatt", "kind": "application_training",
        "funding": "sgb3_45", "capacity": 12});
    created(app.post("/api/v1/measures", &caseworker(), &measure).await, "measure").await;
    // Act
    let res = app.delete(&format!("/api/v1/providers/{}", provider["id"].as_str().unwrap()), &caseworker()).await;
    // Assert
    assert_problem(res, 409, "in-use").await;
}

#[tokio::test]
async fn documented_enums_are_the_codes_on_the_wire() {
    // Arrange: the schemas listed the Rust variant names (`LongTermUnemployed`)
    // while every body carried the codes (`long_term_unemployed`).
    let app = spawn_app().await;
    let spec = served_spec(&app).await;
    let lists = [
        ("provider_kinds", "ProviderKind"),
        ("target_groups", "TargetGroup"),
        ("education_levels", "EducationLevel"),
        ("consultation_topics", "ConsultationTopic"),
        ("employer_needs", "EmployerNeed"),
        ("settlement_statuses", "SettlementStatus"),
        ("vacancy_kinds", "VacancyKind"),
        ("measure_kinds", "MeasureKind"),
        ("funding_types", "FundingType"),
        ("referral_statuses", "ReferralStatus"),
        ("referral_actions", "ReferralAction"),
        ("reason_codes", "ReasonCode"),
        ("outcomes", "Outcome"),
    ];
    for (list, schema) in lists {
        // Act
        let body: Value = app.get(&format!("/api/v1/code-lists/{list}"), &caseworker()).await.json().await.unwrap();
        // Assert
        let codes: Vec<&Value> = body["items"].as_array().unwrap().iter().map(|i| &i["code"]).collect();
        let documented: Vec<&Value> =
            spec["components"]["schemas"][schema]["enum"].as_array().unwrap().iter().collect();
        assert_eq!(documented, codes, "{schema} vs code list {list}");
    }
}

#[tokio::test]
async fn get_on_the_batch_path_is_405_with_allow_not_a_bad_uuid() {
    // Arrange: `GET /referrals/batch` was routed to `GET /referrals/{id}`.
    let app = spawn_app().await;
    // Act
    let res = app.get("/api/v1/referrals/batch", &caseworker()).await;
    // Assert
    assert_eq!(res.headers().get("allow").and_then(|v| v.to_str().ok()), Some("POST"));
    assert_problem(res, 405, "method-not-allowed").await;
}

#[tokio::test]
async fn a_malformed_id_is_still_a_400() {
    // Arrange
    let app = spawn_app().await;
    // Act
    let res = app.get("/api/v1/referrals/not-a-uuid", &caseworker()).await;
    // Assert
    assert_problem(res, 400, "bad-request").await;
}

#[tokio::test]
async fn a_full_employer_matches_exactly_one_schema_of_employer_record() {
    // Arrange: `EmployerRecord` is a `oneOf`; a full record also matched the
    // open-ended public schema, so every employer response broke the `oneOf`.
    let app = spawn_app().await;
    // Act
    let spec = served_spec(&app).await;
    // Assert
    assert_eq!(spec["components"]["schemas"]["EmployerPublicDto"]["additionalProperties"], false);
}

#[tokio::test]
async fn only_the_referral_list_documents_sort_by_updated_at() {
    // Arrange: the shared paging parameters offered `sort=updated_at` on every
    // list; all but referrals refuse it with `400`.
    let app = spawn_app().await;
    let spec = served_spec(&app).await;
    // Act
    let employers = app.get("/api/v1/employers?sort=updated_at", &caseworker()).await;
    let referrals = app.get("/api/v1/referrals?sort=updated_at", &caseworker()).await;
    // Assert
    assert_problem(employers, 400, "bad-request").await;
    assert_eq!(referrals.status(), 200);
    let employer_sort = parameter(&spec, "/api/v1/employers", "get", "sort")["schema"]["pattern"].as_str().unwrap();
    let referral_sort = parameter(&spec, "/api/v1/referrals", "get", "sort")["schema"]["pattern"].as_str().unwrap();
    assert!(!employer_sort.contains("updated_at"), "{employer_sort}");
    assert!(referral_sort.contains("updated_at"), "{referral_sort}");
}

#[tokio::test]
async fn employer_counselling_documents_and_accepts_the_employer_topics() {
    // Arrange: the employer endpoint documented the client topics (its
    // example used `application_support`) and refused them with `422`.
    let app = spawn_app().await;
    let spec = served_spec(&app).await;
    let employer = created(
        app.post("/api/v1/employers", &caseworker(), &json!({"name": "Malerbetrieb Schönefeld"})).await,
        "employer",
    )
    .await;
    let body_ref = spec["paths"]["/api/v1/employers/{id}/consultations"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"]["$ref"]
        .as_str()
        .unwrap()
        .to_owned();
    let schema_name = body_ref.rsplit('/').next().unwrap();
    let schema = &spec["components"]["schemas"][schema_name];
    // Act
    let res = app
        .post(
            &format!("/api/v1/employers/{}/consultations", employer["id"].as_str().unwrap()),
            &caseworker(),
            &schema["example"],
        )
        .await;
    // Assert
    assert_eq!(schema["properties"]["topic"]["$ref"], "#/components/schemas/EmployerConsultationTopic");
    assert_eq!(res.status(), 201, "the documented example is accepted");
}

#[tokio::test]
async fn code_filters_document_their_code_list() {
    // Arrange: filters were documented as free strings, so `?status=` (blank)
    // or any text looked valid and got a `400`.
    let app = spawn_app().await;
    // Act
    let spec = served_spec(&app).await;
    // Assert
    let cases = [
        ("/api/v1/clients", "status", "ClientStatus"),
        ("/api/v1/providers", "kind", "ProviderKind"),
        ("/api/v1/employers", "settlement_status", "SettlementStatus"),
        ("/api/v1/vacancies", "kind", "VacancyKind"),
        ("/api/v1/measures", "funding", "FundingType"),
        ("/api/v1/referrals", "status", "ReferralStatus"),
    ];
    for (path, name, schema) in cases {
        assert_eq!(
            parameter(&spec, path, "get", name)["schema"]["$ref"],
            format!("#/components/schemas/{schema}"),
            "{path} {name}"
        );
    }
}

#[tokio::test]
async fn required_fields_are_documented_as_not_nullable_and_bounds_as_bounds() {
    // Arrange: `{"name": null}` and `{"hours_per_week": 0}` matched the
    // document and were refused with `422`.
    let app = spawn_app().await;
    // Act
    let spec = served_spec(&app).await;
    // Assert
    let schemas = &spec["components"]["schemas"];
    assert_eq!(schemas["ProviderInput"]["properties"]["name"]["type"], "string");
    assert_eq!(schemas["ProviderInput"]["properties"]["kind"]["$ref"], "#/components/schemas/ProviderKind");
    assert_eq!(schemas["ClientInput"]["properties"]["first_name"]["type"], "string");
    assert_eq!(schemas["ClientInput"]["properties"]["hours_per_week"]["minimum"], 1);
    assert_eq!(schemas["MeasureInput"]["properties"]["capacity"]["type"], "integer");
    assert_eq!(schemas["VacancyInput"]["properties"]["positions"]["minimum"], 1);
    assert_eq!(schemas["BatchInput"]["properties"]["items"]["minItems"], 1);
}

#[tokio::test]
async fn idempotency_key_documents_what_the_service_accepts() {
    // Arrange
    let app = spawn_app().await;
    let spec = served_spec(&app).await;
    // Act
    let refused = app
        .request(Method::POST, "/api/v1/providers", Some(&caseworker()))
        .header("Idempotency-Key", "schlüssel")
        .json(&provider_body("Bildungswerk Ost"))
        .send()
        .await
        .unwrap();
    // Assert
    assert_problem(refused, 400, "bad-request").await;
    let key = &parameter(&spec, "/api/v1/providers", "post", "Idempotency-Key")["schema"];
    assert_eq!(key["maxLength"], 255);
    assert_eq!(key["pattern"], "^[\\x20-\\x7e]+$");
}

/// Every `$ref` in `value` (a JSON pointer into the same document).
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r);
            }
            map.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn every_reference_in_the_document_resolves() {
    // Arrange: the statistics `from`/`to` parameters named a schema that was
    // never registered, so clients (and schemathesis) skipped them.
    let app = spawn_app().await;
    let spec = served_spec(&app).await;
    let mut all = Vec::new();
    // Act
    refs(&spec, &mut all);
    // Assert
    let dangling: Vec<&&str> =
        all.iter().filter(|r| r.strip_prefix('#').is_none_or(|p| spec.pointer(p).is_none())).collect();
    assert!(dangling.is_empty(), "dangling references: {dangling:?}");
}

// --- Found on PostgreSQL, which refuses what SQLite silently stores ---

#[tokio::test]
async fn a_date_before_year_one_is_refused_not_a_500() {
    // Arrange: chrono reads `-100000-01-01`; PostgreSQL's date type cannot hold it.
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Leipzig-Ost gGmbH").await;
    let measure = json!({"provider_id": provider["id"], "title": "Bewerbungswerkstatt", "kind": "application_training",
        "funding": "sgb3_45", "capacity": 12, "start_date": "-100000-01-01"});
    // Act
    let create = app.post("/api/v1/measures", &caseworker(), &measure).await;
    let filter = app.get("/api/v1/measures?starts_after=-100000-01-01", &caseworker()).await;
    let statistics = app.get("/api/v1/statistics/demand?from=-100000-01-01", &caseworker()).await;
    // Assert
    let body = assert_problem(create, 422, "validation-failed").await;
    assert_eq!(body["errors"][0]["field"], "start_date");
    assert_problem(filter, 400, "bad-request").await;
    assert_problem(statistics, 400, "bad-request").await;
}

#[tokio::test]
async fn a_code_list_longer_than_its_column_is_422_not_500() {
    // Arrange: languages and occupation codes are stored comma-joined in
    // VARCHAR(200) / VARCHAR(400) columns.
    let app = spawn_app().await;
    let codes: Vec<String> = (0..100).map(|i| format!("{:05}", 10_000 + i)).collect();
    let client = json!({"first_name": "Mara", "last_name": "Beispiel", "occupation_codes": codes});
    // Act
    let res = app.post("/api/v1/clients", &caseworker(), &client).await;
    // Assert
    let body = assert_problem(res, 422, "validation-failed").await;
    assert_eq!(body["errors"][0]["field"], "occupation_codes");
}

#[tokio::test]
async fn a_token_whose_sub_or_org_does_not_fit_the_audit_log_is_401_not_500() {
    // Arrange: `sub` and `org` are stored with every audited action
    // (VARCHAR(200) columns).
    let app = spawn_app().await;
    let mut long_sub = caseworker();
    long_sub.sub = "s".repeat(201);
    let long_org = Caller::new("jobcenter").with_org("o".repeat(201));
    // Act
    let by_sub = app.get("/api/v1/clients", &long_sub).await;
    let by_org = app.post("/api/v1/clients", &long_org, &json!({"first_name": "Mara", "last_name": "Beispiel"})).await;
    // Assert
    assert_problem(by_sub, 401, "unauthorized").await;
    assert_problem(by_org, 401, "unauthorized").await;
}

// --- Found fuzzing webhooks, funding, statistics, matches, consultations ---

#[tokio::test]
async fn a_webhook_org_longer_than_its_column_is_422_not_500() {
    // Arrange: an admin may subscribe for any organisation; `org` is stored
    // in a VARCHAR(200) column, which PostgreSQL enforces.
    let app = spawn_app().await;
    let subscription =
        json!({"url": "https://93.184.215.14/hooks", "events": ["measure.changed"], "org": "o".repeat(201)});
    // Act
    let res = app.post("/api/v1/webhooks", &admin(), &subscription).await;
    // Assert
    let body = assert_problem(res, 422, "validation-failed").await;
    assert_eq!(body["errors"][0]["field"], "org");
}

#[tokio::test]
async fn funding_and_statistics_filters_document_what_they_accept() {
    // Arrange: `?status=`, `?eligible_applicant=` and `?group_by=district`
    // matched free-string parameters and were refused with `400`.
    let app = spawn_app().await;
    // Act
    let spec = served_spec(&app).await;
    // Assert
    let cases = [
        ("/api/v1/funding-applications", "status", "FundingApplicationStatus"),
        ("/api/v1/funding-programmes", "eligible_applicant", "ApplicantKind"),
        ("/api/v1/funding-programmes", "target_group", "TargetGroup"),
    ];
    for (path, name, schema) in cases {
        assert_eq!(
            parameter(&spec, path, "get", name)["schema"]["$ref"],
            format!("#/components/schemas/{schema}"),
            "{path} {name}"
        );
    }
    let group_by = &parameter(&spec, "/api/v1/statistics/funding", "get", "group_by")["schema"];
    assert_eq!(group_by["pattern"], "^(programme|funder|applicant_kind)$");
}

#[tokio::test]
async fn funding_and_webhook_inputs_document_required_fields_and_bounds() {
    // Arrange: `{"name": null}`, an over-long name or a negative amount
    // matched the document and were refused with `422`.
    let app = spawn_app().await;
    // Act
    let spec = served_spec(&app).await;
    // Assert
    let schemas = &spec["components"]["schemas"];
    let programme = &schemas["ProgrammeInput"]["properties"];
    assert_eq!(programme["name"]["type"], "string");
    assert_eq!(programme["name"]["maxLength"], 300);
    assert_eq!(programme["funder"]["type"], "string");
    assert_eq!(programme["max_amount_eur"]["minimum"], 0);
    let application = &schemas["ApplicationInput"]["properties"];
    assert_eq!(application["amount_requested_eur"]["type"], "number");
    assert_eq!(application["amount_requested_eur"]["maximum"], 1_000_000_000);
    let webhook = &schemas["WebhookInput"]["properties"];
    assert_eq!(webhook["url"]["type"], "string");
    assert_eq!(webhook["org"]["maxLength"], 200);
}

#[tokio::test]
async fn a_large_amount_with_two_decimals_is_accepted() {
    // Arrange: above ~10^8 euros, `v * 100` is off by more than the old
    // absolute tolerance, so `554948096.7` was "more than two decimals".
    let app = spawn_app().await;
    let programme = json!({"name": "Strukturwandel Ost", "funder": "Bund", "max_amount_eur": 554_948_096.7});
    // Act
    let res = app.post("/api/v1/funding-programmes", &caseworker(), &programme).await;
    // Assert
    let body = created(res, "programme").await;
    assert_eq!(body["max_amount_eur"], 554_948_096.7);
}

#[tokio::test]
async fn empty_held_on_on_client_and_employer_consultations_is_422_not_500() {
    // Arrange: a blank date was taken for "absent" after `required` had
    // passed it, so the handler met a required field without a value.
    let app = spawn_app().await;
    let client = app.create_client(&caseworker(), &client_body()).await;
    let employer = app.create_employer("Bäckerei Sommer GmbH").await;
    let paths = [
        (format!("/api/v1/clients/{}/consultations", id_of(&client)), "application_support"),
        (format!("/api/v1/employers/{}/consultations", id_of(&employer)), "apprenticeship_training"),
    ];
    for (path, topic) in paths {
        for held_on in ["", "  "] {
            // Act
            let res = app.post(&path, &caseworker(), &json!({"held_on": held_on, "topic": topic})).await;
            // Assert
            let problem = assert_problem(res, 422, "validation-failed").await;
            assert_eq!(error_fields(&problem), ["held_on"], "{path} {held_on:?}: {problem}");
        }
        let res =
            app.post(&path, &caseworker(), &json!({"held_on": "2026-01-20", "topic": topic, "follow_up_on": ""})).await;
        let problem = assert_problem(res, 422, "validation-failed").await;
        assert_eq!(error_fields(&problem), ["follow_up_on"]);
    }
}

#[tokio::test]
async fn empty_query_values_are_400_naming_the_parameter() {
    // Arrange: `?to=` and friends were read as "absent" although the
    // document declares a format (or `minLength: 1`) the empty value breaks.
    let app = spawn_app().await;
    let spec = served_spec(&app).await;
    let cases = [
        ("/api/v1/statistics/demand", "to"),
        ("/api/v1/statistics/outcomes", "from"),
        ("/api/v1/clients", "limit"),
        ("/api/v1/clients", "cursor"),
        ("/api/v1/clients", "district"),
        ("/api/v1/clients", "q"),
        ("/api/v1/referrals", "updated_after"),
        ("/api/v1/referrals", "external_id"),
        ("/api/v1/measures", "starts_after"),
        ("/api/v1/providers", "azav_certified"),
        ("/api/v1/audit-events", "actor"),
    ];
    for (path, name) in cases {
        // Act
        let res = app.get(&format!("{path}?{name}="), &admin()).await;
        // Assert
        let problem = assert_problem(res, 400, "bad-request").await;
        assert_eq!(error_fields(&problem), [name], "{path}?{name}=: {problem}");
        let schema = &parameter(&spec, path, "get", name)["schema"];
        let declared_non_empty = schema.get("format").is_some()
            || schema.get("$ref").is_some()
            || schema.get("anyOf").is_some()
            || schema.get("pattern").is_some()
            || schema["minLength"] == 1
            || matches!(schema["type"].as_str(), Some("integer" | "boolean"));
        assert!(declared_non_empty, "{path} declares {name} as {schema}, which allows an empty value");
    }
}

#[tokio::test]
async fn pattern_and_enum_parameters_are_enforced_exactly_as_declared() {
    // Arrange: values outside the declared `pattern`/`enum` were accepted.
    let app = spawn_app().await;
    let spec = served_spec(&app).await;
    let client = app.create_client(&caseworker(), &client_body()).await;
    let matches = format!("/api/v1/clients/{}/matches", id_of(&client));
    let cases = [
        ("/api/v1/providers", "/api/v1/providers", "kind", "nonsense"),
        ("/api/v1/measures", "/api/v1/measures", "occupation_code", "12a"),
        ("/api/v1/vacancies", "/api/v1/vacancies", "occupation_code", "123456"),
        ("/api/v1/statistics/demand", "/api/v1/statistics/demand", "group_by", "district,,measure_kind"),
        ("/api/v1/statistics/outcomes", "/api/v1/statistics/outcomes", "group_by", "district"),
        ("/api/v1/statistics/funding", "/api/v1/statistics/funding", "group_by", "year"),
        ("/api/v1/clients/{id}/matches", matches.as_str(), "kind", "both"),
        ("/api/v1/referrals", "/api/v1/referrals", "sort", "name"),
        ("/api/v1/referrals", "/api/v1/referrals", "client_id", "0193a5b07c1e7d2a9f3b2c4d5e6f7a8b"),
        ("/api/v1/clients", "/api/v1/clients", "limit", "201"),
    ];
    for (template, path, name, bad) in cases {
        let declared = &parameter(&spec, template, "get", name)["schema"];
        // Act
        let res = app.get(&format!("{path}?{name}={bad}"), &admin()).await;
        // Assert
        let problem = assert_problem(res, 400, "bad-request").await;
        assert_eq!(error_fields(&problem), [name], "{path}?{name}={bad} (declared {declared}): {problem}");
    }
    // The other way round: what the document declares is accepted.
    for query in ["kind=measure", "kind=vacancy"] {
        let res = app.get(&format!("{matches}?{query}"), &admin()).await;
        assert_eq!(res.status(), 200, "{query}");
    }
    let res = app.get("/api/v1/statistics/demand?group_by=district,measure_kind", &admin()).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn employer_sector_breaking_the_declared_pattern_is_422_not_stored_as_null() {
    // Arrange: a blank or padded sector was trimmed to nothing and stored as
    // `null` with a `201`.
    let app = spawn_app().await;
    for bad in ["", " ", " 47.11", "47..1", "47.111"] {
        // Act
        let res =
            app.post("/api/v1/employers", &caseworker(), &with(employer_body("Sommer"), json!({"sector": bad}))).await;
        // Assert
        let problem = assert_problem(res, 422, "validation-failed").await;
        assert_eq!(error_fields(&problem), ["sector"], "{bad:?}");
    }
    let ok = app.create_employer("Sommer").await;
    assert_eq!(ok["sector"], "10.71");
}

#[tokio::test]
async fn patch_with_empty_if_match_and_a_non_object_body_is_400_not_412() {
    // Arrange: the precondition was weighed before the body was looked at.
    let app = spawn_app().await;
    let employer = app.create_employer("Sommer").await;
    let path = format!("/api/v1/employers/{}", id_of(&employer));
    for body in [json!([1, 2]), json!("name"), json!(null)] {
        // Act
        let res = app
            .request(Method::PATCH, &path, Some(&caseworker()))
            .header("content-type", "application/merge-patch+json")
            .header("if-match", "")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        // Assert
        // Both the header and the body are malformed: either is named.
        let problem = assert_problem(res, 400, "bad-request").await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains("merge patch") || detail.contains("If-Match"), "{problem}");
    }
}

#[tokio::test]
async fn patch_with_an_empty_if_match_and_a_valid_body_is_400_not_412() {
    // Arrange: an empty header was weighed as a stale version (412), so a
    // fuzzer's schema-breaking body behind it was never looked at.
    let app = spawn_app().await;
    let employer = app.create_employer("Sommer").await;
    let path = format!("/api/v1/employers/{}", id_of(&employer));
    // Act
    let res = app
        .request(Method::PATCH, &path, Some(&caseworker()))
        .header("content-type", "application/merge-patch+json")
        .header("if-match", "")
        .body(json!({"employee_count": 13}).to_string())
        .send()
        .await
        .unwrap();
    // Assert
    let problem = assert_problem(res, 400, "bad-request").await;
    assert!(problem["detail"].as_str().unwrap().contains("If-Match"), "{problem}");
    let spec = served_spec(&app).await;
    assert_eq!(parameter(&spec, "/api/v1/employers/{id}", "patch", "If-Match")["schema"]["minLength"], 1);
}

#[tokio::test]
async fn merge_patch_naming_an_unknown_member_is_400_even_with_null() {
    // Arrange: `{"": null}` was dropped by the merge and answered 200.
    let app = spawn_app().await;
    let employer = app.create_employer("Sommer").await;
    let path = format!("/api/v1/employers/{}", id_of(&employer));
    for body in [json!({"": null}), json!({"nickname": "x", "employee_count": 13})] {
        // Act
        let res = app
            .request(Method::PATCH, &path, Some(&caseworker()))
            .header("content-type", "application/merge-patch+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        // Assert
        let problem = assert_problem(res, 400, "bad-request").await;
        assert_eq!(problem["errors"][0]["message"], "unknown field", "{problem}");
    }
    let unchanged: Value = app.get(&path, &caseworker()).await.json().await.unwrap();
    assert_eq!(unchanged["employee_count"], 12);
}

#[tokio::test]
async fn blank_phone_is_422_not_stored_as_absent() {
    // Arrange: the declared pattern needs five digits; "" was read as absent.
    let app = spawn_app().await;
    let mut body = employer_body("Sommer");
    body["contact"]["phone"] = json!("");
    // Act
    let res = app.post("/api/v1/employers", &caseworker(), &body).await;
    // Assert
    let problem = assert_problem(res, 422, "validation-failed").await;
    assert_eq!(error_fields(&problem), ["contact.phone"]);
}

#[tokio::test]
async fn idempotent_creates_declare_the_410_of_a_replay_after_erasure() {
    // Arrange: a replay of a create whose client was erased answers 410,
    // which no create declared.
    let app = spawn_app().await;
    let spec = served_spec(&app).await;
    // Act
    let creates = ["/api/v1/clients", "/api/v1/referrals", "/api/v1/referrals/batch", "/api/v1/employers"];
    // Assert
    for path in creates {
        assert!(spec["paths"][path]["post"]["responses"]["410"].is_object(), "{path}");
    }
}

#[tokio::test]
async fn batch_with_an_item_whose_client_id_is_not_a_uuid_is_400_naming_the_item() {
    // Arrange: the document declares `client_id` a UUID; such items were
    // answered one by one in a `207`.
    let app = spawn_app().await;
    let spec = served_spec(&app).await;
    assert_eq!(spec["components"]["schemas"]["ReferralInput"]["properties"]["client_id"]["format"], "uuid");
    let client = app.create_client(&caseworker(), &client_body()).await;
    let employer = app.create_employer("Sommer").await;
    let vacancy = app.create_vacancy(&id_of(&employer), &vacancy_body("Verkäufer:in", "62102")).await;
    let good = json!({"client_id": id_of(&client), "vacancy_id": id_of(&vacancy)});
    let items = json!([good, good, {"client_id": 17, "vacancy_id": id_of(&vacancy)},
        {"client_id": "not-a-uuid", "vacancy_id": id_of(&vacancy)}, {"vacancy_id": id_of(&vacancy)}]);
    // Act
    let res = app.post("/api/v1/referrals/batch", &admin(), &json!({"items": items})).await;
    // Assert
    let problem = assert_problem(res, 400, "bad-request").await;
    assert_eq!(error_fields(&problem), ["items[2].client_id", "items[3].client_id", "items[4].client_id"]);
    let list: Value = app.get("/api/v1/referrals", &admin()).await.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "nothing of the refused batch was created");
}

#[tokio::test]
async fn stale_if_match_with_an_invalid_patch_is_422_not_412() {
    // Arrange: the version was weighed before the change was validated, so
    // a schema-breaking patch with an old ETag answered 412.
    let app = spawn_app().await;
    let employer = app.create_employer("Sommer").await;
    let path = format!("/api/v1/employers/{}", id_of(&employer));
    // Act
    let res = app
        .request(Method::PATCH, &path, Some(&caseworker()))
        .header("content-type", "application/merge-patch+json")
        .header("if-match", "\"99\"")
        .body(json!({"settlement_status": "AAA"}).to_string())
        .send()
        .await
        .unwrap();
    // Assert
    let problem = assert_problem(res, 422, "validation-failed").await;
    assert_eq!(error_fields(&problem), ["settlement_status"]);
}
