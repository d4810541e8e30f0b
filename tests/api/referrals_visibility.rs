//! Who sees which referral (SPEC §2, §3): providers those into their
//! measures, employers those to their vacancies, job centres those they
//! made — anything else is a `404`, for reading, acting and the history
//! alike — and the client summary providers and employers get, with its
//! audit trail (SPEC §5).
use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::{
    helpers::*,
    referral_fixtures::{self as fx, Org, Target},
};

/// Two providers with a measure each, two employers with a vacancy each, two
/// job centres; every job centre and the office refer to every target.
struct Landscape {
    providers: [(Org, Target); 2],
    employers: [(Org, Target); 2],
    jobcenters: [Caller; 2],
    /// (referring caller's index: 0/1 job centres, 2 office; target; referral id)
    referrals: Vec<(usize, Target, String)>,
}

async fn landscape(app: &TestApp) -> Landscape {
    let mut providers = Vec::new();
    for _ in 0..2 {
        let p = fx::provider(app).await;
        let m = fx::measure(app, &p.id, 10, json!({})).await;
        providers.push((p, Target::Measure(fx::id(&m))));
    }
    let mut employers = Vec::new();
    for _ in 0..2 {
        let e = fx::employer(app).await;
        let v = fx::vacancy(app, &e.id, 3, json!({})).await;
        employers.push((e, Target::Vacancy(fx::id(&v))));
    }
    let jobcenters = [Caller::new("jobcenter").with_org("jc-leipzig"), Caller::new("jobcenter").with_org("jc-halle")];
    let referrers = [jobcenters[0].clone(), jobcenters[1].clone(), caseworker()];
    let targets: Vec<Target> = providers.iter().chain(employers.iter()).map(|(_, t)| t.clone()).collect();
    let mut referrals = Vec::new();
    for (who, referrer) in referrers.iter().enumerate() {
        let client = fx::id(&fx::client(app, referrer, json!({})).await);
        for target in &targets {
            let r = fx::referral(app, referrer, &client, target).await;
            referrals.push((who, target.clone(), fx::id(&r)));
        }
    }
    let [p0, p1]: [(Org, Target); 2] = providers.try_into().ok().unwrap();
    let [e0, e1]: [(Org, Target); 2] = employers.try_into().ok().unwrap();
    Landscape { providers: [p0, p1], employers: [e0, e1], jobcenters, referrals }
}

impl Landscape {
    /// The ids of the referrals for which `keep` holds.
    fn ids(&self, keep: impl Fn(usize, &Target) -> bool) -> BTreeSet<String> {
        self.referrals.iter().filter(|(who, t, _)| keep(*who, t)).map(|(_, _, id)| id.clone()).collect()
    }
}

fn same_target(a: &Target, b: &Target) -> bool {
    a.member() == b.member()
}

/// Every id `caller` gets from the list, following cursors to the end.
async fn all_listed(app: &TestApp, caller: &Caller) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "3")];
        if let Some(c) = &cursor {
            query.push(("cursor", c));
        }
        let page = fx::list(app, caller, fx::REFERRALS, &query).await;
        for id in fx::ids_of(&page) {
            assert!(seen.insert(id), "listed twice");
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return seen,
        }
    }
}

/// Asserts that `caller` sees exactly `visible`: listed, readable, its
/// history readable; and every other referral of the landscape is a `404`
/// to read, to read the history of, and to act on.
async fn assert_sees_exactly(app: &TestApp, land: &Landscape, caller: &Caller, visible: &BTreeSet<String>) {
    assert_eq!(&all_listed(app, caller).await, visible, "{:?} lists", caller.roles);
    for (_, _, id) in &land.referrals {
        let path = format!("{}/{id}", fx::REFERRALS);
        let read = app.get(&path, caller).await;
        let events = app.get(&format!("{path}/events"), caller).await;
        if visible.contains(id) {
            assert_eq!(read.status(), 200);
            assert_eq!(events.status(), 200);
        } else {
            assert_problem(read, 404, "not-found").await;
            assert_problem(events, 404, "not-found").await;
            // Both an action of its side and one of the other: never a hint that it exists.
            for action in ["accept", "cancel"] {
                let acted = fx::act(app, caller, id, &fx::action_body(action)).await;
                assert_problem(acted, 404, "not-found").await;
            }
        }
    }
}

#[tokio::test]
async fn a_provider_sees_only_referrals_into_its_own_measures() {
    // Arrange
    let app = spawn_app().await;
    let land = landscape(&app).await;
    let (provider, measure) = &land.providers[0];
    let expected = land.ids(|_, t| same_target(t, measure));
    assert_eq!(expected.len(), 3);
    // Act + Assert
    assert_sees_exactly(&app, &land, &provider.caller, &expected).await;
}

