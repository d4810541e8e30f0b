//! Webhooks the Standard Webhooks way (<https://www.standardwebhooks.com>):
//! signing, secrets, event names, and which targets are refused.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;

/// What a subscriber can be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum WebhookEvent {
    #[serde(rename = "referral.created")]
    ReferralCreated,
    #[serde(rename = "referral.status_changed")]
    ReferralStatusChanged,
    #[serde(rename = "measure.changed")]
    MeasureChanged,
}

impl WebhookEvent {
    pub const ALL: [WebhookEvent; 3] = [Self::ReferralCreated, Self::ReferralStatusChanged, Self::MeasureChanged];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReferralCreated => "referral.created",
            Self::ReferralStatusChanged => "referral.status_changed",
            Self::MeasureChanged => "measure.changed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// The body of every webhook request, one shape per event type, told apart
/// by `type` (the Standard Webhooks envelope: `type`, `timestamp`, `data`).
/// Declared in the spec's top-level `webhooks` and as `DeliveryDto.payload`;
/// the outbox serialises exactly these types, so the two cannot drift.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(discriminator(property_name = "type", mapping(
    ("referral.created" = "#/components/schemas/ReferralCreatedEvent"),
    ("referral.status_changed" = "#/components/schemas/ReferralStatusChangedEvent"),
    ("measure.changed" = "#/components/schemas/MeasureChangedEvent"),
)))]
pub enum WebhookPayload {
    ReferralCreated(ReferralCreatedEvent),
    ReferralStatusChanged(ReferralStatusChangedEvent),
    MeasureChanged(MeasureChangedEvent),
}

/// `referral.created`: a referral the subscriber may see was created.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReferralCreatedEvent {
    #[serde(rename = "type")]
    pub type_: ReferralCreatedType,
    /// When the event happened (RFC 3339, UTC, microseconds).
    pub timestamp: chrono::DateTime<chrono::Utc>,
    pub data: ReferralEventData,
}

/// `referral.status_changed`: a referral the subscriber may see changed status.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReferralStatusChangedEvent {
    #[serde(rename = "type")]
    pub type_: ReferralStatusChangedType,
    /// When the event happened (RFC 3339, UTC, microseconds).
    pub timestamp: chrono::DateTime<chrono::Utc>,
    pub data: ReferralEventData,
}

/// `measure.changed`: a measure was created, changed or deleted.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MeasureChangedEvent {
    #[serde(rename = "type")]
    pub type_: MeasureChangedType,
    /// When the event happened (RFC 3339, UTC, microseconds).
    pub timestamp: chrono::DateTime<chrono::Utc>,
    pub data: MeasureEventData,
}

/// The `type` of a `referral.created` payload.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub enum ReferralCreatedType {
    #[serde(rename = "referral.created")]
    ReferralCreated,
}

/// The `type` of a `referral.status_changed` payload.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub enum ReferralStatusChangedType {
    #[serde(rename = "referral.status_changed")]
    ReferralStatusChanged,
}

/// The `type` of a `measure.changed` payload.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub enum MeasureChangedType {
    #[serde(rename = "measure.changed")]
    MeasureChanged,
}

/// What a referral event points at. The payload is thin on purpose: fetch
/// `link` (with the subscriber's own token) for the details, so personal
/// data never travels in a webhook.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferralEventData {
    /// Always `referral`.
    #[schema(pattern = "^referral$")]
    pub resource: String,
    pub id: uuid::Uuid,
    /// The status after the event.
    #[schema(value_type = crate::domain::codes::ReferralStatus)]
    pub status: String,
    /// The status before a `referral.status_changed` (absent on `referral.created`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = crate::domain::codes::ReferralStatus, nullable = false)]
    pub previous_status: Option<String>,
    /// The referral's path, e.g. `/api/v1/referrals/{id}`: a relative
    /// reference resolved against the origin the subscriber calls the API
    /// at (the spec's `servers` entry is `/`), because one service can be
    /// reached under several host names and the payload is signed once.
    #[schema(format = "uri-reference", pattern = "^/api/v1/referrals/")]
    pub link: String,
}

/// What a measure event points at.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeasureEventData {
    /// Always `measure`.
    #[schema(pattern = "^measure$")]
    pub resource: String,
    pub id: uuid::Uuid,
    /// A code of `measure_statuses`, or `deleted` when the measure was deleted.
    #[schema(pattern = "^(planned|open|running|closed|deleted)$")]
    pub status: String,
    /// The measure's path, e.g. `/api/v1/measures/{id}` (relative, like a referral's `link`).
    #[schema(format = "uri-reference", pattern = "^/api/v1/measures/")]
    pub link: String,
}

/// A new signing secret: `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("whsec_{}", STANDARD.encode(bytes))
}

