//! Audited reads (issue 8): the audit event of a client read is committed
//! before the response leaves, a failed audit write fails the read (503), and
//! concurrent reads are each audited once. `GET /clients/{id}` group-commits
//! its audit event with those of concurrent reads (`AuditWriter`); these
//! tests hold it to the same rules as a single audited statement.
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::Value;

use crate::helpers::*;

fn new_client() -> Value {
    client_body_with(serde_json::json!({"external_id": uuid::Uuid::new_v4().to_string()}))
}

async fn execute(db: &DatabaseConnection, sql: &str) {
    db.execute_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap();
}

/// Audit rows of `action` by `actor` (every test caller has a `sub` of its own), counted on `db`.
async fn audit_rows(db: &DatabaseConnection, actor: &str, action: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) AS n FROM audit_events WHERE actor = '{actor}' AND action = '{action}'");
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// An insert into `audit_events` fails from now on (until [`allow_audit`]).
async fn refuse_audit(db: &DatabaseConnection) {
    if is_postgres() {
        execute(
            db,
            "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$",
        )
        .await;
        execute(
            db,
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
        )
        .await;
    } else {
        execute(
            db,
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit refused'); END",
        )
        .await;
    }
}

async fn allow_audit(db: &DatabaseConnection) {
    execute(db, if is_postgres() { "DROP TRIGGER refuse_audit ON audit_events" } else { "DROP TRIGGER refuse_audit" })
        .await;
}

#[tokio::test]
async fn every_200_leaves_after_its_audit_row_is_committed() {
    // Arrange: a client, and a second connection that sees only committed rows.
    let app = spawn_app().await;
    let client = app.create_client(&caseworker(), &new_client()).await;
    let id = id_of(&client);
    let observer = app.db().await;
    for _ in 0..20 {
        // Act: a read by a caller of its own (its audit rows are countable).
        let reader = caseworker();
        let res = app.get(&format!("/api/v1/clients/{id}"), &reader).await;
        // Assert: the moment the 200 is here, its audit row is committed.
        assert_eq!(res.status(), 200);
        assert_eq!(audit_rows(&observer, &reader.sub, "client.read").await, 1, "audit row of {}", reader.sub);
    }
}

#[tokio::test]
async fn a_failed_audit_write_fails_the_read_with_503() {
    // Arrange: audit inserts are refused by a trigger.
    let app = spawn_app().await;
    let client = app.create_client(&caseworker(), &new_client()).await;
    let id = id_of(&client);
    let db = app.db().await;
    refuse_audit(&db).await;
    let reader = caseworker();
    // Act
    let res = app.get(&format!("/api/v1/clients/{id}"), &reader).await;
    // Assert: 503, a problem, and none of the client's data.
    let body = res.headers().get("retry-after").is_some();
    let problem = assert_problem(res, 503, "service-unavailable").await;
    assert!(body, "503 with Retry-After");
    assert!(problem.get("first_name").is_none() && problem.get("last_name").is_none(), "{problem}");
    assert!(!problem.to_string().contains(client["last_name"].as_str().unwrap()), "{problem}");
    assert_eq!(audit_rows(&db, &reader.sub, "client.read").await, 0);
    // And once the log can be written again, the same read is served and audited.
    allow_audit(&db).await;
    let res = app.get(&format!("/api/v1/clients/{id}"), &reader).await;
    assert_eq!(res.status(), 200);
    assert_eq!(audit_rows(&db, &reader.sub, "client.read").await, 1);
}

/// `n` reads of client `id` at once with `token`; their statuses.
async fn read_at_once(app: &TestApp, id: &str, token: &str, n: usize) -> Vec<u16> {
    let mut reads = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (http, url, token) = (app.client.clone(), app.url(&format!("/api/v1/clients/{id}")), token.to_owned());
        reads.spawn(async move { http.get(url).bearer_auth(token).send().await.unwrap().status().as_u16() });
    }
    reads.join_all().await
}

#[tokio::test]
async fn concurrent_reads_are_each_audited_once() {
    // Arrange
    let app = spawn_app().await;
    let client = app.create_client(&caseworker(), &new_client()).await;
    let id = id_of(&client);
    let reader = caseworker();
    let token = token_for(&reader);
    // Act: 48 reads at once.
    let statuses = read_at_once(&app, &id, &token, 48).await;
    // Assert: every read answered and every read audited, once.
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let db = app.db().await;
    assert_eq!(audit_rows(&db, &reader.sub, "client.read").await, 48);
}

/// The hot path keeps the connection budget the README gives (half of
/// `OSTWERK_DB_MAX_CONNECTIONS`, split among the HTTP workers), however many
/// reads arrive at once on how many workers, and every read is still
/// audited once by its worker's writer.
#[tokio::test]
async fn concurrent_reads_on_two_workers_stay_within_the_hot_path_budget() {
    // Arrange: 2 workers, 8 connections: at most 2 hot-path connections each.
    let app = spawn_app_with(Options {
        configure: Some(Box::new(|s: &mut ostwerk::config::Settings| {
            s.workers = 2;
            s.db_max_connections = 8;
        })),
        ..Options::default()
    })
    .await;
    let client = app.create_client(&caseworker(), &new_client()).await;
    let id = id_of(&client);
    let reader = caseworker();
    let token = token_for(&reader);
    // Act: 64 reads at once, over as many connections as the HTTP client opens.
    let statuses = read_at_once(&app, &id, &token, 64).await;
    // Assert: all answered and audited once; on PostgreSQL the hot path used
    // at least one and at most 2 × 2 connections to this database.
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let db = app.db().await;
    assert_eq!(audit_rows(&db, &reader.sub, "client.read").await, 64);
    if is_postgres() {
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT count(*) AS n FROM pg_stat_activity \
                 WHERE datname = current_database() AND application_name = 'ostwerk-hot'",
            ))
            .await
            .unwrap()
            .expect("a count");
        let hot: i64 = row.try_get("", "n").unwrap();
        assert!((1..=4).contains(&hot), "{hot} hot-path connections, the budget is 4");
    }
}

