//! The OpenAPI document: info, tags, the bearer scheme, and the finishing
//! pass that derives `security` from the access rules and adds the standard
//! error responses each operation can give. Needs no database.
use actix_web::App;
use utoipa::{
    Modify, OpenApi,
    openapi::{
        Content, PathItem, Ref, RefOr, ResponseBuilder,
        path::{HttpMethod, Operation},
        security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme},
    },
};
use utoipa_actix_web::AppExt;

use crate::{
    auth::Access,
    error::{FieldError, Problem, ProblemDetails},
    routes::{self, common::DateOrTimestamp},
};

pub const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ostwerk API",
        description = include_str!("../docs/openapi-intro.md"),
        license(name = "EUPL-1.2", identifier = "EUPL-1.2"),
        contact(name = "Ostwerk", url = "https://ostwerk.dev"),
    ),
    tags(
        (name = "clients", description = "Clients (Klient:innen) and their counselling log. Personal data: every read and write is audited."),
        (name = "employers", description = "Local employers, their counselling log and their vacancies."),
        (name = "vacancies", description = "Jobs, apprenticeships, internships and volunteer posts, searchable across employers."),
        (name = "providers", description = "Organisations that run measures (Träger)."),
        (name = "measures", description = "Training and activation measures (Maßnahmen) with their seats."),
        (name = "referrals", description = "Referrals of clients into measures or to vacancies, with their status machine and history."),
        (name = "statistics", description = "Anonymised demand, outcome and funding statistics. Every count of people is perturbed by the cell-key method: a fixed noise of at most ±2 per group of people (the same in every table, every day), averaging to 0, so subtracting two answers reveals no one; totals are perturbed on their own and need not equal the sum of the rows. After the noise, counts from 1 to `min_cell − 1` are `null` (small-cell rule). Seats and sums of money are exact. Labels in the caller's language stand beside codes; `Accept: text/csv` gives a semicolon-separated CSV (UTF-8 with BOM; German headers with `Accept-Language: de`)."),
        (name = "webhooks", description = "Signed event notifications to partner systems (Standard Webhooks)."),
        (name = "funding", description = "Public funding programmes the office researched, and the applications it helps with."),
        (name = "audit", description = "The append-only audit log of personal-data access (admin)."),
        (name = "code-lists", description = "Every enumeration with German and English labels."),
        (name = "operations", description = "Health, readiness and metrics for the operator. No token needed."),
    ),
    // `DateOrTimestamp` is named only by query parameters, and utoipa collects
    // no schemas from `IntoParams`: without it here its `$ref` dangles.
    components(schemas(ProblemDetails, FieldError, DateOrTimestamp)),
    modifiers(&BearerScheme),
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT signed with the service's HS256 secret or by the configured OIDC provider. \
                         Claims: `sub`, `roles` (or `realm_access.roles`), `org` (for provider, employer, \
                         jobcenter), `exp`. The scopes listed on an operation are the roles allowed to call it.",
                    ))
                    .build(),
            ),
        );
        for problem in STANDARD_RESPONSES {
            components.responses.insert(
                response_name(problem.0),
                RefOr::T(
                    ResponseBuilder::new()
                        .description(problem.1)
                        .content(
                            "application/problem+json",
                            Content::new(Some(Ref::from_schema_name("ProblemDetails"))),
                        )
                        .build(),
                ),
            );
        }
    }
}

/// Reusable problem responses: (problem, description).
const STANDARD_RESPONSES: &[(Problem, &str)] = &[
    (
        Problem::BadRequest,
        "Malformed request: bad JSON, wrong types, unknown fields, bad path or query parameters, or a tampered cursor (`errors` names the fields)",
    ),
    (Problem::Unauthorized, "Missing, invalid or expired bearer token (`WWW-Authenticate: Bearer`)"),
    (Problem::Forbidden, "The caller's roles may not do this at all"),
    (Problem::NotFound, "Not found, or not visible to this caller"),
    (Problem::PreconditionFailed, "`If-Match` does not match the current version"),
    (Problem::PayloadTooLarge, "Body larger than 1 MiB"),
    (Problem::UnsupportedMediaType, "Body is not JSON"),
    (
        Problem::ValidationFailed,
        "Well-formed, but invalid values (`errors` names each field), or an Idempotency-Key reused with a different body",
    ),
    (
        Problem::RateLimited,
        "Rate limit used up (`Retry-After`): this principal's requests per minute, its statistics or matching requests in flight, or — without a valid token — the budget of the caller's address",
    ),
    (Problem::ServiceUnavailable, "Database unreachable (`Retry-After`)"),
    (Problem::Internal, "Unexpected error; quote the `instance` when reporting it"),
];

