//! Property tests (issue 11; `proptest`, since cargo-fuzz needs a nightly
//! compiler): the parsers that take untrusted input — list cursors, the JWT
//! claim mapping, merge patches, code-list filters — never panic on
//! arbitrary input, reject what they cannot use with an error, and round-trip
//! where a round trip exists.
//!
//! 256 cases per property by default (the whole module runs in seconds);
//! a longer run on demand: `PROPTEST_CASES=100000 cargo test --test api props::`.
use std::{collections::BTreeMap, sync::LazyLock};

use ostwerk::{
    auth::{Authenticator, Role, canonical_org},
    config::Settings,
    domain::codes::{CodeList, TargetGroup},
    repository::tags,
    routes::{
        common::{code_filter, kldb_prefix_filter, merge_patch, text_filter},
        providers::dto::ProviderInput,
    },
    service::cursor::{CursorCodec, Position},
};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::helpers::SECRET;

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// Any text, with a bias towards what breaks parsers: control characters,
/// NUL, separators, non-ASCII and long strings.
fn text() -> impl Strategy<Value = String> {
    // Characters from `any::<char>()` rather than regexes like `.{0,24}`:
    // the same spread, generated several times faster.
    let chars = |len: std::ops::Range<usize>| prop::collection::vec(any::<char>(), len).prop_map(String::from_iter);
    prop_oneof![
        chars(0..24),
        "[\\x00-\\x1f .|%_\\\\]{0,8}",
        "[a-z0-9_-]{0,12}",
        chars(190..210),
        Just(String::new()),
        Just("office".to_owned()),
        Just(" OFFICE ".to_owned()),
    ]
}

/// Any JSON value, nested a little.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("JSON has no NaN or infinity", |f| f.is_finite()).prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A role name as an IdP might send it: ours, near misses, or anything.
fn role_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(Role::ALL.map(Role::as_str).to_vec()).prop_map(str::to_owned),
        prop::sample::select(vec!["Admin", "offline_access", "uma_authorization", " provider", ""])
            .prop_map(str::to_owned),
        text(),
    ]
}

/// A claim value: usually of the right type, sometimes not, sometimes absent (`None`).
fn claim(right: impl Strategy<Value = Value> + 'static) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![3 => right.prop_map(Some), 1 => json_value().prop_map(Some), 1 => Just(None)]
}

fn roles_value() -> impl Strategy<Value = Value> {
    prop::collection::vec(role_name(), 0..4).prop_map(|names| json!(names))
}

// ---------------------------------------------------------------------------
// Cursors
// ---------------------------------------------------------------------------

fn position() -> impl Strategy<Value = Position> {
    (text(), prop::collection::vec(text(), 0..4), text()).prop_map(|(order, key, scope)| Position { order, key, scope })
}

proptest! {
    #[test]
    fn a_cursor_decodes_to_the_position_it_was_encoded_from(position in position(), key in prop::collection::vec(any::<u8>(), 0..40)) {
        let codec = CursorCodec::new(&key);
        let cursor = codec.encode(&position);
        prop_assert_eq!(codec.decode(&cursor, &position.order, &position.scope).ok(), Some(position));
    }

    #[test]
    fn arbitrary_cursor_text_is_refused_not_a_panic(
        cursor in prop_oneof![".{0,200}", "[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_=+/-]{0,30}"],
        order in text(),
    ) {
        let codec = CursorCodec::new(b"cursor-key");
        let err = codec.decode(&cursor, &order, "").unwrap_err();
        prop_assert_eq!(err.problem.status().as_u16(), 400);
    }

    #[test]
    fn a_changed_character_makes_a_cursor_invalid(position in position(), at in any::<prop::sample::Index>(), to in any::<char>()) {
        let codec = CursorCodec::new(b"cursor-key");
        let cursor = codec.encode(&position);
        let mut chars: Vec<char> = cursor.chars().collect();
        let i = at.index(chars.len());
        prop_assume!(chars[i] != to);
        chars[i] = to;
        let tampered: String = chars.into_iter().collect();
        prop_assert!(codec.decode(&tampered, &position.order, &position.scope).is_err());
    }

    #[test]
    fn a_cursor_is_refused_under_another_key_order_or_list(position in position(), other in text()) {
        let cursor = CursorCodec::new(b"key-a").encode(&position);
        prop_assert!(CursorCodec::new(b"key-b").decode(&cursor, &position.order, &position.scope).is_err());
        let codec = CursorCodec::new(b"key-a");
        if other != position.order {
            prop_assert!(codec.decode(&cursor, &other, &position.scope).is_err());
        }
        if other != position.scope {
            prop_assert!(codec.decode(&cursor, &position.order, &other).is_err());
        }
    }
}

// ---------------------------------------------------------------------------
// The JWT claim mapping (a signed token with arbitrary claims → principal or 401)
// ---------------------------------------------------------------------------