#[tokio::test]
async fn an_employer_sees_only_referrals_to_its_own_vacancies() {
    let app = spawn_app().await;
    let land = landscape(&app).await;
    let (employer, vacancy) = &land.employers[1];
    let expected = land.ids(|_, t| same_target(t, vacancy));
    assert_eq!(expected.len(), 3);
    assert_sees_exactly(&app, &land, &employer.caller, &expected).await;
}

#[tokio::test]
async fn a_job_centre_sees_only_the_referrals_it_made() {
    let app = spawn_app().await;
    let land = landscape(&app).await;
    let expected = land.ids(|who, _| who == 0);
    assert_eq!(expected.len(), 4);
    assert_sees_exactly(&app, &land, &land.jobcenters[0], &expected).await;
}

#[tokio::test]
async fn office_staff_see_every_referral() {
    let app = spawn_app().await;
    let land = landscape(&app).await;
    let everything = land.ids(|_, _| true);
    assert_eq!(everything.len(), 12);
    for caller in [caseworker(), admin()] {
        assert_eq!(all_listed(&app, &caller).await, everything);
    }
}

#[tokio::test]
async fn a_provider_or_employer_without_a_record_of_its_own_sees_nothing() {
    let app = spawn_app().await;
    let land = landscape(&app).await;
    for role in ["provider", "employer"] {
        assert_sees_exactly(&app, &land, &Caller::new(role), &BTreeSet::new()).await;
    }
}

#[tokio::test]
async fn analysts_may_not_read_referrals() {
    let app = spawn_app().await;
    let land = landscape(&app).await;
    let analyst = Caller::new("analyst");
    let id = &land.referrals[0].2;
    for path in [fx::REFERRALS.to_owned(), format!("{}/{id}", fx::REFERRALS), format!("{}/{id}/events", fx::REFERRALS)]
    {
        assert_problem(app.get(&path, &analyst).await, 403, "forbidden").await;
    }
}

// ---------------------------------------------------------------------------
// The client summary
// ---------------------------------------------------------------------------

/// A referral of a fresh client (consenting or not) to a measure and a
/// vacancy; (client id, provider, measure referral, employer, vacancy referral).
async fn referred_client(app: &TestApp, shares: bool) -> (String, Org, String, Org, String) {
    let provider = fx::provider(app).await;
    let measure = fx::measure(app, &provider.id, 5, json!({})).await;
    let employer = fx::employer(app).await;
    let vacancy = fx::vacancy(app, &employer.id, 1, json!({})).await;
    let consent = json!({"consent": {"data_processing": true, "share_with_providers": shares}});
    let client = fx::id(&fx::client(app, &caseworker(), consent).await);
    let to_measure = fx::referral(app, &caseworker(), &client, &Target::Measure(fx::id(&measure))).await;
    let to_vacancy = fx::referral(app, &caseworker(), &client, &Target::Vacancy(fx::id(&vacancy))).await;
    (client, provider, fx::id(&to_measure), employer, fx::id(&to_vacancy))
}

/// The summary-audit events about `client_id`.
async fn summary_audits(app: &TestApp, client_id: &str) -> Vec<Value> {
    fx::audit_events_of(app, client_id).await.into_iter().filter(|e| e["action"] == "referral.client_summary").collect()
}

#[tokio::test]
async fn providers_and_employers_see_name_and_contact_of_a_consenting_client() {
    // Arrange
    let app = spawn_app().await;
    let (client, provider, to_measure, employer, to_vacancy) = referred_client(&app, true).await;
    let expected = json!({
        "id": client, "first_name": "Mara", "last_name": "Beispiel",
        "email": "mara.beispiel@example.org", "phone": "+49 341 555 0101"
    });
    for (caller, referral) in [(&provider.caller, &to_measure), (&employer.caller, &to_vacancy)] {
        // Act
        let read = fx::read(&app, caller, &format!("{}/{referral}", fx::REFERRALS)).await;
        let listed = fx::list(&app, caller, fx::REFERRALS, &[]).await;
        // Assert: nothing beyond name and contact (no birth date, no address).
        assert_eq!(read["client"], expected, "{:?}", caller.roles);
        assert_eq!(listed["items"][0]["client"], expected, "{:?}", caller.roles);
    }
}

