//! Small value types shared by several resources.
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::validate::Checker;

/// A postal address in Germany.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    #[schema(example = "Eisenbahnstraße 66", max_length = 200)]
    pub street: Option<String>,
    /// Five-digit German postal code.
    #[schema(example = "04315", min_length = 5, max_length = 5, pattern = "^[0-9]{5}$")]
    pub postal_code: Option<String>,
    #[schema(example = "Leipzig", max_length = 100)]
    pub city: Option<String>,
}

impl Address {
    /// Trims, checks, and drops an address with no content.
    pub fn check(self, c: &mut Checker, field: &str) -> Option<Address> {
        let address = Address {
            street: c.opt_text(&format!("{field}.street"), self.street.as_deref(), 200),
            postal_code: c.postal_code(&format!("{field}.postal_code"), self.postal_code.as_deref()),
            city: c.opt_text(&format!("{field}.city"), self.city.as_deref(), 100),
        };
        (address != Address::default()).then_some(address)
    }
}

/// A contact person or channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    #[schema(example = "Petra Lehmann", max_length = 200)]
    pub name: Option<String>,
    #[schema(
        example = "kontakt@example.org",
        max_length = 254,
        pattern = "^[^@\\s\\x00-\\x1f\\x7f-\\x9f]+@[^@\\s.\\x00-\\x1f\\x7f-\\x9f]+(\\.[^@\\s.\\x00-\\x1f\\x7f-\\x9f]+)+$"
    )]
    pub email: Option<String>,
    #[schema(example = "+49 341 1234567", max_length = 30, pattern = "^[ +/()-]*([0-9][ +/()-]*){5,}$")]
    pub phone: Option<String>,
}

impl Contact {
    pub fn check(self, c: &mut Checker, field: &str) -> Option<Contact> {
        let contact = Contact {
            name: c.opt_text(&format!("{field}.name"), self.name.as_deref(), 200),
            email: c.email(&format!("{field}.email"), self.email.as_deref()),
            phone: c.phone(&format!("{field}.phone"), self.phone.as_deref()),
        };
        (contact != Contact::default()).then_some(contact)
    }
}
