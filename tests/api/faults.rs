//! Faults survived with nothing lost (issue 11): the database going away
//! under a write load, `SIGKILL` during webhook dispatch and during a batch,
//! two instances on one database, slow and oversized clients, an exhausted
//! pool. Most need PostgreSQL (other tests share its cluster, so an outage
//! is a proxy the test cuts plus `pg_terminate_backend` on the test's own
//! database, never a stopped server); on SQLite they print a skip line.
use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use ostwerk::config::Settings;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    faults_support::*,
    helpers::*,
    ops::{CuttableProxy, split_host},
    referral_fixtures::{self as fx, REFERRALS},
};

const CLIENTS: &str = "/api/v1/clients";

fn skip_without_postgres(test: &str) -> bool {
    if is_postgres() {
        return false;
    }
    eprintln!("skipped {test}: needs PostgreSQL (set TEST_DATABASE_URL)");
    true
}

/// Every answer of a fault window: a success, or `503` with `Retry-After`,
/// in bounded time — never a `500`, never a hang.
fn assert_success_or_unavailable(what: &str, answer: &Answer, success: u16) {
    assert!(answer.took < Duration::from_secs(10), "{what} took {:?}", answer.took);
    if answer.status == success {
        return;
    }
    assert_eq!(answer.status, 503, "{what}: {}", answer.body);
    assert!(answer.retry_after, "{what}: 503 without Retry-After");
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

// ---------------------------------------------------------------------------
// PostgreSQL goes away during a write load
// ---------------------------------------------------------------------------

/// What one writer of the load saw, to be compared with the database.
#[derive(Default)]
struct Ledger {
    /// The writer's principal: idempotency keys are scoped to it.
    caller: Option<Caller>,
    /// Client ids answered `201`, and keys of client creates answered `503`
    /// (with their bodies) to retry once the database is back.
    clients: Vec<String>,
    unanswered_clients: Vec<(String, Value)>,
    referrals: Vec<String>,
    unanswered_referrals: Vec<(String, Value)>,
    /// Referrals whose accept was answered `200`, and those answered `503`.
    accepted: Vec<String>,
    unanswered_accepts: Vec<String>,
    /// `503`s seen (the fault must have been felt).
    unavailable: usize,
}

/// One writer: create a client, refer it, accept the referral — over and
/// over until `stop`, every create with an `Idempotency-Key`.
async fn writer(base: String, measure_id: String, writer_no: usize, stop: Arc<AtomicBool>) -> Ledger {
    let client = patient_client();
    let caller = caseworker();
    let mut ledger = Ledger::default();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let key = format!("client-{writer_no}-{i}");
        let body = client_body_with(json!({"external_id": format!("F-{writer_no}-{i}")}));
        let created = call(&client, &base, Method::POST, CLIENTS, &caller, Some(&key), Some(&body)).await;
        assert_success_or_unavailable("create client", &created, 201);
        if created.status != 201 {
            ledger.unavailable += 1;
            ledger.unanswered_clients.push((key, body));
            continue;
        }
        let client_id = created.id();
        ledger.clients.push(client_id.clone());

        let key = format!("referral-{writer_no}-{i}");
        let body = json!({"client_id": client_id, "measure_id": measure_id});
        let referred = call(&client, &base, Method::POST, REFERRALS, &caller, Some(&key), Some(&body)).await;
        assert_success_or_unavailable("create referral", &referred, 201);
        if referred.status != 201 {
            ledger.unavailable += 1;
            ledger.unanswered_referrals.push((key, body));
            continue;
        }
        let referral_id = referred.id();
        ledger.referrals.push(referral_id.clone());

        let accept = fx::action_body("accept");
        let path = fx::transitions_path(&referral_id);
        let accepted = call(&client, &base, Method::POST, &path, &caller, None, Some(&accept)).await;
        assert_success_or_unavailable("accept referral", &accepted, 200);
        if accepted.status == 200 {
            ledger.accepted.push(referral_id);
        } else {
            ledger.unavailable += 1;
            ledger.unanswered_accepts.push(referral_id);
        }
    }
    ledger.caller = Some(caller);
    ledger
}

