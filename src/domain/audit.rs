//! Who is reading or writing personal data, for the audit log (SPEC §5).

/// The acting principal and the request, recorded with every audit event.
#[derive(Debug, Clone)]
pub struct AuditContext {
    pub actor: String,
    pub actor_org: Option<String>,
    /// Our own id of the request (never the caller's).
    pub request_id: String,
    /// The caller's `X-Request-Id`, when it sent a sane one.
    pub client_request_id: Option<String>,
}

/// One thing done to personal data.
#[derive(Debug, Clone, Copy)]
pub struct AuditEntry {
    pub action: &'static str,
    pub resource: &'static str,
    pub resource_id: Option<uuid::Uuid>,
    pub client_id: Option<uuid::Uuid>,
}

/// Audit actions (the `action` column); stable, filterable names.
pub mod action {
    pub const CLIENT_CREATE: &str = "client.create";
    pub const CLIENT_READ: &str = "client.read";
    pub const CLIENT_LIST: &str = "client.list";
    pub const CLIENT_UPDATE: &str = "client.update";
    pub const CLIENT_EXPORT: &str = "client.export";
    pub const CLIENT_MATCHES: &str = "client.matches";
    pub const CLIENT_ERASE: &str = "client.erase";
    pub const CONSULTATION_LIST: &str = "consultation.list";
    pub const CONSULTATION_CREATE: &str = "consultation.create";
    pub const CONSULTATION_READ: &str = "consultation.read";
    /// An idempotent create answered again from the stored response.
    pub const REPLAY: &str = "replay";
    pub const REFERRAL_CREATE: &str = "referral.create";
    pub const FUNDING_APPLICATION_READ: &str = "funding_application.read";
    pub const FUNDING_APPLICATION_WRITE: &str = "funding_application.write";
    pub const REFERRAL_CLIENT_SUMMARY: &str = "referral.client_summary";
    /// A referral's free text (`note`, `reason_note`, the events' notes) was shown.
    pub const REFERRAL_NOTE_READ: &str = "referral.note_read";
}
