//! Anonymised demand and outcome statistics (SPEC §3 "Statistics").
//!
//! Everything is counted in memory from anonymous columns (district, target
//! groups, occupation codes, statuses): the office's data is small (10⁵
//! clients at most), and one pass in Rust is simpler to get right than a
//! per-backend SQL cube with multi-valued dimensions.
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use serde::Serialize;
use uuid::Uuid;

use crate::{
    domain::{
        codes::{ClientStatus, CodeList, MeasureStatus, Outcome, ReferralStatus},
        statistics::{publish, publish_rate, publish_total},
    },
    error::{ApiError, FieldError},
    repository::{self, tags},
};

/// A dimension of the demand statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    District,
    TargetGroup,
    /// The first two digits of a KldB 2010 code (Berufsbereich).
    OccupationField,
    MeasureKind,
}

impl Dim {
    pub fn name(self) -> &'static str {
        match self {
            Dim::District => "district",
            Dim::TargetGroup => "target_group",
            Dim::OccupationField => "occupation_field",
            Dim::MeasureKind => "measure_kind",
        }
    }

    /// Parses `group_by` (a comma list); `400` names unknown dimensions.
    pub fn parse_list(value: Option<&str>) -> Result<Vec<Dim>, ApiError> {
        let mut dims = Vec::new();
        for part in value.unwrap_or("").split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let dim = match part {
                "district" => Dim::District,
                "target_group" => Dim::TargetGroup,
                "occupation_field" => Dim::OccupationField,
                "measure_kind" => Dim::MeasureKind,
                _ => {
                    return Err(ApiError::bad_request("Invalid query parameters.").with_errors(vec![FieldError::new(
                        "group_by",
                        "must list district, target_group, occupation_field, measure_kind",
                    )]));
                }
            };
            if !dims.contains(&dim) {
                dims.push(dim);
            }
        }
        Ok(dims)
    }
}

/// The values an entity has on one dimension (several for multi-valued ones;
/// `[None]` when it has none, so it still lands in a row).
type Values = Vec<Option<String>>;

fn single(v: Option<String>) -> Values {
    vec![v]
}

fn many(v: Vec<String>) -> Values {
    if v.is_empty() { vec![None] } else { v.into_iter().map(Some).collect() }
}

fn fields_of(codes: &str) -> Vec<String> {
    let mut fields: Vec<String> = tags::split(codes).iter().filter_map(|c| c.get(..2).map(str::to_owned)).collect();
    fields.sort();
    fields.dedup();
    fields
}

/// Every combination of the per-dimension values.
fn cells(per_dim: &[Values]) -> Vec<Vec<Option<String>>> {
    let mut out: Vec<Vec<Option<String>>> = vec![Vec::new()];
    for values in per_dim {
        let mut next = Vec::with_capacity(out.len() * values.len());
        for prefix in &out {
            for v in values {
                let mut key = prefix.clone();
                key.push(v.clone());
                next.push(key);
            }
        }
        out = next;
    }
    out
}

/// Column pairs (whole, part) of the demand counts where the part is a
/// subset of the whole: requested ⊆ active, free ⊆ offered, unserved ⊆ clients.
const RELATED: [(usize, usize); 3] = [(2, 1), (3, 4), (0, 5)];

#[derive(Debug, Default, Clone, Copy)]
struct DemandCounts {
    clients: u64,
    referrals_requested: u64,
    referrals_active: u64,
    seats_offered: u64,
    seats_free: u64,
    unserved_clients: u64,
}

/// One published row: the dimension values, then the counts (`null` when
/// suppressed), and `suppressed` when any count of the row is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DemandRow {
    /// The row's value per requested dimension, e.g. `{"district": "21"}`.
    #[schema(value_type = DemandDimensions)]
    #[serde(flatten)]
    pub dimensions: BTreeMap<String, Option<String>>,
    pub clients: Option<u64>,
    pub referrals_requested: Option<u64>,
    pub referrals_active: Option<u64>,
    pub seats_offered: Option<u64>,
    pub seats_free: Option<u64>,
    pub unserved_clients: Option<u64>,
    pub suppressed: bool,
}