#[tokio::test]
async fn writes_while_the_database_goes_away_are_acknowledged_or_503_and_none_is_lost_or_half_written() {
    if skip_without_postgres("the database outage under load") {
        return;
    }
    // Arrange: the app reaches its database only through a proxy the test cuts.
    let (database_url, _dir) = fresh_database().await;
    let (upstream, _) = split_host(&database_url, "");
    let proxy = CuttableProxy::start(upstream).await;
    let (_, proxied_url) = split_host(&database_url, &format!("127.0.0.1:{}", proxy.port));
    let app = spawn_app_with(Options {
        database_url: Some(proxied_url),
        configure: Some(Box::new(|s: &mut Settings| s.db_acquire_timeout_ms = 1_000)),
        ..Default::default()
    })
    .await;
    let provider = fx::provider(&app).await;
    let measure_id = fx::id(&fx::measure(&app, &provider.id, 10_000, json!({})).await);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> =
        (0..6).map(|n| tokio::spawn(writer(app.address.clone(), measure_id.clone(), n, stop.clone()))).collect();

    // Act: connections are cut by the server, then the database is gone for 2 s.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let terminated = terminate_backends(&database_name(&database_url)).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    proxy.restore();
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    stop.store(true, Ordering::Relaxed);
    let mut ledgers = Vec::new();
    for w in writers {
        ledgers.push(w.await.unwrap());
    }
    // Assert: the outage was felt, and the service serves again without a restart.
    assert!(terminated > 0, "no connection of the app was cut");
    assert!(ledgers.iter().map(|l| l.unavailable).sum::<usize>() > 0, "no request saw the outage");
    let client = patient_client();
    let caller = caseworker();
    let back = eventually(Duration::from_secs(10), async || {
        call(&client, &app.address, Method::GET, "/api/v1/providers", &caller, None, None).await.status == 200
    })
    .await;
    assert!(back, "the service did not recover by itself");

    // Act: every request that got no success is retried by its caller with
    // its key; a write that committed although its answer was lost replays.
    let mut ledger = Ledger::default();
    for l in ledgers {
        let caller = l.caller.as_ref().unwrap();
        ledger.clients.extend(l.clients);
        ledger.referrals.extend(l.referrals);
        ledger.accepted.extend(l.accepted);
        for (key, body) in &l.unanswered_clients {
            let retried = call(&client, &app.address, Method::POST, CLIENTS, caller, Some(key), Some(body)).await;
            assert_eq!(retried.status, 201, "retried client create {key}: {}", retried.body);
            ledger.clients.push(retried.id());
        }
        for (key, body) in &l.unanswered_referrals {
            let retried = call(&client, &app.address, Method::POST, REFERRALS, caller, Some(key), Some(body)).await;
            assert_eq!(retried.status, 201, "retried referral {key}: {}", retried.body);
            ledger.referrals.push(retried.id());
        }
        for referral_id in &l.unanswered_accepts {
            let path = fx::transitions_path(referral_id);
            let accept = fx::action_body("accept");
            let retried = call(&client, &app.address, Method::POST, &path, caller, None, Some(&accept)).await;
            // `409`: the accept whose answer was lost had committed.
            assert!(matches!(retried.status, 200 | 409), "retried accept: {}", retried.body);
            ledger.accepted.push(referral_id.clone());
        }
    }

    // Assert: the database holds exactly what was acknowledged (or replayed), whole.
    let db = connect(&database_url).await;
    assert_eq!(sorted(ids(&db, "SELECT id FROM clients").await), sorted(ledger.clients.clone()));
    assert_eq!(sorted(ids(&db, "SELECT id FROM referrals").await), sorted(ledger.referrals.clone()));
    let accepted: HashSet<String> = ledger.accepted.iter().cloned().collect();
    let never_accepted = ledger.referrals.iter().filter(|r| !accepted.contains(*r)).count();
    let with_events = rows(
        &db,
        "SELECT r.id, r.status, (SELECT COUNT(*) FROM referral_events e WHERE e.referral_id = r.id) AS n FROM referrals r",
    )
    .await;
    for row in &with_events {
        let id = row.try_get::<uuid::Uuid>("", "id").unwrap().to_string();
        let status: String = row.try_get("", "status").unwrap();
        let events: i64 = row.try_get("", "n").unwrap();
        let (want_status, want_events) = if accepted.contains(&id) { ("accepted", 2) } else { ("requested", 1) };
        assert_eq!((status.as_str(), events), (want_status, want_events), "referral {id}");
    }
    let seats =
        number(&db, &format!("SELECT CAST(seats_taken AS BIGINT) AS n FROM measures WHERE id = '{measure_id}'")).await;
    assert_eq!(usize::try_from(seats).unwrap(), ledger.referrals.len() - never_accepted, "seats_taken");
    let keys = ledger.clients.len() + ledger.referrals.len();
    assert_eq!(number(&db, "SELECT COUNT(*) AS n FROM idempotency_keys WHERE state = 'completed'").await, keys as i64);
    assert_eq!(number(&db, "SELECT COUNT(*) AS n FROM idempotency_keys WHERE state <> 'completed'").await, 0);
    db.close().await.ok();
}

