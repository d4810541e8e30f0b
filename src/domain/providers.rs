//! A measure provider (Träger), validated.
use super::{
    codes::ProviderKind,
    values::{Address, Contact},
};

/// The writable fields of a provider after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderFields {
    pub name: String,
    pub kind: ProviderKind,
    pub azav_certified: bool,
    pub address: Option<Address>,
    pub district: Option<String>,
    pub contact: Option<Contact>,
    pub website: Option<String>,
}
