//! Field validation that collects every problem of a request at once, so a
//! caller fixing a form sees all bad fields in one `422`.
use super::codes::CodeList;
use crate::error::{ApiError, FieldError};

#[derive(Debug, Default)]
pub struct Checker {
    errors: Vec<FieldError>,
}

/// ISO 639-1 language codes.
pub const ISO_639_1: &str = "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy \
da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik \
io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt \
my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so \
sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu";

/// Most entries of a list field (`languages`, `occupation_codes`). The list is
/// stored comma-joined in a `VARCHAR(200)` / `VARCHAR(400)` column; 50 two-
/// letter or five-digit codes fit both, and PostgreSQL refuses what does not
/// (SQLite silently keeps it), which was a `500`.
pub const MAX_LIST_ENTRIES: usize = 50;

/// A calendar date `YYYY-MM-DD` with a four-digit year from 0001, as SPEC §1
/// writes dates. chrono alone also reads `-100000-01-01` and `+200000-01-01`;
/// PostgreSQL cannot store the first (a `500`), and neither is a date anyone
/// means.
pub fn parse_date(value: &str) -> Option<chrono::NaiveDate> {
    use chrono::Datelike;
    let four_digit_year = value.len() == 10 && value.as_bytes()[..4].iter().all(u8::is_ascii_digit);
    let date = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").ok()?;
    (four_digit_year && date.year() >= 1).then_some(date)
}

/// What a malformed timestamp is told (also the query parameter check's text).
pub const TIMESTAMP_EXPECTED: &str =
    "must be an RFC 3339 / ISO 8601 timestamp with a UTC offset, like 2026-05-04T09:30:00Z or 2026-05-04T09:30:00+0200";

/// A timestamp as clients and generators send it: RFC 3339, and the ISO 8601
/// offsets without a colon (`+0000`, openapi-generator's default) or with
/// hours only (`+02`); `T` or a space between date and time; any fraction of
/// a second. Normalised to UTC. Without an offset the instant is ambiguous
/// (whose local time?), so that is refused with a message saying so rather
/// than guessed.
pub fn parse_timestamp(value: &str) -> Result<chrono::DateTime<chrono::Utc>, &'static str> {
    use chrono::{DateTime, NaiveDateTime, Utc};
    // A four-digit year, as for dates: chrono would read `+20000-…` too.
    let four_digit_year = value.len() > 10 && value.as_bytes()[..4].iter().all(u8::is_ascii_digit);
    if !four_digit_year {
        return Err(TIMESTAMP_EXPECTED);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    let normalised = value.replacen(' ', "T", 1);
    // `%#z` reads `+hh:mm`, `+hhmm` and `+hh`; `Z` is handled by RFC 3339
    // above except with a space or lower-case letters.
    let normalised = match normalised.strip_suffix(['Z', 'z']) {
        Some(rest) => format!("{rest}+00:00"),
        None => normalised,
    };
    if let Ok(t) = DateTime::parse_from_str(&normalised, "%Y-%m-%dT%H:%M:%S%.f%#z") {
        return Ok(t.with_timezone(&Utc));
    }
    if NaiveDateTime::parse_from_str(&normalised, "%Y-%m-%dT%H:%M:%S%.f").is_ok()
        || NaiveDateTime::parse_from_str(&normalised, "%Y-%m-%dT%H:%M").is_ok()
    {
        return Err("has no UTC offset: add Z or an offset such as +02:00 or +0200");
    }
    Err(TIMESTAMP_EXPECTED)
}