// ---------------------------------------------------------------------------
// SIGKILL during webhook dispatch and during a batch
// ---------------------------------------------------------------------------

/// `n` referrals of fresh clients into `measure_id`, each acknowledged `201`.
async fn referrals(client: &reqwest::Client, base: &str, measure_id: &str, n: usize) -> Vec<String> {
    let office = caseworker();
    let mut made = Vec::new();
    for client_id in clients(client, base, &office, n).await {
        let body = json!({"client_id": client_id, "measure_id": measure_id});
        made.push(create(client, base, REFERRALS, &office, &body).await);
    }
    made
}

async fn delivered(db: &sea_orm::DatabaseConnection) -> i64 {
    number(db, "SELECT COUNT(*) AS n FROM webhook_deliveries WHERE status = 'delivered'").await
}

/// Runs on SQLite too: a killed process must not lose what SQLite acknowledged either.
#[tokio::test]
async fn sigkill_during_webhook_dispatch_loses_no_event_and_never_sends_one_attempt_twice() {
    // Arrange: a slow partner, so deliveries are in flight when the process dies.
    let (database_url, _dir) = fresh_database().await;
    let partner = receiver(Duration::from_millis(1_500)).await;
    let mut first = serve_binary(&database_url, &[("OSTWERK_WEBHOOK_TIMEOUT_SECS", "5")]).await;
    let client = patient_client();
    let hook = json!({"url": partner.url, "events": ["referral.created"]});
    create(&client, &first.base, "/api/v1/webhooks", &caseworker(), &hook).await;
    let measure_id = open_measure(&client, &first.base, 100).await;
    let acknowledged = referrals(&client, &first.base, &measure_id, 8).await;

    // Act: SIGKILL while the first deliveries are being sent.
    assert!(partner.wait_for(1, Duration::from_secs(10)).await >= 1, "no delivery started");
    first.kill();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let db = connect(&database_url).await;
    let cut_off =
        ids(&db, "SELECT event_id AS id FROM webhook_deliveries WHERE status = 'pending' AND locked_until IS NOT NULL")
            .await;
    let arrived_before_kill = partner.arrived();
    let second = serve_binary(&database_url, &[("OSTWERK_WEBHOOK_TIMEOUT_SECS", "5")]).await;

    // Assert: the restarted instance delivers the rest, and honours the dead
    // instance's leases — what was in flight is not sent again meanwhile.
    let rest = i64::try_from(acknowledged.len() - cut_off.len()).unwrap();
    assert!(eventually(Duration::from_secs(20), async || delivered(&db).await >= rest).await, "rest not delivered");
    for event in &cut_off {
        assert!(partner.counts().get(event).copied().unwrap_or(0) <= 1, "{event} sent again under a live lease");
    }

    // Act: the dead instance's leases run out.
    expire_leases(&db).await;

    // Assert: every acknowledged referral's event is delivered, each attempt
    // once: only the attempts cut off by the kill arrived a second time.
    let all = i64::try_from(acknowledged.len()).unwrap();
    assert!(eventually(Duration::from_secs(20), async || delivered(&db).await == all).await, "not all delivered");
    let payloads: Vec<String> = rows(&db, "SELECT payload FROM webhook_deliveries")
        .await
        .iter()
        .map(|r| r.try_get::<String>("", "payload").unwrap())
        .collect();
    assert_eq!(payloads.len(), acknowledged.len(), "one event per referral");
    for referral_id in &acknowledged {
        assert!(payloads.iter().any(|p| p.contains(referral_id.as_str())), "no event for {referral_id}");
    }
    let counts = partner.counts();
    for event in ids(&db, "SELECT event_id AS id FROM webhook_deliveries").await {
        let times = counts.get(&event).copied().unwrap_or(0);
        let allowed = if cut_off.contains(&event) { 2 } else { 1 };
        assert!(
            (1..=allowed).contains(&times),
            "{event} arrived {times} times (cut off: {})",
            cut_off.contains(&event)
        );
    }
    assert!(!arrived_before_kill.is_empty());
    assert_eq!(number(&db, "SELECT COUNT(*) AS n FROM webhook_deliveries WHERE attempts <> 1").await, 0);
    drop(second);
    db.close().await.ok();
}

