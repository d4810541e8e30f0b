//! Erasure is complete (GDPR Art. 17, SPEC §5; issues 14 item 4 and 16
//! item 4): every column of the schema is classified here, so a new table or
//! column fails until somebody decides whether erasure must destroy it; an
//! erasure then leaves no classified-personal value filled in any row that
//! belongs to the client, no replay that shows it, and — on SQLite — none of
//! its bytes in the database or WAL file.
use reqwest::Method;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value as DbValue};
use serde_json::{Value, json};

use crate::{
    helpers::*,
    referral_fixtures::{self as fx, Target},
};

/// What erasure does to a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// About the person: NULL / empty in the client's rows after erasure.
    Erased,
    /// Stays in the client's rows, because statistics or the existence of a
    /// referral need it and it identifies nobody once the rest is gone
    /// (district, status, codes, amounts, timestamps, link ids).
    Kept,
    /// Not about a client at all (organisations, catalogue, machinery, staff `sub`s).
    NotPersonal,
}
use Class::*;

/// How the rows of a table that belong to client `$c` are found; `None`
/// for tables that hold no row about a client.
enum Link {
    /// A condition with one placeholder `{p}` bound to the client id.
    Id(&'static str),
    /// A condition with one placeholder `{p}` bound to `%<client id>%`.
    Mentions(&'static str),
}

/// A table, how its rows of a client are found, and its classified columns.
type Table = (&'static str, Option<Link>, &'static [(&'static str, Class)]);

/// Every table and column of the schema. Add new ones here — with the
/// erasure code that destroys them, if they are `Erased`.
const SCHEMA: &[Table] = &[
    (
        "clients",
        Some(Link::Id("id = {p}")),
        &[
            ("id", Kept),
            ("external_id", Erased),
            ("created_by_org", Kept),
            ("first_name", Erased),
            ("last_name", Erased),
            ("date_of_birth", Erased),
            ("email", Erased),
            ("phone", Erased),
            ("address", Erased),
            ("district", Kept),
            // Kept without `disability` (health data); checked separately.
            ("target_groups", Kept),
            ("education_level", Erased),
            ("occupation_codes", Erased),
            ("languages", Erased),
            ("available_from", Erased),
            ("hours_per_week", Erased),
            ("consent", Erased),
            ("status", Kept),
            // The statistics record key: random, never served, and kept so
            // the perturbed statistics do not change with an erasure.
            ("record_key", Kept),
            ("erased_at", Kept),
            ("created_at", Kept),
            ("updated_at", Kept),
            ("version", Kept),
        ],
    ),
    (
        "consultations",
        Some(Link::Id("client_id = {p}")),
        &[
            ("id", Kept),
            ("client_id", Kept),
            ("employer_id", NotPersonal),
            ("held_on", Kept),
            ("topic", Kept),
            ("duration_minutes", Kept),
            ("notes", Erased),
            ("follow_up_on", Kept),
            ("counsellor", NotPersonal),
            ("created_at", Kept),
            ("updated_at", Kept),
            ("version", Kept),
        ],
    ),
    (
        "referrals",
        Some(Link::Id("client_id = {p}")),
        &[
            ("id", Kept),
            ("client_id", Kept),
            ("measure_id", Kept),
            ("vacancy_id", Kept),
            // The referring org's number of the referral (not of the person):
            // partners find and poll their referral by it.
            ("external_id", Kept),
            ("referring_org", Kept),
            ("referred_by", NotPersonal),
            ("note", Erased),
            ("status", Kept),
            ("reason_code", Kept),
            ("reason_note", Erased),
            ("rejected_by", Kept),
            ("outcome", Kept),
            ("outcome_on", Kept),
            ("created_at", Kept),
            ("updated_at", Kept),
            ("version", Kept),
            // From the referral's id, for the statistics' record keys; never served.
            ("key_factor", Kept),
        ],
    ),
    (
        "referral_events",
        Some(Link::Id("referral_id IN (SELECT id FROM referrals WHERE client_id = {p})")),
        &[
            ("id", Kept),
            ("referral_id", Kept),
            ("from_status", Kept),
            ("to_status", Kept),
            ("action", Kept),
            ("reason_code", Kept),
            ("reason_note", Erased),
            ("actor", NotPersonal),
            ("actor_org", NotPersonal),
            ("at", Kept),
        ],
    ),
    (
        "funding_applications",
        Some(Link::Id("applicant_kind = 'client' AND applicant_id = {p}")),
        &[
            ("id", Kept),
            ("programme_id", Kept),
            ("applicant_kind", Kept),
            ("applicant_id", Kept),
            ("amount_requested_cents", Kept),
            ("amount_granted_cents", Kept),
            ("status", Kept),
            ("submitted_on", Kept),
            ("decided_on", Kept),
            ("note", Erased),
            ("created_at", Kept),
            ("updated_at", Kept),
            ("version", Kept),
        ],
    ),
    (
        // Stored answers of creates: any that mentions the client is a copy of its data.
        "idempotency_keys",
        Some(Link::Mentions("response_body LIKE {p}")),
        &[
            ("scope", NotPersonal),
            ("key", NotPersonal),
            ("fingerprint", NotPersonal),
            ("state", NotPersonal),
            ("status_code", NotPersonal),
            ("response_body", Erased),
            ("location", NotPersonal),
            ("created_at", NotPersonal),
            ("holder", NotPersonal),
            ("lease_until", NotPersonal),
        ],
    ),
    (
        // Who read or changed which client when: ids and staff, never values.
        "audit_events",
        None,
        &[
            ("id", Kept),
            ("at", Kept),
            ("actor", NotPersonal),
            ("actor_org", NotPersonal),
            ("action", Kept),
            ("resource", Kept),
            ("resource_id", Kept),
            ("client_id", Kept),
            ("request_id", NotPersonal),
            ("client_request_id", NotPersonal),
        ],
    ),
    (
        "employers",
        None,
        &[
            ("id", NotPersonal),
            ("name", NotPersonal),
            ("legal_form", NotPersonal),
            ("sector", NotPersonal),
            ("address", NotPersonal),
            ("district", NotPersonal),
            ("employee_count", NotPersonal),
            ("settlement_status", NotPersonal),
            ("is_training_company", NotPersonal),
            ("needs", NotPersonal),
            ("contact", NotPersonal),
            ("created_at", NotPersonal),
            ("updated_at", NotPersonal),
            ("version", NotPersonal),
        ],
    ),
    (
        "providers",
        None,
        &[
            ("id", NotPersonal),
            ("name", NotPersonal),
            ("kind", NotPersonal),
            ("azav_certified", NotPersonal),
            ("address", NotPersonal),
            ("district", NotPersonal),
            ("contact", NotPersonal),
            ("website", NotPersonal),
            ("created_at", NotPersonal),
            ("updated_at", NotPersonal),
            ("version", NotPersonal),
        ],
    ),
    (
        "measures",
        None,
        &[
            ("id", NotPersonal),
            ("provider_id", NotPersonal),
            ("title", NotPersonal),
            ("description", NotPersonal),
            ("kind", NotPersonal),
            ("measure_number", NotPersonal),
            ("funding", NotPersonal),
            ("target_groups", NotPersonal),
            ("occupation_codes", NotPersonal),
            ("district", NotPersonal),
            ("address", NotPersonal),
            ("start_date", NotPersonal),
            ("end_date", NotPersonal),
            ("hours_per_week", NotPersonal),
            ("capacity", NotPersonal),
            ("seats_taken", NotPersonal),
            ("waitlisted", NotPersonal),
            ("min_age", NotPersonal),
            ("max_age", NotPersonal),
            ("status", NotPersonal),
            ("created_at", NotPersonal),
            ("updated_at", NotPersonal),
            ("version", NotPersonal),
        ],
    ),
    (
        "vacancies",
        None,
        &[
            ("id", NotPersonal),
            ("employer_id", NotPersonal),
            ("kind", NotPersonal),
            ("title", NotPersonal),
            ("occupation_code", NotPersonal),
            ("description", NotPersonal),
            ("hours_per_week", NotPersonal),
            ("start_date", NotPersonal),
            ("positions", NotPersonal),
            ("positions_filled", NotPersonal),
            ("min_education_level", NotPersonal),
            ("languages", NotPersonal),
            ("district", NotPersonal),
            ("status", NotPersonal),
            ("created_at", NotPersonal),
            ("updated_at", NotPersonal),
            ("version", NotPersonal),
        ],
    ),
    (
        "funding_programmes",
        None,
        &[
            ("id", NotPersonal),
            ("name", NotPersonal),
            ("funder", NotPersonal),
            ("legal_basis", NotPersonal),
            ("target_groups", NotPersonal),
            ("eligible_applicants", NotPersonal),
            ("max_amount_cents", NotPersonal),
            ("deadline", NotPersonal),
            ("url", NotPersonal),
            ("created_at", NotPersonal),
            ("updated_at", NotPersonal),
            ("version", NotPersonal),
        ],
    ),
    (
        "webhooks",
        None,
        &[
            ("id", NotPersonal),
            ("org", NotPersonal),
            ("owner_kind", NotPersonal),
            ("url", NotPersonal),
            ("events", NotPersonal),
            ("secret", NotPersonal),
            ("previous_secret", NotPersonal),
            ("previous_secret_until", NotPersonal),
            ("active", NotPersonal),
            ("created_by", NotPersonal),
            ("created_at", NotPersonal),
            ("updated_at", NotPersonal),
            ("version", NotPersonal),
        ],
    ),
    (
        // Payloads carry ids, statuses and links only (SPEC §3 Webhooks).
        "webhook_deliveries",
        None,
        &[
            ("id", NotPersonal),
            ("webhook_id", NotPersonal),
            ("event_type", NotPersonal),
            ("event_id", NotPersonal),
            ("payload", NotPersonal),
            ("status", NotPersonal),
            ("attempts", NotPersonal),
            ("next_attempt_at", NotPersonal),
            ("locked_until", NotPersonal),
            ("last_status", NotPersonal),
            ("last_error", NotPersonal),
            ("created_at", NotPersonal),
            ("delivered_at", NotPersonal),
        ],
    ),
    (
        // The change feed: ids, types, statuses, timestamps and audience tags only.
        "change_events",
        Some(Link::Id("resource_id = {p}")),
        &[
            ("seq", NotPersonal),
            ("id", NotPersonal),
            ("event_type", Kept),
            ("resource", Kept),
            ("resource_id", Kept),
            ("status", Kept),
            ("previous_status", Kept),
            ("audience", NotPersonal),
            ("at", Kept),
            ("txid", NotPersonal),
        ],
    ),
    (
        // What each client counts for in the demand statistics: codes only.
        // The refresh after an erasure rewrites it from the anonymous stub
        // (no occupation codes, no `disability`).
        "demand_contributions",
        Some(Link::Id("client_id = {p}")),
        &[
            ("client_id", Kept),
            ("part", Kept),
            ("district", Kept),
            ("target_groups", Kept),
            ("occupation_codes", Erased),
            ("kind", Kept),
            ("flag", Kept),
            ("day", Kept),
            ("n", Kept),
            ("keys", Kept),
        ],
    ),
    (
        // Sums over cells of clients, no client ids (folded by compaction).
        "demand_cells",
        None,
        &[
            ("id", NotPersonal),
            ("part", NotPersonal),
            ("district", NotPersonal),
            ("target_groups", NotPersonal),
            ("occupation_codes", NotPersonal),
            ("kind", NotPersonal),
            ("flag", NotPersonal),
            ("day", NotPersonal),
            ("n", NotPersonal),
            ("keys", NotPersonal),
        ],
    ),
    ("demand_state", None, &[("id", NotPersonal), ("stale", NotPersonal)]),
    ("districts", None, &[("code", NotPersonal), ("label_de", NotPersonal), ("label_en", NotPersonal)]),
    ("server_keys", None, &[("name", NotPersonal), ("value", NotPersonal)]),
    ("seaql_migrations", None, &[("version", NotPersonal), ("applied_at", NotPersonal)]),
];

/// (table, column) of every column in the test database's schema.
async fn schema_columns(db: &DatabaseConnection) -> Vec<(String, String)> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT CAST(table_name AS TEXT) AS t, CAST(column_name AS TEXT) AS c FROM information_schema.columns \
             WHERE table_schema = current_schema()"
        }
        _ => {
            "SELECT m.name AS t, p.name AS c FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'"
        }
    };
    let rows = db.query_all_raw(Statement::from_string(backend, sql)).await.unwrap();
    let mut columns: Vec<(String, String)> =
        rows.iter().map(|r| (r.try_get::<String>("", "t").unwrap(), r.try_get::<String>("", "c").unwrap())).collect();
    columns.sort();
    columns
}

fn classified() -> Vec<(String, String)> {
    let mut columns: Vec<(String, String)> = SCHEMA
        .iter()
        .flat_map(|(table, _, cols)| cols.iter().map(|(c, _)| ((*table).to_owned(), (*c).to_owned())))
        .collect();
    columns.sort();
    columns
}

#[tokio::test]
async fn every_table_and_column_of_the_schema_is_classified_for_erasure() {
    // Arrange
    let app = spawn_app().await;
    let db = app.db().await;
    // Act
    let actual = schema_columns(&db).await;
    db.close().await.unwrap();
    // Assert
    let expected = classified();
    let unclassified: Vec<_> = actual.iter().filter(|c| !expected.contains(c)).collect();
    let gone: Vec<_> = expected.iter().filter(|c| !actual.contains(c)).collect();
    assert!(
        unclassified.is_empty(),
        "columns not classified in tests/api/erasure.rs (decide whether erasure destroys them): {unclassified:?}"
    );
    assert!(gone.is_empty(), "classified columns that no longer exist: {gone:?}");
}

const NAME: &str = "Quirinella";
const SURNAME: &str = "Zwetschgenbaum";

/// A client with every personal field set (and the `disability` target group).
fn full_client() -> Value {
    client_body_with(json!({
        "external_id": "JC-ERASE-1",
        "first_name": NAME,
        "last_name": SURNAME,
        "target_groups": ["unemployed", "disability"],
    }))
}

/// POST with an Idempotency-Key; the answer's status and JSON.
async fn post_with_key(app: &TestApp, caller: &Caller, path: &str, key: &str, body: &Value) -> (u16, Value) {
    let res =
        app.request(Method::POST, path, Some(caller)).header("idempotency-key", key).json(body).send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Free text about the person in every place it can be written.
struct Written {
    client: String,
    /// (path, key, body) of every create made with an Idempotency-Key.
    keyed: Vec<(String, String, Value)>,
}

async fn client_with_free_text_everywhere(app: &TestApp, jc: &Caller) -> Written {
    let mut keyed = Vec::new();
    let body = full_client();
    let (status, client) = post_with_key(app, jc, "/api/v1/clients", "erase-client", &body).await;
    assert_eq!(status, 201, "{client}");
    keyed.push(("/api/v1/clients".to_owned(), "erase-client".to_owned(), body));
    let client = fx::id(&client);
    let cw = caseworker();
    app.create(
        &format!("/api/v1/clients/{client}/consultations"),
        &cw,
        &consultation_body(&format!("{NAME} {SURNAME}: Rückenleiden")),
    )
    .await;

    let provider = fx::provider(app).await;
    let measure = fx::id(&fx::measure(app, &provider.id, 5, json!({})).await);
    let body = fx::referral_body(
        &client,
        &Target::Measure(measure),
        json!({"note": format!("{SURNAME} hat Rückenleiden"), "external_id": "JC-REF-ERASE-1"}),
    );
    let (status, referral) = post_with_key(app, jc, fx::REFERRALS, "erase-referral", &body).await;
    assert_eq!(status, 201, "{referral}");
    keyed.push((fx::REFERRALS.to_owned(), "erase-referral".to_owned(), body));
    let rejection = json!({"action": "reject", "reason_code": "not_eligible", "rejected_by": "provider",
                           "reason_note": format!("{SURNAME}: ärztliches Attest fehlt")});
    let res = fx::act(app, &cw, &fx::id(&referral), &rejection).await;
    assert_eq!(res.status(), 200);

    let employer = fx::employer(app).await;
    let vacancy = fx::id(&fx::vacancy(app, &employer.id, 2, json!({})).await);
    let item =
        fx::referral_body(&client, &Target::Vacancy(vacancy), json!({"note": format!("{NAME} spricht gut Arabisch")}));
    let batch = json!({"items": [item]});
    let (status, answer) = post_with_key(app, jc, "/api/v1/referrals/batch", "erase-batch", &batch).await;
    assert_eq!(status, 207, "{answer}");
    assert_eq!(answer["results"][0]["status"], 201, "{answer}");
    keyed.push(("/api/v1/referrals/batch".to_owned(), "erase-batch".to_owned(), batch));

    let programme = app
        .create(
            "/api/v1/funding-programmes",
            &cw,
            &json!({"name": "Gründungszuschuss", "funder": "Bundesagentur für Arbeit", "eligible_applicants": ["client"]}),
        )
        .await;
    app.create(
        "/api/v1/funding-applications",
        &cw,
        &json!({"programme_id": fx::id(&programme), "applicant_kind": "client", "applicant_id": client,
                "amount_requested_eur": 500, "note": format!("{SURNAME}, Schulden bei der Sparkasse")}),
    )
    .await;
    Written { client, keyed }
}

fn placeholder(backend: DbBackend) -> &'static str {
    if backend == DbBackend::Postgres { "$1" } else { "?" }
}

#[tokio::test]
async fn erasure_leaves_no_personal_column_filled_in_any_row_of_the_client() {
    // Arrange
    let app = spawn_app().await;
    let written = client_with_free_text_everywhere(&app, &Caller::new("jobcenter")).await;
    // Act
    let res = app.delete(&format!("/api/v1/clients/{}", written.client), &admin()).await;
    assert_eq!(res.status(), 204);
    // Assert: for every `Erased` column, no row of the client still holds a value.
    let db = app.db().await;
    let backend = db.get_database_backend();
    let id = uuid::Uuid::parse_str(&written.client).unwrap();
    let mut filled = Vec::new();
    for (table, link, columns) in SCHEMA {
        let Some(link) = link else { continue };
        let (condition, param): (&str, DbValue) = match link {
            Link::Id(c) => (c, id.into()),
            Link::Mentions(c) => (c, format!("%{id}%").into()),
        };
        let condition = condition.replace("{p}", placeholder(backend));
        for (column, class) in *columns {
            if *class != Erased {
                continue;
            }
            let sql = format!(
                "SELECT COUNT(*) AS n FROM {table} WHERE {condition} AND COALESCE(CAST({column} AS TEXT), '') <> ''"
            );
            let row = db
                .query_one_raw(Statement::from_sql_and_values(backend, &sql, [param.clone()]))
                .await
                .unwrap()
                .unwrap();
            if row.try_get::<i64>("", "n").unwrap() > 0 {
                filled.push(format!("{table}.{column}"));
            }
        }
    }
    assert!(filled.is_empty(), "still filled after erasure: {filled:?}");
    let sql = format!("SELECT target_groups FROM clients WHERE id = {}", placeholder(backend));
    let row = db.query_one_raw(Statement::from_sql_and_values(backend, &sql, [id.into()])).await.unwrap().unwrap();
    assert_eq!(
        row.try_get::<String>("", "target_groups").unwrap(),
        "|unemployed|",
        "disability must go, the rest stays"
    );
    db.close().await.unwrap();
}

#[tokio::test]
async fn erasure_bumps_the_version_of_the_referrals_it_changes() {
    // Arrange
    let app = spawn_app().await;
    let written = client_with_free_text_everywhere(&app, &Caller::new("jobcenter")).await;
    let page = fx::list(&app, &caseworker(), fx::REFERRALS, &[("client_id", &written.client)]).await;
    let before: Vec<(String, i64)> =
        page["items"].as_array().unwrap().iter().map(|r| (fx::id(r), r["version"].as_i64().unwrap())).collect();
    // Act
    assert_eq!(app.delete(&format!("/api/v1/clients/{}", written.client), &admin()).await.status(), 204);
    // Assert
    for (id, version) in before {
        let after = fx::referral_of(&app, &id).await;
        assert_eq!(after["version"].as_i64().unwrap(), version + 1, "{after}");
        assert_eq!(after["note"], Value::Null);
        assert_eq!(after["reason_note"], Value::Null);
    }
}

#[tokio::test]
async fn replays_after_erasure_show_neither_name_nor_notes() {
    // Arrange: the client, a referral and a batch were pushed with keys.
    let app = spawn_app().await;
    let jc = Caller::new("jobcenter");
    let written = client_with_free_text_everywhere(&app, &jc).await;
    assert_eq!(app.delete(&format!("/api/v1/clients/{}", written.client), &admin()).await.status(), 204);
    for (path, key, body) in &written.keyed {
        // Act
        let res = app
            .request(Method::POST, path, Some(&jc))
            .header("idempotency-key", key.as_str())
            .json(body)
            .send()
            .await
            .unwrap();
        // Assert
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        assert_eq!(status, 410, "replay of {path}: {text}");
        for secret in [NAME, SURNAME, "Rückenleiden", "Arabisch"] {
            assert!(!text.contains(secret), "replay of {path} shows {secret}: {text}");
        }
    }
}

#[tokio::test]
async fn the_erased_name_is_in_neither_the_sqlite_file_nor_its_wal() {
    if is_postgres() {
        return; // The file check is about SQLite's own files.
    }
    // Arrange
    let app = spawn_app().await;
    let written = client_with_free_text_everywhere(&app, &Caller::new("jobcenter")).await;
    let path = app.database_url.trim_start_matches("sqlite://").split('?').next().unwrap().to_owned();
    let before = std::fs::read(&path).unwrap_or_default();
    let wal_before = std::fs::read(format!("{path}-wal")).unwrap_or_default();
    let found = |bytes: &[u8]| bytes.windows(SURNAME.len()).any(|w| w == SURNAME.as_bytes());
    assert!(found(&before) || found(&wal_before), "the name should be on disk before the erasure");
    // Act
    assert_eq!(app.delete(&format!("/api/v1/clients/{}", written.client), &admin()).await.status(), 204);
    // Assert
    let db_file = std::fs::read(&path).unwrap();
    let wal = std::fs::read(format!("{path}-wal")).unwrap_or_default();
    assert!(!found(&db_file), "the erased name is still in {path}");
    assert!(!found(&wal), "the erased name is still in the WAL ({} bytes)", wal.len());
}