impl Checker {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// `422` listing every collected field error, or `Ok`.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() { Ok(()) } else { Err(ApiError::validation(self.errors)) }
    }

    /// Required text: trimmed, non-empty, at most `max` characters.
    ///
    /// The limit counts the value as sent, before trimming: it is the
    /// `maxLength` the OpenAPI document declares, and a declared limit the
    /// server stretches (by trimming first) is one a client generator or a
    /// fuzzer rightly reports as not enforced.
    pub fn text(&mut self, field: &str, value: &str, max: usize) -> String {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            self.add(field, "must not be empty");
        } else if value.chars().count() > max {
            self.add(field, format!("must be at most {max} characters"));
        }
        trimmed.to_owned()
    }

    /// Optional text: trimmed; blank becomes `None`. The limit counts the
    /// value as sent (see [`Checker::text`]).
    pub fn opt_text(&mut self, field: &str, value: Option<&str>, max: usize) -> Option<String> {
        let value = value?;
        let trimmed = Some(value.trim()).filter(|v| !v.is_empty())?;
        if value.chars().count() > max {
            self.add(field, format!("must be at most {max} characters"));
        }
        Some(trimmed.to_owned())
    }

    /// A value of a code list.
    pub fn code<T: CodeList>(&mut self, field: &str, value: &str) -> Option<T> {
        let parsed = T::parse(value);
        if parsed.is_none() {
            self.add(field, T::expected());
        }
        parsed
    }

    pub fn opt_code<T: CodeList>(&mut self, field: &str, value: Option<&str>) -> Option<T> {
        value.and_then(|v| self.code(field, v))
    }

    /// A list of codes; duplicates are dropped, order kept. At most as many
    /// entries as the code list has (the `maxItems` the spec declares): a
    /// longer list can only repeat codes.
    pub fn codes<T: CodeList + PartialEq>(&mut self, field: &str, values: &[String]) -> Vec<T> {
        if values.len() > T::ALL.len() {
            self.add(field, format!("must have at most {} entries", T::ALL.len()));
        }
        let mut out: Vec<T> = Vec::new();
        for (i, v) in values.iter().enumerate() {
            if let Some(c) = self.code::<T>(&format!("{field}[{i}]"), v)
                && !out.contains(&c)
            {
                out.push(c);
            }
        }
        out
    }

    /// An e-mail address of the usual shape (`local@domain.tld`).
    /// A value with a declared pattern that is present but blank breaks the
    /// pattern: refused (`422`), never read as "absent" (send `null` or leave
    /// the member out for that).
    fn blank(&mut self, field: &str, value: Option<&str>) -> bool {
        let blank = value.is_some_and(|v| v.trim().is_empty());
        if blank {
            self.add(field, "must not be blank: send null or leave it out");
        }
        blank
    }

    pub fn email(&mut self, field: &str, value: Option<&str>) -> Option<String> {
        if self.blank(field, value) {
            return None;
        }
        let v = self.opt_text(field, value, 254)?;
        let valid = match v.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !v.chars().any(|c| c.is_whitespace() || c.is_control())
            }
            None => false,
        };
        if !valid {
            self.add(field, "must be an e-mail address like name@example.org");
        }
        Some(v)
    }

    /// A phone number: digits, spaces and `+ - / ( )`, 5–30 characters.
    pub fn phone(&mut self, field: &str, value: Option<&str>) -> Option<String> {
        if self.blank(field, value) {
            return None;
        }
        let v = self.opt_text(field, value, 30)?;
        let digits = v.chars().filter(char::is_ascii_digit).count();
        if digits < 5 || !v.chars().all(|c| c.is_ascii_digit() || " +-/()".contains(c)) {
            self.add(field, "must be a phone number (digits, spaces and + - / ( ))");
        }
        Some(v)
    }

    /// A German postal code: five digits.
    pub fn postal_code(&mut self, field: &str, value: Option<&str>) -> Option<String> {
        if self.blank(field, value) {
            return None;
        }
        let v = self.opt_text(field, value, 5)?;
        if v.len() != 5 || !v.chars().all(|c| c.is_ascii_digit()) {
            self.add(field, "must be a German postal code of five digits");
        }
        Some(v)
    }

    /// An absolute http(s) URL.
    pub fn url(&mut self, field: &str, value: Option<&str>) -> Option<String> {
        if self.blank(field, value) {
            return None;
        }
        let v = self.opt_text(field, value, 2000)?;
        let rest = v.strip_prefix("https://").or_else(|| v.strip_prefix("http://"));
        if !rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace)) {
            self.add(field, "must be an absolute http:// or https:// URL");
        }
        Some(v)
    }

    /// A KldB 2010 occupation code: five digits.
    pub fn kldb(&mut self, field: &str, value: &str) -> String {
        // Not trimmed: the spec declares exactly five characters.
        let v = value;
        if v.len() != 5 || !v.chars().all(|c| c.is_ascii_digit()) {
            self.add(field, "must be a KldB 2010 occupation code of five digits");
        }
        v.to_owned()
    }

    /// At most [`MAX_LIST_ENTRIES`] entries.
    fn list_length(&mut self, field: &str, values: &[String]) {
        if values.len() > MAX_LIST_ENTRIES {
            self.add(field, format!("must have at most {MAX_LIST_ENTRIES} entries"));
        }
    }

    /// ISO 639-1 language codes (lower case, two letters).
    pub fn languages(&mut self, field: &str, values: &[String]) -> Vec<String> {
        self.list_length(field, values);
        let mut out = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let code = v.trim().to_ascii_lowercase();
            if code.len() != 2 || !ISO_639_1.split(' ').any(|c| c == code) {
                self.add(format!("{field}[{i}]"), "must be an ISO 639-1 language code such as de or ar");
            } else if !out.contains(&code) {
                out.push(code);
            }
        }
        out
    }

    /// An optional calendar date `YYYY-MM-DD`. A value that is present but
    /// blank is refused like any other malformed date: treated as absent, a
    /// required `"held_on": ""` slipped past `required` and became a `500`.
    pub fn date(&mut self, field: &str, value: Option<&str>) -> Option<chrono::NaiveDate> {
        // Exactly `YYYY-MM-DD` (the declared `maxLength` 10): not trimmed, and
        // a present but blank value is malformed, not absent.
        let date = parse_date(value?);
        if date.is_none() {
            self.add(field, "must be a date YYYY-MM-DD");
        }
        date
    }

    /// An optional timestamp (see [`parse_timestamp`]), normalised to UTC;
    /// present but blank is refused.
    pub fn timestamp(&mut self, field: &str, value: Option<&str>) -> Option<chrono::DateTime<chrono::Utc>> {
        match parse_timestamp(value?.trim()) {
            Ok(t) => Some(t),
            Err(message) => {
                self.add(field, message);
                None
            }
        }
    }

    /// An optional UUID in its hyphenated form (36 characters, the
    /// `maxLength` the spec declares). `Uuid::parse_str` alone also takes
    /// the braced, URN and 32-digit forms, which `format: uuid` excludes.
    pub fn uuid(&mut self, field: &str, value: Option<&str>) -> Option<uuid::Uuid> {
        let v = value?;
        match uuid::Uuid::try_parse(v) {
            Ok(id) if v.len() == 36 => Some(id),
            _ => {
                self.add(field, "must be a UUID like 0193a000-0000-7000-8000-00000000c001");
                None
            }
        }
    }

    /// The declared `maxLength` of a field validated otherwise (a
    /// timestamp), counted on the value as sent.
    pub fn max_chars(&mut self, field: &str, value: Option<&str>, max: usize) {
        if value.is_some_and(|v| v.chars().count() > max) {
            self.add(field, format!("must be at most {max} characters"));
        }
    }

    /// A required value: records "is required" when absent.
    pub fn required<T>(&mut self, field: &str, value: Option<T>) -> Option<T> {
        if value.is_none() {
            self.add(field, "is required");
        }
        value
    }

    /// An optional integer in `min..=max`, as `i32`.
    pub fn opt_int(&mut self, field: &str, value: Option<i64>, min: i64, max: i64) -> Option<i32> {
        let v = value?;
        self.range(field, v, min, max);
        i32::try_from(v.clamp(min, max)).ok()
    }

    /// KldB codes (five digits each), duplicates dropped.
    pub fn kldb_list(&mut self, field: &str, values: &[String]) -> Vec<String> {
        self.list_length(field, values);
        let mut out: Vec<String> = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let code = self.kldb(&format!("{field}[{i}]"), v);
            if !out.contains(&code) {
                out.push(code);
            }
        }
        out
    }

    /// A district code that `known` accepts.
    pub fn district(&mut self, field: &str, value: Option<&str>, known: &dyn Fn(&str) -> bool) -> Option<String> {
        let d = self.opt_text(field, value, 8)?;
        if !known(&d) {
            self.add(field, "must be a code of the districts list (GET /api/v1/code-lists/districts)");
        }
        Some(d)
    }

    /// An amount in euros (≥ 0, at most two decimals) as cents.
    pub fn euros(&mut self, field: &str, value: Option<f64>) -> Option<i64> {
        let v = value?;
        let cents = (v * 100.0).round();
        if !v.is_finite() || !(0.0..=1_000_000_000.0).contains(&v) {
            self.add(field, "must be an amount in euros between 0 and 1 000 000 000");
            None
        // Compared as euros, within float rounding of `v` itself: an absolute
        // tolerance on `v * 100` refused valid amounts above ~10^8 (`554948096.7`),
        // where one step of an f64 times 100 is already larger than it.
        } else if (cents / 100.0 - v).abs() > v * 4.0 * f64::EPSILON {
            self.add(field, "must have at most two decimals");
            None
        } else {
            Some(cents as i64)
        }
    }

    /// An integer in `min..=max`.
    pub fn range(&mut self, field: &str, value: i64, min: i64, max: i64) {
        if value < min || value > max {
            self.add(field, format!("must be between {min} and {max}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::codes::TargetGroup;

    #[test]
    fn euros_take_two_decimals_at_any_size_and_refuse_a_third() {
        let mut c = Checker::new();
        assert_eq!(c.euros("a", Some(554_948_096.7)), Some(55_494_809_670));
        assert_eq!(c.euros("a", Some(999_999_999.99)), Some(99_999_999_999));
        assert_eq!(c.euros("a", Some(0.29)), Some(29));
        assert!(c.finish().is_ok());
        let mut c = Checker::new();
        assert_eq!(c.euros("a", Some(12.345)), None);
        assert!(c.finish().is_err());
    }

    #[test]
    fn collects_every_bad_field() {
        let mut c = Checker::new();
        c.text("name", "   ", 10);
        c.email("contact.email", Some("not-an-email"));
        c.postal_code("address.postal_code", Some("0431"));
        c.codes::<TargetGroup>("target_groups", &["youth".into(), "elves".into()]);
        let err = c.finish().err().unwrap();
        let fields: Vec<_> = err.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "contact.email", "address.postal_code", "target_groups[1]"]);
    }

    #[test]
    fn accepts_good_values_and_trims() {
        let mut c = Checker::new();
        assert_eq!(c.text("n", "  Anna ", 10), "Anna");
        c.email("e", Some("anna.schmidt@example.org"));
        c.postal_code("p", Some("04315"));
        c.phone("t", Some("+49 341 1234567"));
        c.url("w", Some("https://example.org/x"));
        assert_eq!(c.kldb("k", "29302"), "29302");
        assert_eq!(c.languages("l", &["DE".into(), "ar".into()]), vec!["de", "ar"]);
        assert!(c.is_ok());
    }

    #[test]
    fn timestamps_take_iso_8601_offsets_with_and_without_colon() {
        let expected = "2026-05-04T07:30:00Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        for ok in [
            "2026-05-04T07:30:00Z",
            "2026-05-04T07:30:00+00:00",
            "2026-05-04T07:30:00+0000",
            "2026-05-04T09:30:00+0200",
            "2026-05-04T09:30:00+02",
            "2026-05-04 07:30:00Z",
            "2026-05-04t07:30:00z",
        ] {
            assert_eq!(parse_timestamp(ok), Ok(expected), "{ok}");
        }
        let fraction = parse_timestamp("2026-05-04T07:30:00.123456+0000").unwrap();
        assert_eq!(fraction.timestamp_subsec_micros(), 123_456);
    }

    #[test]
    fn timestamps_without_offset_or_malformed_are_refused() {
        assert!(parse_timestamp("2026-05-04T07:30:00").unwrap_err().contains("no UTC offset"));
        for bad in ["", "2026-05-04", "yesterday", "+20000-05-04T07:30:00Z", "2026-13-04T07:30:00Z"] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn blank_dates_and_timestamps_are_refused_not_absent() {
        let mut c = Checker::new();
        assert_eq!(c.date("held_on", Some("")), None);
        assert_eq!(c.timestamp("at", Some(" ")), None);
        assert_eq!(c.date("follow_up_on", None), None);
        assert_eq!(c.finish().unwrap_err().errors.len(), 2);
    }

    #[test]
    fn dates_have_four_digit_years_from_0001() {
        assert!(parse_date("2026-05-04").is_some());
        assert!(parse_date("0001-01-01").is_some());
        for bad in ["-100000-01-01", "+200000-01-01", "+2026-05-04", "0000-01-01", "26-05-04", "2026-5-4"] {
            assert!(parse_date(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn lists_longer_than_their_column_are_refused() {
        let mut c = Checker::new();
        let codes: Vec<String> = (0..=MAX_LIST_ENTRIES).map(|i| format!("{:05}", 10_000 + i)).collect();
        c.kldb_list("occupation_codes", &codes);
        assert_eq!(c.finish().err().unwrap().errors[0].field, "occupation_codes");
    }

    #[test]
    fn limits_count_the_value_as_sent_not_the_trimmed_one() {
        let mut c = Checker::new();
        c.text("name", &format!(" {}", "a".repeat(10)), 10);
        c.opt_text("note", Some(&format!("{} ", "a".repeat(10))), 10);
        c.kldb("occupation_code", " 29302");
        c.date("start_date", Some(" 2026-05-04"));
        let err = c.finish().err().unwrap();
        let fields: Vec<_> = err.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "note", "occupation_code", "start_date"]);
    }

    #[test]
    fn code_lists_are_at_most_as_long_as_the_list_and_uuids_hyphenated() {
        let mut c = Checker::new();
        let too_many: Vec<String> = std::iter::repeat_n("youth".to_owned(), TargetGroup::ALL.len() + 1).collect();
        c.codes::<TargetGroup>("target_groups", &too_many);
        c.uuid("client_id", Some("urn:uuid:0193a000-0000-7000-8000-00000000c001"));
        assert!(c.uuid("ok", Some("0193a000-0000-7000-8000-00000000c001")).is_some());
        let err = c.finish().err().unwrap();
        let fields: Vec<_> = err.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["target_groups", "client_id"]);
    }

    #[test]
    fn refuses_malformed_values() {
        let mut c = Checker::new();
        c.url("w", Some("javascript:alert(1)"));
        c.kldb("k", "2930");
        c.languages("l", &["xx".into()]);
        c.phone("t", Some("call me"));
        assert_eq!(c.finish().err().unwrap().errors.len(), 4);
    }
}
