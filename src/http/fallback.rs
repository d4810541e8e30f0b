//! Answers for requests no route took: `405` with `Allow` when the path
//! exists with other methods, else `404`. actix itself answers `404` for a
//! wrong method, because each `#[get]`/`#[post]` is a separate guarded route.
use actix_web::{HttpRequest, HttpResponse, dev::ResourceDef, web};

use crate::error::{ApiError, Problem};

/// Path templates and their methods, taken from the OpenAPI document so the
/// table cannot disagree with the routes.
pub struct RouteTable(Vec<(ResourceDef, Vec<String>)>);

impl RouteTable {
    pub fn from_openapi(doc: &utoipa::openapi::OpenApi) -> Self {
        let mut entries = Vec::new();
        for (path, item) in &doc.paths.paths {
            let mut methods = Vec::new();
            let ops = [
                ("GET", item.get.is_some()),
                ("POST", item.post.is_some()),
                ("PUT", item.put.is_some()),
                ("PATCH", item.patch.is_some()),
                ("DELETE", item.delete.is_some()),
            ];
            for (m, present) in ops {
                if present {
                    methods.push(m.to_owned());
                }
            }
            if methods.contains(&"GET".to_owned()) {
                methods.push("HEAD".to_owned());
            }
            entries.push((ResourceDef::new(path.as_str()), methods));
        }
        // Fixed, non-API paths.
        for path in ["/livez", "/healthz", "/readyz", "/metrics", "/api-docs/openapi.json"] {
            entries.push((ResourceDef::new(path), vec!["GET".to_owned(), "HEAD".to_owned()]));
        }
        RouteTable(entries)
    }

    fn allowed(&self, path: &str) -> Option<&[String]> {
        self.0.iter().find(|(def, _)| def.is_match(path)).map(|(_, m)| m.as_slice())
    }

    /// `405` when `req` names a path without parameters (such as
    /// `/api/v1/referrals/batch`) with a method it does not have.
    ///
    /// actix routes `GET /api/v1/referrals/batch` to `GET /api/v1/referrals/{id}`
    /// and fails on the id, so without this the caller got a `400` about a
    /// malformed UUID instead of the `405` that names the allowed methods.
    pub fn wrong_method_on_fixed_path(&self, req: &HttpRequest) -> Option<ApiError> {
        let (_, methods) = self
            .0
            .iter()
            .find(|(def, _)| def.pattern().is_some_and(|p| !p.contains('{')) && def.is_match(req.path()))?;
        (!methods.iter().any(|m| m == req.method().as_str())).then(|| method_not_allowed(req, methods))
    }
}

fn method_not_allowed(req: &HttpRequest, methods: &[String]) -> ApiError {
    let mut err = ApiError::new(
        Problem::MethodNotAllowed,
        format!("{} is not allowed here; allowed: {}.", req.method(), methods.join(", ")),
    );
    err.allow = Some(methods.join(", "));
    err
}

pub async fn not_found_or_method_not_allowed(req: HttpRequest, table: web::Data<RouteTable>) -> HttpResponse {
    let err = match table.allowed(req.path()) {
        Some(methods) => method_not_allowed(&req, methods),
        None => ApiError::new(Problem::NotFound, "No such resource."),
    };
    super::request_context::error_response(err)
}
