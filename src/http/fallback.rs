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
}

pub async fn not_found_or_method_not_allowed(req: HttpRequest, table: web::Data<RouteTable>) -> HttpResponse {
    let err = match table.allowed(req.path()) {
        Some(methods) => {
            let mut err = ApiError::new(
                Problem::MethodNotAllowed,
                format!("{} is not allowed here; allowed: {}.", req.method(), methods.join(", ")),
            );
            err.allow = Some(methods.join(", "));
            err
        }
        None => ApiError::new(Problem::NotFound, "No such resource."),
    };
    super::request_context::error_response(err)
}