/// `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, keyed with the
/// base64-decoded part of the secret after `whsec_`.
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap_or(secret)).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Some(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// Whether `ip` is refused as a webhook target: everything that is not a
/// public unicast address a partner's server could have — loopback, private,
/// link-local, shared (CGNAT), unspecified, multicast, broadcast, reserved,
/// documentation and benchmarking ranges. IPv6 forms that carry an IPv4
/// address (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo) are judged by
/// that IPv4 address, because that is where a connection would end up:
/// `[64:ff9b::7f00:1]` reaches 127.0.0.1 through a NAT64 gateway.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_refused_v4(v4),
        IpAddr::V6(v6) => is_refused_v6(v6),
    }
}

fn is_refused_v4(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0 // "this network", 0.0.0.0/8
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT), 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments, 192.0.0.0/24
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast, 192.88.99.0/24
        || (a == 198 && (b & 0xfe) == 18) // benchmarking, 198.18.0.0/15
        || a >= 240 // reserved, 240.0.0.0/4
}

fn is_refused_v6(v6: Ipv6Addr) -> bool {
    if v6.is_unspecified() || v6.is_loopback() {
        return true;
    }
    if let Some(v4) = embedded_ipv4(v6) {
        return v4.iter().any(|v4| is_refused_v4(*v4));
    }
    let s = v6.segments();
    // Only global unicast (2000::/3) can be a partner's server. This one rule
    // refuses multicast (ff00::/8), link-local (fe80::/10), the old
    // site-local (fec0::/10), unique-local (fc00::/7), discard-only
    // (100::/64) and local-use NAT64 (64:ff9b:1::/48, whose embedding
    // depends on the operator's prefix length and so cannot be judged).
    if (s[0] & 0xe000) != 0x2000 {
        return true;
    }
    (s[0] == 0x2001 && s[1] == 0x0db8) // documentation, 2001:db8::/32
        || (s[0] & 0xfff0) == 0x3ff0 // documentation, 3fff::/20
        || (s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0) // benchmarking, 2001:2::/48
        || (s[0] == 0x2001 && (s[1] & 0xffe0) == 0x0000) // IETF protocol assignments, 2001::/23
}

/// The IPv4 addresses an IPv6 address leads to, for the forms that embed one.
fn embedded_ipv4(v6: Ipv6Addr) -> Option<Vec<Ipv4Addr>> {
    let s = v6.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(mapped) = v6.to_ipv4_mapped() {
        return Some(vec![mapped]); // ::ffff:a.b.c.d
    }
    if s[..6].iter().all(|&x| x == 0) {
        return Some(vec![v4(s[6], s[7])]); // IPv4-compatible ::a.b.c.d (deprecated)
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|&x| x == 0) {
        return Some(vec![v4(s[6], s[7])]); // NAT64 well-known prefix, 64:ff9b::/96
    }
    if s[0] == 0x2002 {
        return Some(vec![v4(s[1], s[2])]); // 6to4, 2002:AABB:CCDD::/48
    }
    if s[0] == 0x2001 && s[1] == 0 {
        // Teredo, 2001::/32: the server's address, and the client's, stored inverted.
        return Some(vec![v4(s[2], s[3]), v4(!s[6], !s[7])]);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_reference() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        let sig = signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    fn refused(ip: &str) -> bool {
        is_private(ip.parse().unwrap())
    }

    #[test]
    fn private_and_special_ipv4_ranges_are_refused() {
        for ip in [
            "127.0.0.1",
            "127.255.255.254",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "198.19.255.255",
            "192.88.99.1",
        ] {
            assert!(refused(ip), "{ip} must be refused");
        }
    }

    #[test]
    fn special_ipv6_ranges_are_refused() {
        for ip in [
            "::",
            "::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "feff::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "ff0e::1",
            "100::1",
            "2001:db8::1",
            "3fff::1",
            "2001:2::1",
            "2001:10::1",
            "64:ff9b:1::a00:1",
        ] {
            assert!(refused(ip), "{ip} must be refused");
        }
    }

    #[test]
    fn ipv6_forms_embedding_a_refused_ipv4_are_refused() {
        for ip in [
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "::10.0.0.1",
            "::169.254.169.254",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::192.168.0.1",
            "2002:7f00:1::",
            "2002:a00:1::1",
            "2002:a9fe:a9fe::",
            // Teredo: a private server, or a private client (stored inverted).
            "2001:0:a00:1::1",
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
        ] {
            assert!(refused(ip), "{ip} must be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "141.39.1.1",
            "93.184.215.14",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "198.20.0.1",
            "2a00:1450:4001:82b::200e",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
        ] {
            assert!(!refused(ip), "{ip} must pass");
        }
    }

    #[test]
    fn secrets_have_the_whsec_prefix_and_32_bytes() {
        let s = new_secret();
        assert!(s.starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&s[6..]).unwrap().len(), 32);
    }
}