/// The dimension members of a demand row, for the document only: declared
/// one by one (rather than as a bare object) so generated clients type a row
/// as dimensions *and* counts; a bare object becomes `Record<string, never>`
/// in TypeScript and no row fits it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct DemandDimensions {
    /// District code, with `group_by=district`.
    #[schema(example = "21")]
    district: Option<String>,
    /// Target group, with `group_by=target_group`.
    #[schema(example = "long_term_unemployed")]
    target_group: Option<String>,
    /// First two KldB digits, with `group_by=occupation_field`.
    #[schema(example = "62")]
    occupation_field: Option<String>,
    /// Measure kind, with `group_by=measure_kind`.
    #[schema(example = "application_training")]
    measure_kind: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DemandTotals {
    pub clients: Option<u64>,
    pub referrals_requested: Option<u64>,
    pub referrals_active: Option<u64>,
    pub seats_offered: Option<u64>,
    pub seats_free: Option<u64>,
    pub unserved_clients: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DemandReport {
    pub group_by: Vec<String>,
    /// Counts from 1 to `min_cell − 1` are published as `null`.
    pub min_cell: u64,
    pub rows: Vec<DemandRow>,
    /// Distinct totals over everything counted (multi-valued dimensions make
    /// the rows overlap, so these are not column sums).
    pub totals: DemandTotals,
}

pub struct DemandQuery {
    pub group_by: Vec<Dim>,
    pub district: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

pub async fn demand(db: &impl ConnectionTrait, q: &DemandQuery, min_cell: u64) -> Result<DemandReport, ApiError> {
    let clients = repository::clients::anonymous(db).await?;
    let referrals = repository::referrals::facts(db, q.from, q.to).await?;
    let measures = repository::measures::all(db).await?;
    let measure_kind: HashMap<Uuid, String> = measures.iter().map(|m| (m.id, m.kind.clone())).collect();
    let client_by_id: HashMap<Uuid, &repository::clients::AnonymousClient> =
        clients.iter().map(|c| (c.id, c)).collect();
    let in_district = |d: &Option<String>| q.district.as_ref().is_none_or(|want| d.as_ref() == Some(want));

    // Active referrals per client (all time: "unserved" is about now).
    let all_referrals = if q.from.is_none() && q.to.is_none() {
        referrals.clone()
    } else {
        repository::referrals::facts(db, None, None).await?
    };
    let mut active_kinds: HashMap<Uuid, Vec<String>> = HashMap::new();
    for r in &all_referrals {
        if ReferralStatus::parse(&r.status).is_some_and(|s| s.is_active()) {
            let kinds = active_kinds.entry(r.client_id).or_default();
            if let Some(kind) = r.measure_id.and_then(|m| measure_kind.get(&m)).filter(|k| !kinds.contains(k)) {
                kinds.push(kind.clone());
            }
        }
    }

    let client_values = |c: &repository::clients::AnonymousClient, kind: Option<Values>| -> Vec<Values> {
        q.group_by
            .iter()
            .map(|d| match d {
                Dim::District => single(c.district.clone()),
                Dim::TargetGroup => many(tags::split(&c.target_groups)),
                Dim::OccupationField => many(fields_of(&c.occupation_codes)),
                Dim::MeasureKind => kind.clone().unwrap_or_else(|| vec![None]),
            })
            .collect()
    };

    let mut table: BTreeMap<Vec<Option<String>>, DemandCounts> = BTreeMap::new();
    let mut totals = DemandCounts::default();
    for c in clients.iter().filter(|c| c.status == ClientStatus::Active.as_str() && in_district(&c.district)) {
        let kinds = active_kinds.get(&c.id);
        let served = kinds.is_some();
        let per_dim = client_values(c, Some(many(kinds.cloned().unwrap_or_default())));
        for key in cells(&per_dim) {
            let row = table.entry(key).or_default();
            row.clients += 1;
            row.unserved_clients += u64::from(!served);
        }
        totals.clients += 1;
        totals.unserved_clients += u64::from(!served);
    }
    for r in &referrals {
        let Some(c) = client_by_id.get(&r.client_id) else { continue };
        if !in_district(&c.district) {
            continue;
        }
        let status = ReferralStatus::parse(&r.status);
        let requested = status == Some(ReferralStatus::Requested);
        let active = status.is_some_and(|s| s.is_active());
        if !requested && !active {
            continue;
        }
        let kind = single(r.measure_id.and_then(|m| measure_kind.get(&m).cloned()));
        for key in cells(&client_values(c, Some(kind))) {
            let row = table.entry(key).or_default();
            row.referrals_requested += u64::from(requested);
            row.referrals_active += u64::from(active);
        }
        totals.referrals_requested += u64::from(requested);
        totals.referrals_active += u64::from(active);
    }
    for m in measures.iter().filter(|m| m.status != MeasureStatus::Closed.as_str() && in_district(&m.district)) {
        let offered = u64::try_from(m.capacity.max(0)).unwrap_or(0);
        let free = u64::try_from((m.capacity - m.seats_taken).max(0)).unwrap_or(0);
        let per_dim: Vec<Values> = q
            .group_by
            .iter()
            .map(|d| match d {
                Dim::District => single(m.district.clone()),
                Dim::TargetGroup => many(tags::split(&m.target_groups)),
                Dim::OccupationField => many(fields_of(&m.occupation_codes)),
                Dim::MeasureKind => single(Some(m.kind.clone())),
            })
            .collect();
        for key in cells(&per_dim) {
            let row = table.entry(key).or_default();
            row.seats_offered += offered;
            row.seats_free += free;
        }
        totals.seats_offered += offered;
        totals.seats_free += free;
    }

    let names: Vec<String> = q.group_by.iter().map(|d| d.name().to_owned()).collect();
    let mut hidden = [false; 6];
    let rows: Vec<DemandRow> = table
        .into_iter()
        .map(|(key, c)| {
            let counts = [
                c.clients,
                c.referrals_requested,
                c.referrals_active,
                c.seats_offered,
                c.seats_free,
                c.unserved_clients,
            ];
            let mut published: Vec<Option<u64>> = counts.iter().map(|n| publish(*n, min_cell)).collect();
            // Secondary suppression: where one column is part of another
            // (`RELATED`), a small difference would reveal a small group.
            for (whole, part) in RELATED {
                if publish(counts[whole].saturating_sub(counts[part]), min_cell).is_none() {
                    published[part] = None;
                }
            }
            for (i, p) in published.iter().enumerate() {
                hidden[i] |= p.is_none();
            }
            DemandRow {
                dimensions: names.iter().cloned().zip(key).collect(),
                clients: published[0],
                referrals_requested: published[1],
                referrals_active: published[2],
                seats_offered: published[3],
                seats_free: published[4],
                unserved_clients: published[5],
                suppressed: published.iter().any(Option::is_none),
            }
        })
        .collect();
    // The same secondary suppression for the totals.
    let total_counts = [
        totals.clients,
        totals.referrals_requested,
        totals.referrals_active,
        totals.seats_offered,
        totals.seats_free,
        totals.unserved_clients,
    ];
    for (whole, part) in RELATED {
        if publish(total_counts[whole].saturating_sub(total_counts[part]), min_cell).is_none() {
            hidden[part] = true;
        }
    }
    let totals = DemandTotals {
        clients: publish_total(totals.clients, hidden[0], min_cell),
        referrals_requested: publish_total(totals.referrals_requested, hidden[1], min_cell),
        referrals_active: publish_total(totals.referrals_active, hidden[2], min_cell),
        seats_offered: publish_total(totals.seats_offered, hidden[3], min_cell),
        seats_free: publish_total(totals.seats_free, hidden[4], min_cell),
        unserved_clients: publish_total(totals.unserved_clients, hidden[5], min_cell),
    };
    Ok(DemandReport { group_by: names, min_cell, rows, totals })
}

/// How outcome statistics are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeGroup {
    MeasureKind,
    Provider,
    Funding,
}

impl OutcomeGroup {
    pub fn parse(value: Option<&str>) -> Result<Self, ApiError> {
        match value.map(str::trim) {
            None | Some("") | Some("measure_kind") => Ok(Self::MeasureKind),
            Some("provider") => Ok(Self::Provider),
            Some("funding") => Ok(Self::Funding),
            Some(_) => Err(ApiError::bad_request("Invalid query parameters.")
                .with_errors(vec![FieldError::new("group_by", "must be measure_kind, provider or funding")])),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::MeasureKind => "measure_kind",
            Self::Provider => "provider",
            Self::Funding => "funding",
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OutcomeRow {
    /// The group's value: a measure kind, a provider id or a funding type.
    pub group: String,
    /// Referrals into measures of the group.
    pub referrals: Option<u64>,
    /// Accepted (ever) ÷ answered (accepted ever or rejected).
    pub acceptance_rate: Option<f64>,
    /// Completed ÷ started (ever).
    pub completion_rate: Option<f64>,
    /// Ended early after starting (`failed` or `cancelled` from
    /// `in_progress`) ÷ started (ever): a drop-out is any premature exit,
    /// whichever side ended it, so completion rate + drop-out rate + the
    /// share still running make 1.
    pub dropout_rate: Option<f64>,
    /// Completions with outcome `employed`, `apprenticeship` or `self_employed` ÷ completions.
    pub employment_share: Option<f64>,
    pub suppressed: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OutcomeReport {
    pub group_by: String,
    pub min_cell: u64,
    pub rows: Vec<OutcomeRow>,
}

#[derive(Debug, Default)]
struct OutcomeCounts {
    referrals: u64,
    accepted: u64,
    answered: u64,
    started: u64,
    completed: u64,
    dropped: u64,
    employed: u64,
}

pub async fn outcomes(
    db: &impl ConnectionTrait,
    group: OutcomeGroup,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    min_cell: u64,
) -> Result<OutcomeReport, ApiError> {
    let referrals = repository::referrals::facts(db, from, to).await?;
    let measures = repository::measures::all(db).await?;
    let accepted: HashSet<Uuid> = repository::referrals::ever(db, "accept").await?;
    let started: HashSet<Uuid> = repository::referrals::ever(db, "start").await?;
    let group_of: HashMap<Uuid, String> = measures
        .iter()
        .map(|m| {
            let g = match group {
                OutcomeGroup::MeasureKind => m.kind.clone(),
                OutcomeGroup::Provider => m.provider_id.to_string(),
                OutcomeGroup::Funding => m.funding.clone(),
            };
            (m.id, g)
        })
        .collect();
    let mut table: BTreeMap<String, OutcomeCounts> = BTreeMap::new();
    for r in &referrals {
        let Some(g) = r.measure_id.and_then(|m| group_of.get(&m)) else { continue };
        let c = table.entry(g.clone()).or_default();
        let status = ReferralStatus::parse(&r.status);
        let was_accepted = accepted.contains(&r.id);
        c.referrals += 1;
        c.accepted += u64::from(was_accepted);
        c.answered += u64::from(was_accepted || status == Some(ReferralStatus::Rejected));
        if started.contains(&r.id) {
            c.started += 1;
            c.completed += u64::from(status == Some(ReferralStatus::Completed));
            // Only `in_progress` leads to `cancelled` once started, so this is a premature exit too.
            c.dropped += u64::from(matches!(status, Some(ReferralStatus::Failed | ReferralStatus::Cancelled)));
        }
        if status == Some(ReferralStatus::Completed)
            && r.outcome
                .as_deref()
                .and_then(Outcome::parse)
                .is_some_and(|o| matches!(o, Outcome::Employed | Outcome::Apprenticeship | Outcome::SelfEmployed))
        {
            c.employed += 1;
        }
    }
    let rows = table
        .into_iter()
        .map(|(group, c)| {
            let referrals = publish(c.referrals, min_cell);
            let row = OutcomeRow {
                group,
                referrals,
                acceptance_rate: publish_rate(c.accepted, c.answered, min_cell),
                completion_rate: publish_rate(c.completed, c.started, min_cell),
                dropout_rate: publish_rate(c.dropped, c.started, min_cell),
                employment_share: publish_rate(c.employed, c.completed, min_cell),
                suppressed: false,
            };
            let suppressed = referrals.is_none()
                || (c.answered > 0 && row.acceptance_rate.is_none())
                || (c.started > 0 && (row.completion_rate.is_none() || row.dropout_rate.is_none()))
                || (c.completed > 0 && row.employment_share.is_none());
            OutcomeRow { suppressed, ..row }
        })
        .collect();
    Ok(OutcomeReport { group_by: group.name().to_owned(), min_cell, rows })
}

/// How funding statistics are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FundingGroup {
    Programme,
    Funder,
    ApplicantKind,
}

impl FundingGroup {
    pub fn parse(value: Option<&str>) -> Result<Self, ApiError> {
        match value.map(str::trim) {
            None | Some("") | Some("programme") => Ok(Self::Programme),
            Some("funder") => Ok(Self::Funder),
            Some("applicant_kind") => Ok(Self::ApplicantKind),
            Some(_) => Err(ApiError::bad_request("Invalid query parameters.")
                .with_errors(vec![FieldError::new("group_by", "must be programme, funder or applicant_kind")])),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Programme => "programme",
            Self::Funder => "funder",
            Self::ApplicantKind => "applicant_kind",
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FundingRow {
    /// The group's value: a programme id, a funder's name or an applicant kind.
    pub group: String,
    /// Applications (all statuses but `draft`).
    pub applications: Option<u64>,
    pub granted: Option<u64>,
    pub amount_requested_eur: Option<f64>,
    /// Funding raised: the granted amounts.
    pub amount_granted_eur: Option<f64>,
    pub suppressed: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FundingReport {
    pub group_by: String,
    pub min_cell: u64,
    pub rows: Vec<FundingRow>,
}

/// Funding raised, by programme, funder or kind of applicant. Sums are
/// suppressed with the counts they come from (a small group's sum would
/// reveal individual grants).
pub async fn funding(db: &impl ConnectionTrait, group: FundingGroup, min_cell: u64) -> Result<FundingReport, ApiError> {
    let applications = repository::funding::all_applications(db).await?;
    let mut funders: HashMap<Uuid, String> = HashMap::new();
    if group == FundingGroup::Funder {
        let ids: HashSet<Uuid> = applications.iter().map(|a| a.programme_id).collect();
        for id in ids {
            if let Some(p) = repository::funding::find_programme(db, id).await? {
                funders.insert(id, p.funder);
            }
        }
    }
    #[derive(Default)]
    struct Sums {
        applications: u64,
        granted: u64,
        requested: i64,
        granted_cents: i64,
    }
    let mut table: BTreeMap<String, Sums> = BTreeMap::new();
    for a in applications.iter().filter(|a| a.status != "draft") {
        let key = match group {
            FundingGroup::Programme => a.programme_id.to_string(),
            FundingGroup::Funder => funders.get(&a.programme_id).cloned().unwrap_or_default(),
            FundingGroup::ApplicantKind => a.applicant_kind.clone(),
        };
        let s = table.entry(key).or_default();
        s.applications += 1;
        s.requested += a.amount_requested_cents;
        if a.status == "granted" {
            s.granted += 1;
            s.granted_cents += a.amount_granted_cents.unwrap_or(0);
        }
    }
    let rows = table
        .into_iter()
        .map(|(group, s)| {
            let applications = publish(s.applications, min_cell);
            let granted = publish(s.granted, min_cell);
            FundingRow {
                group,
                applications,
                granted,
                amount_requested_eur: applications.map(|_| s.requested as f64 / 100.0),
                amount_granted_eur: granted.map(|_| s.granted_cents as f64 / 100.0),
                suppressed: applications.is_none() || granted.is_none(),
            }
        })
        .collect();
    Ok(FundingReport { group_by: group.name().to_owned(), min_cell, rows })
}
