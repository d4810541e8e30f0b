//! HTTP handlers, one folder per resource. `configure` registers every API
//! route; `ACCESS` lists every access rule (the OpenAPI `security` entries
//! are generated from it).
pub mod audit_events;
pub mod clients;
pub mod code_lists;
pub mod common;
pub mod employers;
pub mod events;
pub mod fhir;
pub mod funding;
pub mod measures;
pub mod ops;
pub mod providers;
pub mod referrals;
pub mod statistics;
pub mod vacancies;
pub mod webhooks;

use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::Access;

/// Every route under `/api/v1`.
pub fn configure(cfg: &mut ServiceConfig) {
    // Routes are tried in this order, each `{id}` pattern by a regex: the
    // most frequent request, a client read, comes first.
    clients::configure(cfg);
    providers::configure(cfg);
    employers::configure(cfg);
    vacancies::configure(cfg);
    measures::configure(cfg);
    referrals::configure(cfg);
    statistics::configure(cfg);
    webhooks::configure(cfg);
    events::configure(cfg);
    funding::configure(cfg);
    audit_events::configure(cfg);
    code_lists::configure(cfg);
}

/// Every access rule of every operation.
pub fn access_rules() -> Vec<&'static Access> {
    [
        providers::ACCESS,
        clients::ACCESS,
        employers::ACCESS,
        vacancies::ACCESS,
        measures::ACCESS,
        referrals::ACCESS,
        statistics::ACCESS,
        webhooks::ACCESS,
        events::ACCESS,
        funding::ACCESS,
        audit_events::ACCESS,
        code_lists::ACCESS,
        fhir::ACCESS,
    ]
    .concat()
}

/// Every route of the service: the API under `/api/v1` and the operator endpoints.
pub fn all(cfg: &mut ServiceConfig) {
    cfg.service(utoipa_actix_web::scope("/api/v1").configure(configure));
    cfg.service(utoipa_actix_web::scope(crate::fhir::BASE_PATH).configure(fhir::configure));
    ops::configure(cfg);
}
