//! `AuthUser`: the bearer-token extractor every protected handler takes.
use std::{future::Future, pin::Pin};

use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, http::header, web};

use super::Principal;
use crate::{error::ApiError, startup::AppState};

/// The verified caller. Extraction fails with `401` (no or bad token) or
/// `429` (this principal's rate limit is used up).
#[derive(Debug, Clone)]
pub struct AuthUser(pub Principal);

impl std::ops::Deref for AuthUser {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req);
        // Verified already by the anonymous rate limiter (once is enough).
        let verified = req.extensions().get::<crate::http::rate_limit::VerifiedPrincipal>().map(|v| v.0.clone());
        let req = req.clone();
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal(anyhow::anyhow!("AppState missing")))?;
            let token = token?;
            let principal = match verified {
                Some(principal) => principal,
                None => state.auth.verify(&token).await?,
            };
            if let Some(org) = &principal.org {
                req.extensions_mut().insert(crate::http::request_context::AccessLogOrg(org.clone()));
            }
            state.rate_limit.check(&principal, &req)?;
            Ok(AuthUser(principal))
        })
    }
}

pub fn bearer_token(req: &HttpRequest) -> Result<String, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("An Authorization: Bearer <token> header is required."))?;
    let value = value.to_str().map_err(|_| ApiError::unauthorized("The Authorization header is not ASCII."))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(token.trim().to_owned())
        }
        _ => Err(ApiError::unauthorized("The Authorization header must use the Bearer scheme.")),
    }
}
