//! The OpenAPI document: info, tags, the bearer scheme, and the finishing
//! pass that derives `security` from the access rules and adds the standard
//! error responses each operation can give. Needs no database.
use actix_web::App;
use serde_json::{Value, json};
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
    domain::webhooks::{WebhookEvent, WebhookPayload},
    error::{FieldError, Problem, ProblemDetails},
    routes::{self, common::DateOrTimestamp},
};

mod examples;

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
        (name = "events", description = "The change feed: every change a caller may see, in commit order, for partners that poll."),
        (name = "funding", description = "Public funding programmes the office researched, and the applications it helps with."),
        (name = "audit", description = "The append-only audit log of personal-data access (admin)."),
        (name = "code-lists", description = "Every enumeration with German and English labels."),
        (name = "operations", description = "Health, readiness and metrics for the operator. No token needed."),
        (name = "fhir", description = include_str!("../docs/fhir-tag.md")),
    ),
    // `DateOrTimestamp` is named only by query parameters, and utoipa collects
    // no schemas from `IntoParams`: without it here its `$ref` dangles.
    components(schemas(ProblemDetails, FieldError, DateOrTimestamp, WebhookPayload)),
    // Relative: the document is served by the API itself, so generators
    // resolve paths (and webhook `link`s) against wherever they fetched it.
    servers((url = "/", description = "The server this document was fetched from: production, staging or a local instance alike")),
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
                         jobcenter), `exp`. The scopes listed on an operation are the roles allowed to call it. \
                         Tokens are checked as RFC8725 (JSON Web Token Best Current Practices) asks: \
                         the algorithm is pinned per key (`none` and algorithm switches are refused), \
                         `exp` is required and the lifetime capped, `iss` and `aud` are checked when \
                         configured.",
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
    (
        Problem::RequestTimeout,
        "The body did not arrive in full within the body timeout (`OSTWERK_BODY_TIMEOUT_SECS`); the connection is closed",
    ),
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
    let fhir_protected = crate::fhir::is_fhir_path(path) && path != "/fhir/r4/metadata";
    !path.starts_with("/api/v1/") && !fhir_protected
}