#[tokio::test]
async fn providers_and_employers_see_only_the_id_of_a_client_without_consent() {
    let app = spawn_app().await;
    let (client, provider, to_measure, employer, to_vacancy) = referred_client(&app, false).await;
    for (caller, referral) in [(&provider.caller, &to_measure), (&employer.caller, &to_vacancy)] {
        let read = fx::read(&app, caller, &format!("{}/{referral}", fx::REFERRALS)).await;
        let listed = fx::list(&app, caller, fx::REFERRALS, &[]).await;
        assert_eq!(read["client"], json!({"id": client}), "{:?}", caller.roles);
        assert_eq!(listed["items"][0]["client"], json!({"id": client}), "{:?}", caller.roles);
    }
}

#[tokio::test]
async fn a_transition_answer_shows_the_provider_the_same_summary() {
    let app = spawn_app().await;
    let (client, provider, to_measure, _, _) = referred_client(&app, false).await;
    let accepted = fx::take(&app, &provider.caller, &to_measure, "accept").await;
    assert_eq!(accepted["client"], json!({"id": client}));
}

#[tokio::test]
async fn showing_a_clients_name_to_a_provider_is_audited() {
    // Arrange
    let app = spawn_app().await;
    let (client, provider, to_measure, employer, to_vacancy) = referred_client(&app, true).await;
    assert!(summary_audits(&app, &client).await.is_empty());
    // Act
    fx::read(&app, &provider.caller, &format!("{}/{to_measure}", fx::REFERRALS)).await;
    fx::list(&app, &employer.caller, fx::REFERRALS, &[]).await;
    // Assert
    let audits = summary_audits(&app, &client).await;
    let mut seen: Vec<(&Value, &Value, &Value, &Value)> =
        audits.iter().map(|e| (&e["actor"], &e["actor_org"], &e["resource"], &e["resource_id"])).collect();
    seen.sort_by_key(|s| s.0.to_string());
    let mut expected = [
        (json!(provider.caller.sub), json!(provider.id), json!("referral"), json!(to_measure)),
        (json!(employer.caller.sub), json!(employer.id), json!("referral"), json!(to_vacancy)),
    ];
    expected.sort_by_key(|s| s.0.to_string());
    let expected: Vec<(&Value, &Value, &Value, &Value)> = expected.iter().map(|(a, b, c, d)| (a, b, c, d)).collect();
    assert_eq!(seen, expected);
    assert!(audits.iter().all(|e| e["client_id"] == client.as_str()));
}

#[tokio::test]
async fn showing_only_the_id_of_a_client_is_not_audited() {
    let app = spawn_app().await;
    let (client, provider, to_measure, employer, _) = referred_client(&app, false).await;
    fx::read(&app, &provider.caller, &format!("{}/{to_measure}", fx::REFERRALS)).await;
    fx::list(&app, &employer.caller, fx::REFERRALS, &[]).await;
    assert!(summary_audits(&app, &client).await.is_empty());
}

#[tokio::test]
async fn office_reads_of_referrals_write_no_summary_audit() {
    let app = spawn_app().await;
    let (client, _, to_measure, _, _) = referred_client(&app, true).await;
    fx::read(&app, &caseworker(), &format!("{}/{to_measure}", fx::REFERRALS)).await;
    fx::list(&app, &admin(), fx::REFERRALS, &[]).await;
    assert!(summary_audits(&app, &client).await.is_empty());
}

#[tokio::test]
async fn once_the_client_withdraws_consent_providers_see_only_the_id() {
    // Arrange
    let app = spawn_app().await;
    let (client, provider, to_measure, _, _) = referred_client(&app, true).await;
    let path = format!("{}/{to_measure}", fx::REFERRALS);
    assert!(fx::read(&app, &provider.caller, &path).await["client"]["first_name"].is_string());
    let withdraw = json!({"consent": {"share_with_providers": false}});
    assert_eq!(app.patch(&format!("/api/v1/clients/{client}"), &caseworker(), &withdraw).await.status(), 200);
    let audited = summary_audits(&app, &client).await.len();
    // Act
    let read = fx::read(&app, &provider.caller, &path).await;
    // Assert
    assert_eq!(read["client"], json!({"id": client}));
    assert_eq!(summary_audits(&app, &client).await.len(), audited, "nothing shown, nothing audited");
}

#[tokio::test]
async fn after_erasure_providers_see_only_the_client_id() {
    // Arrange
    let app = spawn_app().await;
    let (client, provider, to_measure, _, _) = referred_client(&app, true).await;
    assert_eq!(app.delete(&format!("/api/v1/clients/{client}"), &admin()).await.status(), 204);
    // Act
    let read = fx::read(&app, &provider.caller, &format!("{}/{to_measure}", fx::REFERRALS)).await;
    // Assert: the referral stays (SPEC §5), the person is gone from it.
    assert_eq!(read["client"], json!({"id": client}));
    assert_eq!(read["status"], "requested");
    assert!(summary_audits(&app, &client).await.is_empty());
}
