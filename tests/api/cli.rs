//! The operator's subcommands against a test database: `import-districts`
//! and `seed --demo`.
use std::process::Command;

use serde_json::Value;

use crate::helpers::*;

fn ostwerk(app: &TestApp, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ostwerk"))
        .args(args)
        .env("DATABASE_URL", &app.database_url)
        .env("OSTWERK_LOG", "warn")
        .env_remove("OSTWERK_JWT_SECRET")
        .output()
        .expect("ostwerk runs")
}

async fn count(app: &TestApp, path: &str) -> usize {
    let mut n = 0;
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}?limit=200&cursor={c}"),
            None => format!("{path}?limit=200"),
        };
        let page: Value = app.get(&url, &admin()).await.json().await.unwrap();
        n += page["items"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return n,
        }
    }
}

#[tokio::test]
async fn import_districts_replaces_the_district_list() {
    // Arrange
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("districts.csv");
    std::fs::write(&csv, "code,label_de,label_en\n01,Altstadt,Old town\n02,Neustadt,\n").unwrap();
    // Act
    let out = ostwerk(&app, &["import-districts", csv.to_str().unwrap()]);
    // Assert
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list: Value = app.get("/api/v1/code-lists/districts", &caseworker()).await.json().await.unwrap();
    assert_eq!(
        list["items"],
        serde_json::json!([
            {"code": "01", "label_de": "Altstadt", "label_en": "Old town"},
            {"code": "02", "label_de": "Neustadt", "label_en": "Neustadt"}
        ])
    );
    let res = app.post("/api/v1/providers", &caseworker(), &provider_body("Alt")).await;
    assert_problem(res, 422, "validation-failed").await; // district 21 is gone now
}

#[tokio::test]
async fn import_districts_refuses_a_file_without_rows() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("empty.csv");
    std::fs::write(&csv, "code,label_de,label_en\n").unwrap();
    let out = ostwerk(&app, &["import-districts", csv.to_str().unwrap()]);
    assert!(!out.status.success());
    let list: Value = app.get("/api/v1/code-lists/districts", &caseworker()).await.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 63, "the old list stays");
}

#[tokio::test]
async fn seed_demo_fills_the_database_once() {
    // Arrange
    let app = spawn_app().await;
    // Act
    let first = ostwerk(&app, &["seed", "--demo"]);
    let clients_after_first = count(&app, "/api/v1/clients").await;
    let second = ostwerk(&app, &["seed", "--demo"]);
    // Assert
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(second.status.success());
    assert_eq!(clients_after_first, 200);
    assert_eq!(count(&app, "/api/v1/clients").await, 200, "a second run adds nothing");
    assert!(String::from_utf8_lossy(&second.stdout).contains("already present"));
    assert!(count(&app, "/api/v1/providers").await >= 5);
    assert!(count(&app, "/api/v1/referrals").await > 20);
}