/// Sets `security` from the access rules and adds the error responses an
/// operation can give by its shape. Panics at start-up (and fails the spec
/// test) if a rule names an operation that does not exist.
fn finish(doc: &mut utoipa::openapi::OpenApi, rules: &[&Access]) {
    let mut unused: Vec<&str> = rules.iter().map(|r| r.operation_id).collect();
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, op) in operations_mut(item) {
            if is_public(path) {
                if crate::fhir::is_fhir_path(path) {
                    // The public `metadata` spends the anonymous budget; its 429 is an OperationOutcome too.
                    add_fhir_response(op, Problem::RateLimited);
                }
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
            if crate::fhir::is_fhir_path(path) {
                add_fhir_responses(op, path.contains('{'), matches!(method, HttpMethod::Patch));
                continue;
            }
            document_idempotency_key(op);
            add_response(op, Problem::BadRequest);
            add_response(op, Problem::Unauthorized);
            add_response(op, Problem::Forbidden);
            if path.contains('{') {
                add_response(op, Problem::NotFound);
            }
            if op.request_body.is_some() {
                add_response(op, Problem::RequestTimeout);
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

/// The error responses of a FHIR operation: the same statuses as the
/// referral API's, each an `OperationOutcome` as `application/fhir+json`.
fn add_fhir_responses(op: &mut Operation, has_id: bool, is_patch: bool) {
    let mut problems = vec![Problem::BadRequest, Problem::Unauthorized, Problem::Forbidden];
    if has_id {
        problems.push(Problem::NotFound);
    }
    if is_patch {
        problems.extend([
            Problem::PreconditionFailed,
            Problem::PayloadTooLarge,
            Problem::UnsupportedMediaType,
            Problem::ValidationFailed,
        ]);
    }
    problems.extend([Problem::RateLimited, Problem::ServiceUnavailable, Problem::Internal]);
    for problem in problems {
        add_fhir_response(op, problem);
    }
}

fn add_fhir_response(op: &mut Operation, problem: Problem) {
    let description = STANDARD_RESPONSES.iter().find(|(p, _)| *p == problem).map_or("", |(_, d)| d);
    op.responses.responses.entry(problem.status().as_u16().to_string()).or_insert_with(|| {
        RefOr::T(
            ResponseBuilder::new()
                .description(format!("{description} — as a FHIR OperationOutcome"))
                .content(crate::fhir::MEDIA_TYPE, Content::new(Some(Ref::from_schema_name("FhirOperationOutcome"))))
                .build(),
        )
    });
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
    declare_conditional_reads(&mut doc);
    declare_rate_limit_headers(&mut doc);
    let mut doc = shape(doc);
    examples::fill(&mut doc);
    doc
}

/// Every `GET` whose `200` carries an `ETag` also answers `If-None-Match`
/// with `304 Not Modified` (`http::preconditions::not_modified`): declared
/// here from that one fact, so a new read with an `ETag` is covered too.
fn declare_conditional_reads(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{
        Required,
        header::Header,
        path::{ParameterBuilder, ParameterIn},
        schema::{ObjectBuilder, Type},
    };
    for item in doc.paths.paths.values_mut() {
        let Some(op) = item.get.as_mut() else { continue };
        let has_etag = match op.responses.responses.get("200") {
            Some(RefOr::T(ok)) => ok.headers.keys().any(|h| h.eq_ignore_ascii_case("etag")),
            _ => false,
        };
        if !has_etag {
            continue;
        }
        let parameter = ParameterBuilder::new()
            .name("If-None-Match")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "ETags of the versions the caller holds (`\"3\"`, a list `\"2\", \"3\"`, weak `W/\"3\"`, or `*`). \
                 When one names the current version the answer is `304` without a body; an empty value is ignored.",
            ))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build();
        op.parameters.get_or_insert_with(Vec::new).push(RefOr::T(parameter));
        let mut not_modified = ResponseBuilder::new()
            .description(
                "Not modified: `If-None-Match` names the current version; no body. Reads of personal data are audited all the same.",
            )
            .build();
        not_modified
            .headers
            .insert("ETag".to_owned(), RefOr::T(Header::new(ObjectBuilder::new().schema_type(Type::String))));
        op.responses.responses.insert("304".to_owned(), RefOr::T(not_modified));
    }
}

/// `RateLimit-Policy` and `RateLimit` (`http::rate_limit`) on every answer
/// of every operation that spends a budget — all but the probes — declared
/// once as header components and referenced from each response (the
/// standard problem responses included).
fn declare_rate_limit_headers(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{
        header::HeaderBuilder,
        schema::{ObjectBuilder, Type},
    };
    const POLICY: &str = "RateLimit-Policy";
    const STATE: &str = "RateLimit";
    let components = doc.components.get_or_insert_with(Default::default);
    let header = |description: &str, example: &str| {
        RefOr::T(
            HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::String).max_length(Some(200))))
                .description(Some(description))
                .example(Some(serde_json::Value::String(example.to_owned())))
                .build(),
        )
    };
    components.headers.insert(
        POLICY.to_owned(),
        header(
            "The budget this answer counted against (IETF draft-ietf-httpapi-ratelimit-headers): `q` requests per \
             `w` seconds; policy `default` per principal (`OSTWERK_RATE_LIMIT`), `anonymous` per address for \
             requests without a valid token (`OSTWERK_RATE_LIMIT_ANON`). Absent when that limit is switched off.",
            "\"default\";q=600;w=60",
        ),
    );
    components.headers.insert(
        STATE.to_owned(),
        header(
            "Where the caller stands: `r` requests left, `t` seconds until the whole quota is available again \
             (an upper bound; after a `429`, `Retry-After` says when the next single request is allowed).",
            "\"default\";r=599;t=1",
        ),
    );
    let add = |response: &mut utoipa::openapi::Response| {
        for name in [POLICY, STATE] {
            response
                .headers
                .entry(name.to_owned())
                .or_insert_with(|| RefOr::Ref(Ref::new(format!("#/components/headers/{name}"))));
        }
    };
    for response in components.responses.values_mut() {
        if let RefOr::T(response) = response {
            add(response);
        }
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        if crate::http::rate_limit::is_probe(path) {
            continue;
        }
        for (_, op) in operations_mut(item) {
            // Public operations (`/metrics`) spend the anonymous budget too.
            add_response(op, Problem::RateLimited);
            for response in op.responses.responses.values_mut() {
                if let RefOr::T(response) = response {
                    add(response);
                }
            }
        }
    }
}