fn batch_items(clients: &[String], measure_id: &str, prefix: &str) -> Vec<Value> {
    clients
        .iter()
        .enumerate()
        .map(|(i, c)| json!({"client_id": c, "measure_id": measure_id, "external_id": format!("{prefix}-{i}")}))
        .collect()
}

#[tokio::test]
async fn sigkill_during_a_batch_loses_no_acknowledged_referral_and_its_retry_creates_none_twice() {
    // Arrange: a job centre with 200 clients; a first batch is acknowledged.
    let (database_url, _dir) = fresh_database().await;
    let mut first = serve_binary(&database_url, &[]).await;
    let client = patient_client();
    let jobcenter = Caller::new("jobcenter");
    let measure_id = open_measure(&client, &first.base, 1_000).await;
    let people = clients(&client, &first.base, &jobcenter, 200).await;
    let (early, late) = people.split_at(20);
    let path = "/api/v1/referrals/batch";
    let body = json!({"items": batch_items(early, &measure_id, "EARLY")});
    let answer = call(&client, &first.base, Method::POST, path, &jobcenter, Some("early"), Some(&body)).await;
    assert_eq!(answer.status, 207, "{}", answer.body);
    let acknowledged: Vec<String> =
        answer.body["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();

    // Act: SIGKILL while the second batch is half done.
    let nightly = json!({"items": batch_items(late, &measure_id, "NIGHTLY")});
    let (base, caller, sent) = (first.base.clone(), jobcenter.clone(), nightly.clone());
    let cut = tokio::spawn(async move {
        let req = patient_client().post(format!("{base}{path}")).bearer_auth(token_for(&caller));
        req.header("Idempotency-Key", "nightly").json(&sent).send().await.map(|r| r.status().as_u16())
    });
    let db = connect(&database_url).await;
    let started =
        eventually(Duration::from_secs(20), async || number(&db, "SELECT COUNT(*) AS n FROM referrals").await >= 30)
            .await;
    assert!(started, "the batch did not start");
    first.kill();
    let outcome = cut.await.unwrap();
    assert!(outcome.is_err(), "the batch finished before the kill ({outcome:?}); nothing was tested");
    let second = serve_binary(&database_url, &[]).await;

    // Assert: what was acknowledged survived the kill.
    let stored: HashSet<String> = ids(&db, "SELECT id FROM referrals").await.into_iter().collect();
    assert!(acknowledged.iter().all(|id| stored.contains(id)), "an acknowledged referral was lost");

    // Act: the caller retries with the same key — refused while the dead
    // request's claim stands, run once its lease has run out.
    let retry = call(&client, &second.base, Method::POST, path, &jobcenter, Some("nightly"), Some(&nightly)).await;
    assert_eq!(retry.status, 409, "{}", retry.body);
    assert!(retry.retry_after);
    expire_leases(&db).await;
    let retry = call(&client, &second.base, Method::POST, path, &jobcenter, Some("nightly"), Some(&nightly)).await;

    // Assert: items created before the kill are reported as such, none is created twice.
    assert_eq!(retry.status, 207, "{}", retry.body);
    let results = retry.body["results"].as_array().unwrap();
    let mut outcomes: HashMap<u64, usize> = HashMap::new();
    for result in results {
        let status = result["status"].as_u64().unwrap();
        *outcomes.entry(status).or_default() += 1;
        if status == 409 {
            assert!(result["problem"]["existing_id"].is_string(), "{result}");
        }
    }
    assert!(outcomes.keys().all(|s| matches!(s, 201 | 409)), "{outcomes:?}");
    assert!(outcomes.get(&409).copied().unwrap_or(0) >= 10, "the items committed before the kill: {outcomes:?}");
    assert_eq!(number(&db, "SELECT COUNT(*) AS n FROM referrals").await, 200);
    assert_eq!(number(&db, "SELECT COUNT(DISTINCT external_id) AS n FROM referrals").await, 200);
    let without_one_event = "SELECT COUNT(*) AS n FROM referrals r \
         WHERE (SELECT COUNT(*) FROM referral_events e WHERE e.referral_id = r.id) <> 1";
    assert_eq!(number(&db, without_one_event).await, 0);
    let replay = call(&client, &second.base, Method::POST, path, &jobcenter, Some("nightly"), Some(&nightly)).await;
    assert!(replay.replayed && replay.body == retry.body, "the answer is stored and replayed");
    db.close().await.ok();
}

// ---------------------------------------------------------------------------
// Two instances on one PostgreSQL database
// ---------------------------------------------------------------------------

#[tokio::test]
async fn two_instances_on_one_database_never_overbook_deliver_each_event_once_and_share_cursors_and_keys() {
    if skip_without_postgres("two instances on one database") {
        return;
    }
    // Arrange: two binaries started at once on one fresh database (both migrate).
    let (database_url, _dir) = fresh_database().await;
    let (a, b) = tokio::join!(serve_binary(&database_url, &[]), serve_binary(&database_url, &[]));
    let client = patient_client();
    let office = caseworker();
    let partner = receiver(Duration::ZERO).await;
    let hook = json!({"url": partner.url, "events": ["referral.created", "referral.status_changed"]});
    create(&client, &a.base, "/api/v1/webhooks", &office, &hook).await;
    let measure_id = open_measure(&client, &b.base, 5).await;
    let referral_ids = referrals(&client, &a.base, &measure_id, 20).await;

    // Act: 20 concurrent accepts into 5 seats, half through each instance.
    let accepts = futures_util::future::join_all(referral_ids.iter().enumerate().map(|(i, id)| {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let path = fx::transitions_path(id);
        let (client, office) = (&client, &office);
        async move { call(client, base, Method::POST, &path, office, None, Some(&fx::action_body("accept"))).await }
    }))
    .await;

    // Assert: never overbooked.
    let accepted = accepts.iter().filter(|r| r.status == 200).count();
    assert_eq!(accepted, 5, "{:?}", accepts.iter().map(|r| r.status).collect::<Vec<_>>());
    for refused in accepts.iter().filter(|r| r.status != 200) {
        assert_eq!(refused.status, 409, "{}", refused.body);
        assert!(refused.body["type"].as_str().unwrap().ends_with("/capacity-exhausted"), "{}", refused.body);
    }
    let measure_path = format!("/api/v1/measures/{measure_id}");
    let measure = call(&client, &a.base, Method::GET, &measure_path, &office, None, None).await;
    assert_eq!(measure.body["seats_taken"], 5);

    // Assert: both workers poll one outbox, yet each event arrives once.
    let db = connect(&database_url).await;
    let events = number(&db, "SELECT COUNT(*) AS n FROM webhook_deliveries").await;
    assert_eq!(events, 25, "20 created + 5 status changes");
    assert!(eventually(Duration::from_secs(20), async || delivered(&db).await == events).await, "not delivered");
    let counts = partner.counts();
    assert_eq!(counts.len(), 25);
    assert!(counts.values().all(|n| *n == 1), "an event arrived twice: {counts:?}");

    // Assert: a cursor of A is honoured by B (and back), pages disjoint.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0.. {
        let base = if page % 2 == 0 { &a.base } else { &b.base };
        let path = match &cursor {
            Some(c) => format!("{REFERRALS}?limit=7&cursor={}", urlencoding(c)),
            None => format!("{REFERRALS}?limit=7"),
        };
        let answer = call(&client, base, Method::GET, &path, &office, None, None).await;
        assert_eq!(answer.status, 200, "page {page}: {}", answer.body);
        seen.extend(answer.body["items"].as_array().unwrap().iter().map(fx::id));
        cursor = answer.body["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
        assert!(page < 10, "the cursors never end");
    }
    assert_eq!(sorted(seen), sorted(referral_ids.clone()));

    // Assert: an Idempotency-Key used on A replays on B, and guards its body there.
    let body = client_body_with(json!({"external_id": "TWIN-1"}));
    let made = call(&client, &a.base, Method::POST, CLIENTS, &office, Some("twin"), Some(&body)).await;
    let again = call(&client, &b.base, Method::POST, CLIENTS, &office, Some("twin"), Some(&body)).await;
    assert_eq!((made.status, again.status), (201, 201));
    assert!(again.replayed, "B ran the create again");
    assert_eq!(again.id(), made.id());
    let other = client_body_with(json!({"external_id": "TWIN-2"}));
    let misused = call(&client, &b.base, Method::POST, CLIENTS, &office, Some("twin"), Some(&other)).await;
    assert_eq!(misused.status, 422, "{}", misused.body);
    db.close().await.ok();
}

fn urlencoding(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

// ---------------------------------------------------------------------------
// Slow and oversized clients
// ---------------------------------------------------------------------------

/// A slowloris connection: a request head sent one byte every 200 ms and
/// never finished. Returns how long the server let it live (`None`: the
/// server never closed it within 30 s).
async fn slowloris(address: String) -> Option<Duration> {
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(address.trim_start_matches("http://")).await.unwrap();
    let head = b"GET /api/v1/providers HTTP/1.1\r\nHost: ostwerk\r\nX-Slow: ";
    let mut buf = [0u8; 1024];
    for byte in head.iter().chain(b"a".repeat(1_000).iter()) {
        if stream.write_all(&[*byte]).await.is_err() {
            return Some(started.elapsed());
        }
        // A closed connection shows as a readable end (or an answer) here.
        if tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await.is_ok() {
            return Some(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(30) {
            return None;
        }
    }
    None
}

/// No database needed: runs on SQLite too.
#[tokio::test]
async fn slowloris_connections_are_cut_after_the_request_timeout_without_starving_other_callers() {
    // Arrange
    let app = spawn_app().await;
    let client = patient_client();
    let caller = caseworker();

    // Act: 200 connections dribble headers while a normal caller keeps calling.
    let slow: Vec<_> = (0..200).map(|_| tokio::spawn(slowloris(app.address.clone()))).collect();
    let mut normal = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        normal.push(call(&client, &app.address, Method::GET, "/api/v1/providers", &caller, None, None).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut lived = Vec::new();
    for connection in slow {
        lived.push(connection.await.unwrap());
    }

    // Assert: the others were served all along — each well inside the time
    // the slow connections live (a starved caller would wait for their cut;
    // the margin is for a loaded CI machine) ...
    assert!(normal.len() >= 10, "only {} normal requests in 4 s", normal.len());
    for answer in &normal {
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(answer.took < Duration::from_secs(3), "a normal request took {:?}", answer.took);
    }
    // ... and every dribbling connection was closed by the server's head timeout.
    for life in lived {
        let life = life.expect("a slowloris connection stayed open 30 s");
        let limit = ostwerk::startup::CLIENT_REQUEST_TIMEOUT;
        assert!(life >= limit - Duration::from_secs(1) && life < limit * 2, "closed after {life:?}");
    }
}

/// A slow POST (R.U.D.Y.): a complete head announcing a body that then
/// dribbles in and never finishes.
#[tokio::test]
async fn a_body_stalled_midway_is_408_after_the_body_timeout_and_the_connection_closes() {
    // Arrange: a 2 s body deadline.
    let app = spawn_app_with(Options {
        configure: Some(Box::new(|s: &mut Settings| s.body_timeout_secs = 2)),
        ..Default::default()
    })
    .await;
    let token = token_for(&caseworker());
    let mut stream = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://")).await.unwrap();
    let head = format!(
        "POST /api/v1/providers HTTP/1.1\r\nHost: ostwerk\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"name\": \""
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();

    // Act: one byte every 300 ms, while a normal caller is served.
    let dribble = async {
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while started.elapsed() < Duration::from_secs(20) {
            if stream.write_all(b"a").await.is_err() {
                break;
            }
            match tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        (started.elapsed(), String::from_utf8_lossy(&answer).into_owned())
    };
    let (client, caller) = (patient_client(), caseworker());
    let normal = call(&client, &app.address, Method::GET, "/api/v1/providers", &caller, None, None);
    let ((lived, answer), normal) = tokio::join!(dribble, normal);

    // Assert: a 408 problem after about the deadline, then the connection closed.
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request-timeout"), "{answer}");
    assert!(lived >= Duration::from_millis(1500) && lived < Duration::from_secs(15), "closed after {lived:?}");
    assert_eq!(normal.status, 200, "{}", normal.body);
}

#[tokio::test]
async fn a_100_kb_header_is_431_and_other_callers_are_served_meanwhile() {
    // Arrange
    let app = spawn_app().await;
    let client = patient_client();
    let big = "a".repeat(100 * 1024);

    // Act
    let oversized = futures_util::future::join_all((0..20).map(|_| {
        client.get(app.url("/api/v1/providers")).bearer_auth(token_for(&caseworker())).header("X-Big", &big).send()
    }))
    .await;
    let normal = call(&client, &app.address, Method::GET, "/api/v1/providers", &caseworker(), None, None).await;

    // Assert
    for res in oversized {
        assert_eq!(res.unwrap().status(), 431);
    }
    assert_eq!(normal.status, 200);
}

// ---------------------------------------------------------------------------
// The pool exhausted by long transactions
// ---------------------------------------------------------------------------

#[tokio::test]
async fn callers_of_an_exhausted_pool_get_503_within_the_acquire_timeout_and_the_service_recovers() {
    if skip_without_postgres("the exhausted pool (a table lock holds requests in their transactions)") {
        return;
    }
    // Arrange: a pool of two; a lock held elsewhere parks the requests that
    // get a connection, so the others find the pool empty.
    let app = spawn_app_with(Options {
        configure: Some(Box::new(|s: &mut Settings| {
            s.db_max_connections = 2;
            s.db_acquire_timeout_ms = 1_000;
            s.db_lock_timeout_ms = 3_000;
            s.webhook_poll_ms = 3_600_000;
            s.expiry_interval_secs = 3_600;
        })),
        ..Default::default()
    })
    .await;
    app.create_provider("Bildungswerk Ost").await;
    let holder = connect(&app.database_url).await;
    let txn = sea_orm::TransactionTrait::begin(&holder).await.unwrap();
    sea_orm::ConnectionTrait::execute_unprepared(&txn, "LOCK TABLE providers IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let client = patient_client();

    // Act: 16 callers at once, and a liveness probe meanwhile.
    let callers = futures_util::future::join_all((0..16).map(|_| {
        let client = &client;
        let base = &app.address;
        async move { call(client, base, Method::GET, "/api/v1/providers", &caseworker(), None, None).await }
    }));
    let probe = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = Instant::now();
        let live = client.get(app.url("/livez")).send().await.unwrap().status();
        (live, started.elapsed())
    };
    let (answers, (live, probe_took)) = tokio::join!(callers, probe);
    txn.rollback().await.unwrap();

    // Assert: every caller is told to come back, none hangs; the process stays live.
    for answer in &answers {
        assert_eq!(answer.status, 503, "{}", answer.body);
        assert!(answer.retry_after, "503 without Retry-After");
        assert!(answer.took < Duration::from_secs(5), "answered after {:?}", answer.took);
    }
    let fast = answers.iter().filter(|a| a.took < Duration::from_millis(2_500)).count();
    assert!(fast >= 14, "callers without a connection wait the acquire timeout, not the lock: {fast} fast");
    assert_eq!(live, 200);
    assert!(probe_took < Duration::from_secs(1), "/livez took {probe_took:?}");

    // Assert: with the lock gone the same pool serves again.
    let after = call(&client, &app.address, Method::GET, "/api/v1/providers", &caseworker(), None, None).await;
    assert_eq!(after.status, 200, "{}", after.body);
    holder.close().await.ok();
}
