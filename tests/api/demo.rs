//! The demo works for every role (issue 16 item 6): `seed --demo` creates the
//! organisations that the development tokens and the Keycloak demo users act
//! for, so each of them sees records of its own.
use ostwerk::auth::Role;
use serde_json::Value;

use crate::helpers::*;

/// An app whose database holds the demo data set.
async fn demo_app() -> TestApp {
    let app = spawn_app().await;
    let mut settings = app.settings.clone();
    settings.database_url = app.database_url.clone();
    let db = ostwerk::db::connect(&settings).await.unwrap();
    ostwerk::seed::demo(&db).await.unwrap();
    app
}

/// The caller a printed development token of `role` stands for.
fn dev_caller(role: Role) -> Caller {
    let mut caller = Caller::new(role.as_str());
    caller.org = ostwerk::cli::dev_org(role);
    caller
}

async fn items(app: &TestApp, path: &str, caller: &Caller) -> Vec<Value> {
    let res = app.get(path, caller).await;
    assert_eq!(res.status(), 200, "{path}");
    res.json::<Value>().await.unwrap()["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_demo_provider_token_sees_its_measures_and_referrals_into_them() {
    // Arrange
    let app = demo_app().await;
    let provider = dev_caller(Role::Provider);
    let org = provider.org.clone().unwrap();
    // Act
    let referrals = items(&app, "/api/v1/referrals?limit=200", &provider).await;
    let measures = items(&app, &format!("/api/v1/measures?provider_id={org}"), &provider).await;
    // Assert
    assert!(!measures.is_empty(), "the demo provider has measures");
    assert!(!referrals.is_empty(), "the demo provider has referrals to answer");
    let own: Vec<&Value> = measures.iter().map(|m| &m["id"]).collect();
    assert!(referrals.iter().all(|r| own.contains(&&r["measure_id"])), "only referrals into its own measures");
}

#[tokio::test]
async fn the_demo_employer_token_sees_its_record_vacancies_and_referrals() {
    // Arrange
    let app = demo_app().await;
    let employer = dev_caller(Role::Employer);
    let org = employer.org.clone().unwrap();
    // Act
    let record = app.get(&format!("/api/v1/employers/{org}"), &employer).await;
    let vacancies = items(&app, &format!("/api/v1/employers/{org}/vacancies"), &employer).await;
    let referrals = items(&app, "/api/v1/referrals?limit=200", &employer).await;
    // Assert
    assert_eq!(record.status(), 200);
    assert!(!vacancies.is_empty(), "the demo employer has vacancies");
    assert!(!referrals.is_empty(), "the demo employer has referrals to answer");
    assert!(referrals.iter().all(|r| !r["vacancy_id"].is_null()));
}

#[tokio::test]
async fn the_demo_jobcenter_token_sees_the_clients_it_pushed_and_its_referrals() {
    // Arrange
    let app = demo_app().await;
    let jobcenter = dev_caller(Role::Jobcenter);
    let org = jobcenter.org.clone().unwrap();
    // Act
    let clients = items(&app, "/api/v1/clients?limit=200", &jobcenter).await;
    let referrals = items(&app, "/api/v1/referrals?limit=200", &jobcenter).await;
    // Assert
    assert!(!clients.is_empty(), "the demo job centre has clients");
    assert!(clients.len() < 200, "but not the office's");
    assert!(!referrals.is_empty(), "the demo job centre follows its referrals");
    assert!(referrals.iter().all(|r| r["referring_org"] == org.as_str()));
}

#[test]
fn the_keycloak_demo_users_act_for_the_demo_organisations() {
    // Arrange
    let realm: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/keycloak/ostwerk-realm.json")).unwrap(),
    )
    .unwrap();
    // Act
    let org_of = |username: &str| {
        realm["users"].as_array().unwrap().iter().find(|u| u["username"] == username).unwrap()["attributes"]["org"][0]
            .as_str()
            .map(str::to_owned)
    };
    // Assert
    assert_eq!(org_of("provider1"), ostwerk::cli::dev_org(Role::Provider));
    assert_eq!(org_of("employer1"), ostwerk::cli::dev_org(Role::Employer));
    assert_eq!(org_of("jobcenter1"), ostwerk::cli::dev_org(Role::Jobcenter));
}