fn response_name(problem: Problem) -> String {
    let mut name = String::new();
    for part in problem.slug().split('-') {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            name.extend(first.to_uppercase());
            name.push_str(chars.as_str());
        }
    }
    name
}

fn add_response(op: &mut Operation, problem: Problem) {
    let status = problem.status().as_u16().to_string();
    op.responses
        .responses
        .entry(status)
        .or_insert_with(|| RefOr::Ref(Ref::new(format!("#/components/responses/{}", response_name(problem)))));
}

/// Operations that deliberately need no token.
pub fn is_public(path: &str) -> bool {
    !path.starts_with("/api/v1/")
}

/// Sets `security` from the access rules and adds the error responses an
/// operation can give by its shape. Panics at start-up (and fails the spec
/// test) if a rule names an operation that does not exist.
fn finish(doc: &mut utoipa::openapi::OpenApi, rules: &[&Access]) {
    let mut unused: Vec<&str> = rules.iter().map(|r| r.operation_id).collect();
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, op) in operations_mut(item) {
            if is_public(path) {
                continue;
            }
            let id = op.operation_id.clone().unwrap_or_default();
            if let Some(rule) = rules.iter().find(|r| r.operation_id == id) {
                unused.retain(|u| *u != id);
                op.security = Some(vec![SecurityRequirement::new(BEARER, rule.roles.iter().map(|r| r.as_str()))]);
                let roles: Vec<_> = rule.roles.iter().map(|r| format!("`{r}`")).collect();
                let note = format!("\n\n**Roles:** {}.", roles.join(", "));
                op.description = Some(format!("{}{note}", op.description.clone().unwrap_or_default()));
            }
            document_idempotency_key(op);
            add_response(op, Problem::BadRequest);
            add_response(op, Problem::Unauthorized);
            add_response(op, Problem::Forbidden);
            if path.contains('{') {
                add_response(op, Problem::NotFound);
            }
            if op.request_body.is_some() {
                add_response(op, Problem::PayloadTooLarge);
                add_response(op, Problem::UnsupportedMediaType);
                add_response(op, Problem::ValidationFailed);
            }
            if matches!(method, HttpMethod::Patch | HttpMethod::Delete) {
                add_response(op, Problem::PreconditionFailed);
            }
            add_response(op, Problem::RateLimited);
            add_response(op, Problem::ServiceUnavailable);
            add_response(op, Problem::Internal);
        }
    }
    assert!(unused.is_empty(), "access rules name unknown operations: {unused:?}");
}

/// Gives every `Idempotency-Key` header parameter the shape the service
/// accepts (1–255 printable ASCII; else `400`), in one place rather than in
/// each handler's `params(...)`.
fn document_idempotency_key(op: &mut Operation) {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    for param in op.parameters.iter_mut().flatten() {
        if let RefOr::T(param) = param
            && param.name.eq_ignore_ascii_case(crate::service::idempotency::HEADER)
        {
            param.schema = Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(255))
                    .pattern(Some("^[\\x20-\\x7e]+$"))
                    .into(),
            );
        }
    }
}

pub fn operations_mut(item: &mut PathItem) -> Vec<(HttpMethod, &mut Operation)> {
    let mut ops = Vec::new();
    if let Some(op) = item.get.as_mut() {
        ops.push((HttpMethod::Get, op));
    }
    if let Some(op) = item.post.as_mut() {
        ops.push((HttpMethod::Post, op));
    }
    if let Some(op) = item.put.as_mut() {
        ops.push((HttpMethod::Put, op));
    }
    if let Some(op) = item.patch.as_mut() {
        ops.push((HttpMethod::Patch, op));
    }
    if let Some(op) = item.delete.as_mut() {
        ops.push((HttpMethod::Delete, op));
    }
    ops
}

/// The complete document, exactly as served at `/api-docs/openapi.json`.
pub fn build() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = App::new().into_utoipa_app().openapi(ApiDoc::openapi()).configure(routes::all).split_for_parts();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    finish(&mut doc, &routes::access_rules());
    doc
}

/// The document as committed in `openapi/openapi.json`.
pub fn to_pretty_json() -> String {
    let mut text = build().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}