/// The document as committed in `openapi/openapi.json`.
pub fn to_pretty_json() -> String {
    let mut text = build().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

/// The generator-facing finishing pass (issue 15): merge-patch schemas,
/// list wrappers that `$ref` their items, every header the server sends, and
/// the top-level `webhooks`. Done on the JSON form, where "every response"
/// and "every schema" are plain walks; utoipa's model round-trips it
/// losslessly (a unit test checks that).
fn shape(doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let Ok(mut spec) = serde_json::to_value(&doc) else { return doc };
    patch_schemas(&mut spec);
    list_item_refs(&mut spec);
    bound_query_strings(&mut spec);
    // OWASP API9 (inventory): the one server entry is the instance itself,
    // whatever environment it runs in; the API is meant for partners.
    if let Some(server) = spec["servers"].get_mut(0) {
        server["x-internal"] = json!(false);
    }
    declare_headers(&mut spec);
    declare_webhooks(&mut spec);
    open_fhir_schemas(&mut spec);
    serde_json::from_value(spec).unwrap_or(doc)
}

/// The FHIR resource schemas name only `resourceType`; the resource itself
/// is defined by the FHIR specification, so every other member is allowed.
fn open_fhir_schemas(spec: &mut Value) {
    for (name, schema) in spec["components"]["schemas"].as_object_mut().into_iter().flatten() {
        if name.starts_with("Fhir") && name != "FhirTaskStatusPatch" {
            schema["additionalProperties"] = json!(true);
        }
    }
}

/// The name of the merge-patch schema for a PATCH body's `*Input` schema.
fn patch_name(input: &str) -> String {
    let base = input.strip_suffix("Input").unwrap_or(input);
    match base {
        "Programme" | "Application" => format!("Funding{base}Patch"),
        _ => format!("{base}Patch"),
    }
}

/// Every PATCH applies an RFC 7396 merge patch to the stored record, then
/// validates the result as the full `*Input`. So its body is the `*Input`
/// schema without `required`: any member may be left out, and `null` (which
/// removes a member) is allowed exactly where `*Input` allows it, i.e. on
/// the optional members only — `null` on a required one ends in `422`.
fn patch_schemas(spec: &mut Value) {
    let mut made = Vec::new();
    for (path, item) in spec["paths"].as_object_mut().into_iter().flatten() {
        // The FHIR view's PATCH takes FHIR's patch formats, not a merge patch of an input schema.
        if crate::fhir::is_fhir_path(path) {
            continue;
        }
        let Some(body) = item.get_mut("patch").and_then(|op| op.get_mut("requestBody")) else { continue };
        let Some(content) = body["content"].as_object_mut() else { continue };
        let Some(media) = content.values().next().cloned() else { continue };
        let Some(input) = media["schema"]["$ref"].as_str().and_then(|r| r.rsplit('/').next()).map(str::to_owned) else {
            continue;
        };
        let name = patch_name(&input);
        let mut media = media.clone();
        media["schema"] = json!({"$ref": format!("#/components/schemas/{name}")});
        content.clear();
        content.insert(MERGE_PATCH.to_owned(), media);
        body["description"] = json!(
            "A JSON merge patch (RFC 7396): only the members to change; `null` removes an optional member. \
             Sent as `application/merge-patch+json` (`application/json` is accepted too)."
        );
        made.push((input, name));
    }
    let schemas = &mut spec["components"]["schemas"];
    for (input, name) in made {
        let mut patch = schemas[&input].clone();
        for property in patch["properties"].as_object_mut().into_iter().flat_map(|p| p.values_mut()) {
            // "Required." describes the created record, not the patch.
            let Some(text) = property.get("description").and_then(Value::as_str) else { continue };
            let rest = ["Required.", "Required:", "Required,"]
                .iter()
                .find_map(|p| text.strip_prefix(p))
                .map(|r| capitalised(r.trim_start()));
            match rest {
                Some(rest) if rest.is_empty() => {
                    property.as_object_mut().map(|p| p.remove("description"));
                }
                Some(rest) => property["description"] = json!(rest),
                None => {}
            }
        }
        if let Some(obj) = patch.as_object_mut() {
            obj.remove("required");
            obj.insert(
                "description".into(),
                json!(format!(
                    "A merge patch (RFC 7396) of the {}: every member optional; `null` removes a member that may be absent.",
                    words(name.trim_end_matches("Patch"))
                )),
            );
        }
        schemas[&name] = patch;
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// `FundingApplication` → `funding application`.
fn words(camel: &str) -> String {
    let mut out = String::new();
    for c in camel.chars() {
        if c.is_uppercase() && !out.is_empty() {
            out.push(' ');
        }
        out.extend(c.to_lowercase());
    }
    out
}

const MERGE_PATCH: &str = "application/merge-patch+json";

/// `ListOf_X.items` inlines X (utoipa does for generic arguments), so
/// generators made one class per list; point it at the component instead.
fn list_item_refs(spec: &mut Value) {
    let Some(schemas) = spec["components"]["schemas"].as_object_mut() else { return };
    let lists: Vec<String> = schemas.keys().filter(|k| k.starts_with("ListOf_")).cloned().collect();
    for list in lists {
        let item = list.trim_start_matches("ListOf_").to_owned();
        let inline = schemas[&list]["properties"]["items"]["items"].clone();
        if inline.get("$ref").is_some() || inline.is_null() {
            continue;
        }
        schemas.entry(item.clone()).or_insert(inline);
        schemas[&list]["properties"]["items"]["items"] = json!({"$ref": format!("#/components/schemas/{item}")});
    }
}

/// The longest value each kind of query string can validly take, declared as
/// `maxLength` where the parameter has no `enum` or `const` (OWASP API4
/// string-limit). `strict_query` enforces exactly what is declared, so a
/// longer value is a `400` at the edge, before any handler runs.
fn query_string_bound(name: &str, format: Option<&str>) -> Option<u64> {
    match format {
        Some("uuid") => return Some(36),
        Some("date") => return Some(10),
        // RFC 3339 with nanoseconds and an offset is 35; `+0000` forms are shorter.
        Some("date-time") => return Some(40),
        _ => {}
    }
    Some(match name {
        // base64url(position JSON) "." base64url(16-byte tag): well under 300.
        "cursor" => 512,
        // The body members they filter on declare the same bounds.
        "district" => 8,
        "external_id" => 100,
        // A token `sub` as recorded in the audit log.
        "actor" => 255,
        "sort" => 11,
        "kind" => 7,
        "occupation_code" => 5,
        // Every dimension once: `district,target_group,occupation_field,measure_kind`.
        "group_by" => 51,
        // Every change-feed event type once (seven, comma-separated).
        "types" => 115,
        _ => return None,
    })
}

fn bound_query_strings(spec: &mut Value) {
    // `DateOrTimestamp` is named only by query parameters.
    if let Some(branches) = spec["components"]["schemas"]["DateOrTimestamp"]["anyOf"].as_array_mut() {
        for branch in branches {
            if let Some(max) = query_string_bound("", branch["format"].as_str()) {
                branch["maxLength"] = json!(max);
            }
        }
    }
    for op in spec["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|p| p.values_mut())
        .flat_map(|i| i.as_object_mut().into_iter().flat_map(|m| m.values_mut()))
    {
        for param in op.get_mut("parameters").and_then(Value::as_array_mut).into_iter().flatten() {
            if param["in"] != "query" {
                continue;
            }
            let name = param["name"].as_str().unwrap_or_default().to_owned();
            let schema = &mut param["schema"];
            let is_string = schema["type"] == "string";
            let bounded = ["maxLength", "enum", "const"].iter().any(|k| schema.get(*k).is_some());
            if !is_string || bounded {
                continue;
            }
            if let Some(max) = query_string_bound(&name, schema["format"].as_str()) {
                schema["maxLength"] = json!(max);
            }
        }
    }
}

fn header(description: &str, schema: Value) -> Value {
    json!({"description": description, "schema": schema})
}

/// Declares on each response the headers the server sends with it.
fn declare_headers(spec: &mut Value) {
    let request_id = header(
        "The request's id (the caller's own `X-Request-Id` when sane, else a new one); named in problem `instance`.",
        json!({"type": "string"}),
    );
    let retry_after = header("Seconds to wait before retrying.", json!({"type": "integer", "minimum": 0}));
    let location = header("Path of the created resource.", json!({"type": "string", "format": "uri-reference"}));
    let etag = header("Strong entity tag of the resource's version, e.g. `\"3\"`.", json!({"type": "string"}));
    let replayed = header(
        "`true` when this is the stored answer to an earlier request with the same `Idempotency-Key`.",
        json!({"type": "string", "enum": ["true"]}),
    );
    let version_schemas: Vec<String> = spec["components"]["schemas"]
        .as_object()
        .map(|s| s.iter().filter(|(_, v)| v["properties"].get("version").is_some()).map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    let add = |response: &mut Value, name: &str, value: &Value| {
        if let Some(headers) = response.as_object_mut().map(|r| r.entry("headers").or_insert_with(|| json!({}))) {
            headers.as_object_mut().into_iter().for_each(|h| {
                h.entry(name).or_insert_with(|| value.clone());
            });
        }
    };
    for (status, response) in spec["components"]["responses"].as_object_mut().into_iter().flatten() {
        add(response, "X-Request-Id", &request_id);
        if matches!(status.as_str(), "RateLimited" | "ServiceUnavailable") {
            add(response, "Retry-After", &retry_after);
        }
    }
    for item in spec["paths"].as_object_mut().into_iter().flat_map(|p| p.values_mut()) {
        for op in item.as_object_mut().into_iter().flat_map(|i| i.values_mut()) {
            let idempotent = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == crate::service::idempotency::HEADER));
            for param in op.get_mut("parameters").and_then(Value::as_array_mut).into_iter().flatten() {
                // `If-Match` is a header value when sent, never `null`.
                if param["in"] == "header" && param["schema"]["type"] == json!(["string", "null"]) {
                    param["schema"]["type"] = json!("string");
                }
                // An empty `If-Match` is a malformed request (`400`), not a stale version.
                if param["in"] == "header" && param["name"] == "If-Match" {
                    param["schema"]["minLength"] = json!(1);
                }
            }
            // A replayed create whose client was erased since answers `410`
            // (its stored answer was destroyed with the client's data).
            if idempotent && op["responses"].get("410").is_none() {
                op["responses"]["410"] = json!({
                    "description": "Replay of a create whose client has been erased since (GDPR Art. 17): the stored answer is gone",
                    "headers": {
                        "RateLimit": {"$ref": "#/components/headers/RateLimit"},
                        "RateLimit-Policy": {"$ref": "#/components/headers/RateLimit-Policy"}
                    },
                    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}
                });
            }
            for (status, response) in op["responses"].as_object_mut().into_iter().flatten() {
                if response.get("$ref").is_some() {
                    continue;
                }
                add(response, "X-Request-Id", &request_id);
                if matches!(status.as_str(), "429" | "503") {
                    add(response, "Retry-After", &retry_after);
                }
                if status == "201" {
                    add(response, "Location", &location);
                    let body = response["content"]["application/json"]["schema"]["$ref"].as_str().unwrap_or_default();
                    if version_schemas.iter().any(|v| body.ends_with(&format!("/{v}"))) {
                        add(response, "ETag", &etag);
                    }
                }
                if idempotent && status.starts_with('2') {
                    add(response, crate::service::idempotency::REPLAYED_HEADER, &replayed);
                }
            }
        }
    }
}

/// The OpenAPI 3.1 `webhooks`: one entry per event type, each a `POST` to
/// the subscriber's URL with the Standard Webhooks headers and that event's
/// payload schema.
fn declare_webhooks(spec: &mut Value) {
    let headers = [
        ("webhook-id", "The event's id (a UUID); the same on every retry (deduplicate on it)."),
        ("webhook-timestamp", "Unix seconds when this attempt was signed; reject ones far from now."),
        (
            "webhook-signature",
            "`v1,<base64 HMAC-SHA256 of \"<webhook-id>.<webhook-timestamp>.<body>\">` keyed with the \
             base64-decoded secret after `whsec_` (Standard Webhooks). For 24 h after a secret rotation \
             two, space-separated: the new secret's and the previous one's; either verifying is enough.",
        ),
    ];
    let parameters: Vec<Value> = headers
        .iter()
        .map(|(name, description)| {
            json!({"name": name, "in": "header", "required": true, "description": description, "schema": {"type": "string"}})
        })
        .collect();
    let mut webhooks = serde_json::Map::new();
    for event in WebhookEvent::ALL {
        let schema = match event {
            WebhookEvent::ReferralCreated => "ReferralCreatedEvent",
            WebhookEvent::ReferralStatusChanged => "ReferralStatusChangedEvent",
            WebhookEvent::MeasureChanged => "MeasureChangedEvent",
        };
        let id = event.as_str().replace('.', "_");
        webhooks.insert(
            event.as_str().to_owned(),
            json!({"post": {
                "tags": ["webhooks"],
                "operationId": format!("webhook_{id}"),
                "summary": format!("`{}` sent to subscribers", event.as_str()),
                "description": "Sent to every active subscription of this event whose organisation may see the \
                    resource, signed with the subscription's secret. Answer any `2xx` within the timeout; \
                    anything else is retried with exponential backoff for 24 h.",
                "parameters": parameters,
                "requestBody": {"required": true, "content": {"application/json": {
                    "schema": {"$ref": format!("#/components/schemas/{schema}")}
                }}},
                "responses": {"2XX": {"description": "Received; not sent again"}},
                "security": [],
                // Ostwerk calls the partner here, not the other way round:
                // client generators skip operations marked internal, so they
                // make no method for it (openapi-generator 7.x otherwise
                // emits uncompilable Python for 3.1 `webhooks`), while the
                // payload models still come from `components`.
                "x-internal": true,
            }}),
        );
    }
    spec["webhooks"] = Value::Object(webhooks);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shaping_pass_round_trips_through_utoipas_model() {
        // Arrange: `shape` falls back to the unshaped document when utoipa
        // cannot read the JSON back, so that must never happen.
        let (_, mut doc) =
            App::new().into_utoipa_app().openapi(ApiDoc::openapi()).configure(routes::all).split_for_parts();
        finish(&mut doc, &routes::access_rules());
        let mut spec = serde_json::to_value(&doc).unwrap();
        patch_schemas(&mut spec);
        list_item_refs(&mut spec);
        declare_headers(&mut spec);
        declare_webhooks(&mut spec);
        open_fhir_schemas(&mut spec);

        // Act
        let back: utoipa::openapi::OpenApi = serde_json::from_value(spec.clone()).unwrap();

        // Assert
        assert_eq!(serde_json::to_value(&back).unwrap(), spec);
    }

    #[test]
    fn patch_schemas_are_named_after_their_resource() {
        assert_eq!(patch_name("MeasureInput"), "MeasurePatch");
        assert_eq!(patch_name("ProgrammeInput"), "FundingProgrammePatch");
        assert_eq!(patch_name("ApplicationInput"), "FundingApplicationPatch");
        assert_eq!(words("FundingApplication"), "funding application");
        assert_eq!(capitalised("at least one."), "At least one.");
    }
}