#[tokio::test]
async fn a_failed_batch_fails_every_read_in_it() {
    // Arrange: audit inserts are refused; 32 callers read at once, so their
    // events share batches.
    let app = spawn_app().await;
    let client = app.create_client(&caseworker(), &new_client()).await;
    let id = id_of(&client);
    let db = app.db().await;
    refuse_audit(&db).await;
    let readers: Vec<Caller> = (0..32).map(|_| caseworker()).collect();
    // Act
    let mut reads = tokio::task::JoinSet::new();
    for reader in &readers {
        let (http, url, token) = (app.client.clone(), app.url(&format!("/api/v1/clients/{id}")), token_for(reader));
        reads.spawn(async move { http.get(url).bearer_auth(token).send().await.unwrap().status().as_u16() });
    }
    let statuses: Vec<u16> = reads.join_all().await;
    // Assert: not one read answered without its event, not one event written.
    assert!(statuses.iter().all(|s| *s == 503), "{statuses:?}");
    for reader in &readers {
        assert_eq!(audit_rows(&db, &reader.sub, "client.read").await, 0);
    }
}

#[tokio::test]
async fn invisible_and_erased_clients_are_not_audited_as_read() {
    // Arrange: a job centre's client, another job centre, and an erased client.
    let app = spawn_app().await;
    let owner = Caller::new("jobcenter").with_org("jc-perf-a");
    let other = Caller::new("jobcenter").with_org("jc-perf-b");
    let client = app.create_client(&owner, &new_client()).await;
    let id = id_of(&client);
    let erased = app.create_client(&caseworker(), &new_client()).await;
    let erased_id = id_of(&erased);
    let res = app.delete(&format!("/api/v1/clients/{erased_id}"), &admin()).await;
    assert!(res.status().is_success(), "erase: {}", res.status());
    let db = app.db().await;
    // Act + Assert: another job centre does not see it and leaves no read event.
    assert_eq!(app.get(&format!("/api/v1/clients/{id}"), &other).await.status(), 404);
    assert_eq!(audit_rows(&db, &other.sub, "client.read").await, 0);
    // The owner reads it, audited once.
    assert_eq!(app.get(&format!("/api/v1/clients/{id}"), &owner).await.status(), 200);
    assert_eq!(audit_rows(&db, &owner.sub, "client.read").await, 1);
    // An erased stub holds no personal data: 410 and no read event.
    let reader = caseworker();
    assert_eq!(app.get(&format!("/api/v1/clients/{erased_id}"), &reader).await.status(), 410);
    assert_eq!(audit_rows(&db, &reader.sub, "client.read").await, 0);
}

/// The PostgreSQL hot path (`hot_pg`) reads a client as the ORM does, every
/// column, with the same visibility (created or referred by the caller's
/// organisation); on SQLite there is none.
#[tokio::test]
async fn the_hot_path_reads_a_client_exactly_as_the_orm_does() {
    use ostwerk::{
        entities::client,
        repository::{clients::ClientScope, hot_pg::HotPg},
    };
    use sea_orm::EntityTrait;
    // Arrange: a client with every field set, created by a job centre.
    let app = spawn_app().await;
    let hot = HotPg::new(&app.settings);
    if !is_postgres() {
        assert!(hot.is_none(), "no hot path on SQLite");
        return;
    }
    let hot = hot.expect("a hot path on a loopback PostgreSQL without sslmode");
    let jc = Caller::new("jobcenter").with_org("jc-hot");
    let body = client_body(); // every field of SPEC §3 set
    let created = app.create_client(&jc, &body).await;
    let id: uuid::Uuid = id_of(&created).parse().unwrap();
    let db = app.db().await;
    let orm = client::Entity::find_by_id(id).one(&db).await.unwrap().expect("the client");
    // Act + Assert: office scope and the owning job centre see the same model; another job centre sees nothing.
    assert_eq!(hot.find_client(&ClientScope::All, id).await.unwrap().as_ref(), Some(&orm));
    assert_eq!(hot.find_client(&ClientScope::Org("jc-hot".into()), id).await.unwrap().as_ref(), Some(&orm));
    assert_eq!(hot.find_client(&ClientScope::Org("jc-other".into()), id).await.unwrap(), None);
    assert_eq!(hot.find_client(&ClientScope::All, uuid::Uuid::new_v4()).await.unwrap(), None);

    // Arrange: a client of the office that a third job centre referred
    // (its referral rewritten to name that job centre as referrer).
    use crate::referral_fixtures as fx;
    let provider = fx::provider(&app).await;
    let measure = fx::measure(&app, &provider.id, 3, serde_json::json!({})).await;
    let referral = fx::fresh_referral(&app, &caseworker(), &fx::Target::Measure(fx::id(&measure))).await;
    let referred: uuid::Uuid = referral["client_id"].as_str().unwrap().parse().unwrap();
    let update = format!("UPDATE referrals SET referring_org = 'jc-referrer' WHERE id = '{}'", fx::id(&referral));
    execute(&db, &update).await;
    let orm = client::Entity::find_by_id(referred).one(&db).await.unwrap().expect("the referred client");
    // Act + Assert: the referring job centre sees it, another one does not.
    assert_eq!(hot.find_client(&ClientScope::Org("jc-referrer".into()), referred).await.unwrap(), Some(orm));
    assert_eq!(hot.find_client(&ClientScope::Org("jc-other".into()), referred).await.unwrap(), None);
}
