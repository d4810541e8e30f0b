//! Wire shapes of providers.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    domain::{
        codes::ProviderKind,
        providers::ProviderFields,
        validate::Checker,
        values::{Address, Contact},
    },
    entities::provider::Model,
    error::ApiError,
};

/// A provider as written by the caller (`POST`, and the target of a merge patch).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "Bildungswerk Leipzig-Ost gGmbH",
    "kind": "training_provider",
    "azav_certified": true,
    "address": {"street": "Eisenbahnstraße 66", "postal_code": "04315", "city": "Leipzig"},
    "district": "21",
    "contact": {"name": "Petra Lehmann", "email": "kontakt@example.org", "phone": "+49 341 1234567"},
    "website": "https://bildungswerk-ost.example.org"
}))]
pub struct ProviderInput {
    /// Required. 1–300 characters.
    #[schema(required = true, nullable = false, min_length = 1, max_length = 300, pattern = "\\S")]
    pub name: Option<String>,
    /// Required. A code of the `provider_kinds` list.
    #[schema(value_type = ProviderKind, required = true)]
    pub kind: Option<String>,
    /// AZAV certification (needed for voucher-funded measures). Default `false`.
    pub azav_certified: Option<bool>,
    pub address: Option<Address>,
    /// A code of the `districts` list.
    #[schema(example = "21", max_length = 8)]
    pub district: Option<String>,
    pub contact: Option<Contact>,
    /// http(s) URL.
    #[schema(max_length = 2000, pattern = "^https?://[^/\\s][^\\s]*$")]
    pub website: Option<String>,
}

impl crate::routes::common::DistrictChecked for ProviderInput {
    type Fields = ProviderFields;

    /// Validates every field; `district_known` answers for the districts list.
    fn validate(self, district_known: impl Fn(&str) -> bool) -> Result<ProviderFields, ApiError> {
        let mut c = Checker::new();
        let name = c.required("name", self.name.as_deref()).map(|n| c.text("name", n, 300));
        let kind = c.required("kind", self.kind.as_deref()).and_then(|k| c.code::<ProviderKind>("kind", k));
        let address = self.address.and_then(|a| a.check(&mut c, "address"));
        let district = c.district("district", self.district.as_deref(), &district_known);
        let contact = self.contact.and_then(|a| a.check(&mut c, "contact"));
        let website = c.url("website", self.website.as_deref());
        c.finish()?;
        Ok(ProviderFields {
            name: name.unwrap_or_default(),
            kind: kind.unwrap_or(ProviderKind::Other),
            azav_certified: self.azav_certified.unwrap_or(false),
            address,
            district,
            contact,
            website,
        })
    }
}

/// A provider as read.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderDto {
    pub id: Uuid,
    pub name: String,
    pub kind: ProviderKind,
    pub azav_certified: bool,
    pub address: Option<Address>,
    pub district: Option<String>,
    pub contact: Option<Contact>,
    pub website: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Incremented on every change; the `ETag` is `"<version>"`.
    pub version: i32,
}

fn from_json<T: serde::de::DeserializeOwned>(v: &Option<serde_json::Value>) -> Option<T> {
    v.as_ref().and_then(|v| serde_json::from_value(v.clone()).ok())
}

impl From<&Model> for ProviderDto {
    fn from(m: &Model) -> Self {
        use crate::domain::codes::CodeList;
        Self {
            id: m.id,
            name: m.name.clone(),
            kind: ProviderKind::parse(&m.kind).unwrap_or(ProviderKind::Other),
            azav_certified: m.azav_certified,
            address: from_json(&m.address),
            district: m.district.clone(),
            contact: from_json(&m.contact),
            website: m.website.clone(),
            created_at: m.created_at,
            updated_at: m.updated_at,
            version: m.version,
        }
    }
}

impl From<&Model> for ProviderInput {
    fn from(m: &Model) -> Self {
        let dto = ProviderDto::from(m);
        Self {
            name: Some(dto.name),
            kind: Some(dto.kind.as_str().to_owned()),
            azav_certified: Some(dto.azav_certified),
            address: dto.address,
            district: dto.district,
            contact: dto.contact,
            website: dto.website,
        }
    }
}

/// Filters of `GET /providers`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProviderQuery {
    /// A code of `provider_kinds`.
    #[param(value_type = Option<ProviderKind>)]
    pub kind: Option<String>,
    /// A code of `districts`.
    #[param(min_length = 1)]
    pub district: Option<String>,
    pub azav_certified: Option<bool>,
    /// Part of the name (case-insensitive; at most 200 characters, else `400`).
    #[param(min_length = 1, max_length = 200)]
    pub q: Option<String>,
}