/// One verifier (HS256 with the test secret, nothing else) and one runtime
/// for every case: building them per case took most of the time.
static VERIFIER: LazyLock<(Authenticator, tokio::runtime::Runtime)> = LazyLock::new(|| {
    let mut settings = Settings::defaults().unwrap();
    settings.jwt_issuer = None;
    settings.jwt_audience = None;
    settings.jwt_jwks_url = None;
    settings.oidc_issuer = None;
    let auth = Authenticator::new(&settings, Some(SECRET)).unwrap();
    (auth, tokio::runtime::Builder::new_current_thread().build().unwrap())
});

/// The principal of `token`, or the status of the refusal.
fn verify(token: &str) -> Result<ostwerk::auth::Principal, u16> {
    let (auth, runtime) = &*VERIFIER;
    runtime.block_on(auth.verify(token)).map_err(|e| e.problem.status().as_u16())
}

/// A valid-in-time HS256 token carrying `members` (absent ones left out).
fn token_with_claims(members: BTreeMap<&'static str, Option<Value>>) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({"iat": now, "exp": now + 600});
    for (name, value) in members {
        if let Some(value) = value {
            claims[name] = value;
        }
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// The roles a token states, by the SPEC: `roles` if present, else
/// `realm_access.roles` (`null` is absent).
fn expected_roles(roles: &Option<Value>, realm_access: &Option<Value>) -> Vec<Role> {
    let realm = realm_access.as_ref().and_then(|r| r.get("roles")).filter(|r| !r.is_null());
    let names = match (roles.as_ref().filter(|r| !r.is_null()), realm) {
        (Some(roles), _) => roles,
        (None, Some(realm)) => realm,
        (None, None) => return Vec::new(),
    };
    let mut roles: Vec<Role> =
        names.as_array().into_iter().flatten().filter_map(|n| n.as_str()).filter_map(Role::parse).collect();
    roles.sort_unstable();
    roles.dedup();
    roles
}

proptest! {
    #[test]
    fn any_claims_give_a_consistent_principal_or_a_401(
        sub in claim(text().prop_map(Value::String)),
        roles in claim(roles_value()),
        realm_access in claim(roles_value().prop_map(|r| json!({"roles": r}))),
        org in claim(text().prop_map(Value::String)),
    ) {
        let token = token_with_claims(BTreeMap::from([
            ("sub", sub), ("roles", roles.clone()), ("realm_access", realm_access.clone()), ("org", org),
        ]));
        match verify(&token) {
            Err(status) => prop_assert_eq!(status, 401),
            Ok(principal) => {
                prop_assert_eq!(&principal.roles, &expected_roles(&roles, &realm_access));
                prop_assert!(!principal.sub.trim().is_empty());
                prop_assert!(principal.sub.chars().count() <= 200 && !principal.sub.chars().any(char::is_control));
                if let Some(org) = &principal.org {
                    let canonical = canonical_org(org);
                    prop_assert_eq!(canonical.as_ref(), Some(org));
                    prop_assert!(org.chars().count() <= 200 && !org.chars().any(char::is_control));
                }
                if principal.roles.iter().any(|r| r.needs_org()) {
                    let org = principal.org.as_deref().unwrap_or_default();
                    prop_assert!(!org.is_empty() && !org.eq_ignore_ascii_case("office"));
                }
            }
        }
    }

    #[test]
    fn any_bearer_text_is_a_401_not_a_panic(token in prop_oneof![
        ".{0,300}",
        "[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,40}",
        json_value().prop_map(|v| format!("eyJhbGciOiJIUzI1NiJ9.{}.sig", base64_url(&v.to_string()))),
    ]) {
        prop_assert_eq!(verify(&token).err(), Some(401));
    }
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

// ---------------------------------------------------------------------------
// Merge patches (RFC 7396) onto a provider
// ---------------------------------------------------------------------------

const PROVIDER_MEMBERS: [&str; 7] = ["name", "kind", "azav_certified", "address", "district", "contact", "website"];

fn provider() -> ProviderInput {
    serde_json::from_value(json!({
        "name": "Bildungswerk Ost", "kind": "training_provider", "azav_certified": true,
        "address": {"street": "Eisenbahnstraße 66", "postal_code": "04315", "city": "Leipzig"},
        "district": "21", "website": "https://bildungswerk-ost.example.org"
    }))
    .unwrap()
}

/// A patch object: mostly the resource's own members, sometimes others.
fn patch() -> impl Strategy<Value = Value> {
    let key = prop_oneof![4 => prop::sample::select(PROVIDER_MEMBERS.to_vec()).prop_map(str::to_owned), 1 => text()];
    prop::collection::btree_map(key, json_value(), 0..4).prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn as_json(input: &ProviderInput) -> Value {
    serde_json::to_value(input).unwrap()
}

proptest! {
    #[test]
    fn any_patch_merges_or_is_refused_with_a_400(patch in prop_oneof![patch(), json_value()]) {
        match merge_patch(&provider(), &patch) {
            Ok(merged) => {
                // What the patch did not name is unchanged.
                let (before, after) = (as_json(&provider()), as_json(&merged));
                for member in PROVIDER_MEMBERS.iter().filter(|m| patch.get(**m).is_none()) {
                    prop_assert_eq!(&before[member], &after[member]);
                }
            }
            Err(e) => prop_assert_eq!(e.problem.status().as_u16(), 400),
        }
    }

    #[test]
    fn a_merge_patch_is_idempotent(patch in patch()) {
        if let Ok(once) = merge_patch(&provider(), &patch) {
            let twice = merge_patch(&once, &patch).unwrap();
            prop_assert_eq!(as_json(&once), as_json(&twice));
        }
    }

    #[test]
    fn a_patch_that_is_not_an_object_or_names_an_unknown_member_is_refused(
        not_object in json_value().prop_filter("not an object", |v| !v.is_object()),
        unknown in text().prop_filter("not a member", |k| !PROVIDER_MEMBERS.contains(&k.as_str())),
        value in json_value(),
    ) {
        prop_assert!(merge_patch(&provider(), &not_object).is_err());
        let unknown_member = json!({ unknown: value });
        prop_assert!(merge_patch(&provider(), &unknown_member).is_err());
    }

    #[test]
    fn a_patched_name_is_the_new_name_and_null_removes_a_member(name in text()) {
        let merged = merge_patch(&provider(), &json!({"name": name, "website": null}));
        if name.contains('\0') {
            prop_assert!(merged.is_err());
        } else {
            let merged = merged.unwrap();
            prop_assert_eq!(merged.name.as_deref(), Some(name.as_str()));
            prop_assert!(merged.website.is_none());
        }
    }
}

#[test]
fn an_empty_merge_patch_changes_nothing() {
    let merged = merge_patch(&provider(), &json!({})).unwrap();
    assert_eq!(as_json(&merged), as_json(&provider()));
}

// ---------------------------------------------------------------------------
// Code-list filters
// ---------------------------------------------------------------------------

/// `%`/`_`/`\` escaped with `\` back to the text (the inverse of the LIKE escaping).
fn unescape_like(pattern: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            // An unescaped wildcard would widen the filter.
            '%' | '_' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// The LIKE pattern `tags::contains` binds for `value`.
fn contains_pattern(value: &str) -> String {
    use sea_orm::sea_query::{Query, SqliteQueryBuilder};
    let (_, values) = Query::select()
        .column(ostwerk::entities::client::Column::Id)
        .and_where(tags::contains(ostwerk::entities::client::Column::TargetGroups, value))
        .build(SqliteQueryBuilder);
    match values.0.first() {
        Some(sea_orm::sea_query::Value::String(Some(pattern))) => pattern.clone(),
        other => panic!("unexpected bound value {other:?}"),
    }
}

proptest! {
    #[test]
    fn a_code_filter_accepts_exactly_the_codes_of_its_list(value in prop_oneof![
        prop::sample::select(TargetGroup::ALL.to_vec()).prop_map(|t| t.as_str().to_owned()),
        text(),
    ]) {
        let result = code_filter::<TargetGroup>("target_group", Some(value.clone()));
        match TargetGroup::parse(&value) {
            Some(_) => prop_assert_eq!(result.ok(), Some(Some(value))),
            None => prop_assert_eq!(result.unwrap_err().problem.status().as_u16(), 400),
        }
    }

    #[test]
    fn a_kldb_prefix_filter_is_one_to_five_digits_or_a_400(value in prop_oneof!["[0-9]{0,7}", " ?[0-9]{1,5} ?", text()]) {
        let trimmed = value.trim();
        match kldb_prefix_filter("occupation_code", Some(value.clone())) {
            Ok(None) => prop_assert!(trimmed.is_empty()),
            Ok(Some(prefix)) => {
                prop_assert_eq!(prefix.as_str(), trimmed);
                prop_assert!((1..=5).contains(&prefix.len()) && prefix.chars().all(|c| c.is_ascii_digit()));
            }
            Err(e) => prop_assert_eq!(e.problem.status().as_u16(), 400),
        }
    }

    #[test]
    fn a_text_filter_is_trimmed_and_blank_means_absent(value in text()) {
        let filtered = text_filter(Some(value.clone()));
        prop_assert_eq!(filtered.clone(), Some(value.trim().to_owned()).filter(|v| !v.is_empty()));
        prop_assert_eq!(text_filter(filtered.clone()), filtered);
    }

    #[test]
    fn stored_codes_round_trip_through_the_pipe_encoding(codes in prop::collection::vec("[a-z0-9_]{1,12}", 0..6)) {
        prop_assert_eq!(tags::split(&tags::join(&codes)), codes);
    }

    #[test]
    fn a_code_filter_matches_its_value_literally(value in text()) {
        let pattern = contains_pattern(&value);
        let inner = pattern.strip_prefix("%|").and_then(|p| p.strip_suffix("|%"));
        prop_assert!(inner.is_some(), "pattern {:?}", pattern);
        prop_assert_eq!(unescape_like(inner.unwrap_or_default()), Some(value.replace('|', "")));
    }
}
