//! Anonymised demand and outcome statistics (SPEC §3 "Statistics").
//!
//! The database counts (`repository::statistics`): one `GROUP BY` per
//! figure hands back groups of records with the same stored values and the
//! sum of their record keys; here each group is spread over the cells of the
//! multi-valued dimensions (target groups, occupation fields), so a request
//! holds a few hundred groups, never the clients or referrals themselves.
//! Measures (the catalogue) and funding applications are read whole.
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use serde::Serialize;
use uuid::Uuid;

use crate::{
    domain::{
        cell_key::{self, Cell},
        codes::{
            ApplicantKind, CodeList, FundingType, MeasureKind, MeasureStatus, Outcome, ReferralStatus, TargetGroup,
        },
        statistics::{Lang, publish, publish_total},
    },
    error::{ApiError, FieldError},
    repository::{self, tags},
};

/// How the counts of an answer were protected; the same in every answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Perturbation {
    /// The largest amount by which the noise changes a count (2).
    pub max_deviation: u64,
    /// The variance of the noise of a count of 3 or more (1.3); smaller
    /// counts get less, so that a count of 1 or more stays at least 1.
    pub variance: f64,
    /// Noise values are whole numbers; their mean is 0 for every count, so
    /// sums over many cells stay unbiased.
    pub mean: f64,
}

impl Perturbation {
    fn current() -> Self {
        Self { max_deviation: cell_key::MAX_DEVIATION, variance: cell_key::VARIANCE, mean: 0.0 }
    }
}

/// The key of a client's record, as stored (a BIGINT in [0, 2³²)).
fn key_of(record_key: i64) -> u32 {
    u32::try_from(record_key.rem_euclid(1 << 32)).unwrap_or(0)
}

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
    tags::fields(codes)
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

/// Column pairs (whole, part) of exact demand counts where the part is a
/// subset of the whole: free ⊆ offered (their difference counts the people
/// in the measure). The perturbed pairs (requested ⊆ active, unserved ⊆
/// clients) need no such rule: each is a cell of its own with its own noise,
/// so their difference is not the size of the group between them.
const RELATED: [(usize, usize); 1] = [(3, 4)];

/// People counts are cells (perturbed); seats are exact sums of the
/// measures' published capacity, public catalogue data rather than people.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DemandCounts {
    pub clients: Cell,
    pub referrals_requested: Cell,
    pub referrals_active: Cell,
    pub seats_offered: u64,
    pub seats_free: u64,
    pub unserved_clients: Cell,
}

/// The exact counts of a demand answer before publication: one entry per
/// row (its values per requested dimension) and the totals.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DemandTable {
    pub rows: BTreeMap<Vec<Option<String>>, DemandCounts>,
    pub totals: DemandCounts,
}

/// Where [`demand_table`] reads the groups from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemandSource {
    /// The maintained aggregate (pre-spread variants), as every request.
    Aggregate,
    /// The raw `GROUP BY`s over clients and referrals: the reference the
    /// tests compare the aggregate with.
    Exact,
}

/// One published row: the dimension values, then the counts (`null` when
/// suppressed), and `suppressed` when any count of the row is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DemandRow {
    /// The row's value per requested dimension, and beside each coded one
    /// its label in the caller's language (`Accept-Language: de` for
    /// German, else English), e.g. `{"district": "21", "district_label":
    /// "Reudnitz-Thonberg"}`. `occupation_field` has no label.
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
    /// The district's name in the caller's language, beside `district`.
    #[schema(example = "Reudnitz-Thonberg")]
    district_label: Option<String>,
    /// The target group's label in the caller's language, beside `target_group`.
    #[schema(example = "Long-term unemployed")]
    target_group_label: Option<String>,
    /// The measure kind's label in the caller's language, beside `measure_kind`.
    #[schema(example = "Application training")]
    measure_kind_label: Option<String>,
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
    /// Always `true`: every count of people carries a small noise.
    pub perturbed: bool,
    /// Always `cell-key`.
    pub method: String,
    pub perturbation: Perturbation,
    /// Perturbed counts from 1 to `min_cell − 1` are published as `null`.
    pub min_cell: u64,
    pub rows: Vec<DemandRow>,
    /// Distinct totals over everything counted, each perturbed as a cell of
    /// its own: they need not equal the sum of the rows (and multi-valued
    /// dimensions make the rows overlap anyway).
    pub totals: DemandTotals,
}

pub struct DemandQuery {
    pub group_by: Vec<Dim>,
    pub district: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// The label of a code in `lang`, from a compile-time code list.
fn label_of<C: CodeList>(code: &str, lang: Lang) -> Option<String> {
    C::parse(code).map(|c| lang.pick(c.label_de(), c.label_en()).to_owned())
}

/// The exact counts of the demand answer for `q`: the groups of clients and
/// referrals (from `source`) spread over the cells of the requested
/// dimensions, plus the seats of the measures.
pub async fn demand_table(
    db: &sea_orm::DatabaseConnection,
    q: &DemandQuery,
    source: DemandSource,
) -> Result<DemandTable, ApiError> {
    use repository::statistics::{self as stats, DemandSplit};
    let split = DemandSplit {
        target_groups: q.group_by.contains(&Dim::TargetGroup),
        occupation_codes: q.group_by.contains(&Dim::OccupationField),
        measure_kind: q.group_by.contains(&Dim::MeasureKind),
    };
    let district = q.district.as_deref();
    let exact = source == DemandSource::Exact;
    if !exact {
        repository::demand::ensure_fresh(db).await?;
    }
    let clients = |split| async move {
        if exact {
            stats::demand_clients_exact(db, district, split).await
        } else {
            stats::demand_clients(db, district, split).await
        }
    };
    let referrals = |split| async move {
        if exact {
            stats::demand_referrals_exact(db, district, q.from, q.to, split).await
        } else {
            stats::demand_referrals(db, district, q.from, q.to, split).await
        }
    };
    // Split by kind or spread over target groups / occupation fields, a
    // client or referral is in several groups: the totals count each once,
    // from groups without any split (the plain variants of the aggregate).
    // The client and the referral reads run side by side (two connections),
    // so the answer waits for the longer, not for both.
    let unsplit = DemandSplit::default();
    let spread = split.target_groups || split.occupation_codes;
    let client_reads = async {
        let groups = clients(split).await?;
        let totals = if split.measure_kind || spread { Some(clients(unsplit).await?) } else { None };
        Ok::<_, sea_orm::DbErr>((groups, totals))
    };
    let referral_reads = async {
        let groups = referrals(split).await?;
        let totals = if spread { Some(referrals(unsplit).await?) } else { None };
        Ok::<_, sea_orm::DbErr>((groups, totals))
    };
    let ((client_groups, client_totals), (referral_groups, referral_totals)) =
        tokio::try_join!(client_reads, referral_reads)?;
    let measures = repository::measures::all(db).await?;
    let in_district = |d: &Option<String>| q.district.as_ref().is_none_or(|want| d.as_ref() == Some(want));

    // A group's values per requested dimension; `kind` is the measure-kind
    // value(s) of the group (a client's active kind, a referral's kind).
    let group_values = |district: &Option<String>, target_groups: &str, codes: &str, kind: &Option<String>| {
        q.group_by
            .iter()
            .map(|d| match d {
                Dim::District => single(district.clone()),
                Dim::TargetGroup => many(tags::split(target_groups)),
                Dim::OccupationField => many(fields_of(codes)),
                Dim::MeasureKind => single(kind.clone()),
            })
            .collect::<Vec<Values>>()
    };

    let mut table: BTreeMap<Vec<Option<String>>, DemandCounts> = BTreeMap::new();
    let mut totals = DemandCounts::default();
    for g in &client_groups {
        for key in cells(&group_values(&g.district, &g.target_groups, &g.occupation_codes, &g.kind)) {
            let row = table.entry(key).or_default();
            row.clients.merge(g.cell);
            if !g.served {
                row.unserved_clients.merge(g.cell);
            }
        }
    }
    for g in client_totals.as_ref().unwrap_or(&client_groups) {
        totals.clients.merge(g.cell);
        if !g.served {
            totals.unserved_clients.merge(g.cell);
        }
    }
    for g in &referral_groups {
        for key in cells(&group_values(&g.district, &g.target_groups, &g.occupation_codes, &g.kind)) {
            let row = table.entry(key).or_default();
            row.referrals_active.merge(g.cell);
            if g.requested {
                row.referrals_requested.merge(g.cell);
            }
        }
    }
    for g in referral_totals.as_ref().unwrap_or(&referral_groups) {
        totals.referrals_active.merge(g.cell);
        if g.requested {
            totals.referrals_requested.merge(g.cell);
        }
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

    Ok(DemandTable { rows: table, totals })
}

pub async fn demand(
    db: &sea_orm::DatabaseConnection,
    q: &DemandQuery,
    min_cell: u64,
    lang: Lang,
) -> Result<DemandReport, ApiError> {
    let DemandTable { rows: table, totals } = demand_table(db, q, DemandSource::Aggregate).await?;
    let names: Vec<String> = q.group_by.iter().map(|d| d.name().to_owned()).collect();
    let districts: HashMap<String, String> = if q.group_by.contains(&Dim::District) {
        repository::districts::list(db)
            .await?
            .into_iter()
            .map(|c| {
                let label = lang.pick(&c.label_de, &c.label_en).to_owned();
                (c.code, label)
            })
            .collect()
    } else {
        HashMap::new()
    };
    let label = |dim: Dim, code: &str| -> Option<String> {
        match dim {
            Dim::District => districts.get(code).cloned(),
            Dim::TargetGroup => label_of::<TargetGroup>(code, lang),
            Dim::MeasureKind => label_of::<MeasureKind>(code, lang),
            Dim::OccupationField => None,
        }
    };
    let mut hidden = [false; 6];
    let rows: Vec<DemandRow> = table
        .into_iter()
        .map(|(key, c)| {
            let exact = [0, 0, 0, c.seats_offered, c.seats_free, 0];
            let mut published = [
                cell_key::publish(c.clients, min_cell),
                cell_key::publish(c.referrals_requested, min_cell),
                cell_key::publish(c.referrals_active, min_cell),
                publish(c.seats_offered, min_cell),
                publish(c.seats_free, min_cell),
                cell_key::publish(c.unserved_clients, min_cell),
            ];
            // Secondary suppression of the exact pair: a small difference
            // between offered and free seats would count a small group.
            for (whole, part) in RELATED {
                if publish(exact[whole].saturating_sub(exact[part]), min_cell).is_none() {
                    published[part] = None;
                }
            }
            for (i, p) in published.iter().enumerate() {
                hidden[i] |= p.is_none();
            }
            let mut dimensions = BTreeMap::new();
            for ((dim, name), value) in q.group_by.iter().zip(&names).zip(key) {
                if *dim != Dim::OccupationField {
                    dimensions.insert(format!("{name}_label"), value.as_deref().and_then(|v| label(*dim, v)));
                }
                dimensions.insert(name.clone(), value);
            }
            DemandRow {
                dimensions,
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
    // Perturbed totals are cells of their own: their noise hides the
    // difference to the visible rows, so a hidden row no longer hides them.
    // The exact seat totals keep the old rule.
    let exact = [0, 0, 0, totals.seats_offered, totals.seats_free, 0];
    for (whole, part) in RELATED {
        if publish(exact[whole].saturating_sub(exact[part]), min_cell).is_none() {
            hidden[part] = true;
        }
    }
    let totals = DemandTotals {
        clients: cell_key::publish(totals.clients, min_cell),
        referrals_requested: cell_key::publish(totals.referrals_requested, min_cell),
        referrals_active: cell_key::publish(totals.referrals_active, min_cell),
        seats_offered: publish_total(totals.seats_offered, hidden[3], min_cell),
        seats_free: publish_total(totals.seats_free, hidden[4], min_cell),
        unserved_clients: cell_key::publish(totals.unserved_clients, min_cell),
    };
    Ok(DemandReport {
        group_by: names,
        perturbed: true,
        method: cell_key::METHOD.to_owned(),
        perturbation: Perturbation::current(),
        min_cell,
        rows,
        totals,
    })
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
    /// The group's label in the caller's language: the measure kind's or
    /// funding type's label, or the provider's name.
    pub group_label: Option<String>,
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
    /// Always `true`: the counts behind every figure carry a small noise.
    pub perturbed: bool,
    /// Always `cell-key`.
    pub method: String,
    pub perturbation: Perturbation,
    pub min_cell: u64,
    pub rows: Vec<OutcomeRow>,
}

/// Each a cell of referrals (records: the referrals, keyed from their
/// client's key), perturbed on its own; rates divide perturbed counts.
#[derive(Debug, Default)]
struct OutcomeCounts {
    referrals: Cell,
    accepted: Cell,
    answered: Cell,
    started: Cell,
    completed: Cell,
    dropped: Cell,
    employed: Cell,
}

pub async fn outcomes(
    db: &impl ConnectionTrait,
    group: OutcomeGroup,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    min_cell: u64,
    lang: Lang,
) -> Result<OutcomeReport, ApiError> {
    let into_work = [Outcome::Employed, Outcome::Apprenticeship, Outcome::SelfEmployed].map(|o| o.as_str());
    let facts = repository::statistics::outcomes(db, from, to, &into_work).await?;
    let measures = repository::measures::all(db).await?;
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
    for f in &facts {
        let Some(g) = group_of.get(&f.measure_id) else { continue };
        let c = table.entry(g.clone()).or_default();
        let status = ReferralStatus::parse(&f.status);
        let cell = f.cell;
        c.referrals.merge(cell);
        if f.accepted {
            c.accepted.merge(cell);
        }
        if f.accepted || status == Some(ReferralStatus::Rejected) {
            c.answered.merge(cell);
        }
        if f.started {
            c.started.merge(cell);
            if status == Some(ReferralStatus::Completed) {
                c.completed.merge(cell);
            }
            // Only `in_progress` leads to `cancelled` once started, so this is a premature exit too.
            if matches!(status, Some(ReferralStatus::Failed | ReferralStatus::Cancelled)) {
                c.dropped.merge(cell);
            }
        }
        if status == Some(ReferralStatus::Completed) && f.into_work {
            c.employed.merge(cell);
        }
    }
    let providers: HashMap<String, String> = if group == OutcomeGroup::Provider {
        let mut names = HashMap::new();
        for id in measures.iter().map(|m| m.provider_id).collect::<HashSet<_>>() {
            if let Some(p) = repository::providers::find(db, id).await? {
                names.insert(id.to_string(), p.name);
            }
        }
        names
    } else {
        HashMap::new()
    };
    let rows = table
        .into_iter()
        .map(|(group_value, c)| {
            let referrals = cell_key::publish(c.referrals, min_cell);
            let group_label = match group {
                OutcomeGroup::MeasureKind => label_of::<MeasureKind>(&group_value, lang),
                OutcomeGroup::Provider => providers.get(&group_value).cloned(),
                OutcomeGroup::Funding => label_of::<FundingType>(&group_value, lang),
            };
            let row = OutcomeRow {
                group: group_value,
                group_label,
                referrals,
                acceptance_rate: cell_key::publish_rate(c.accepted, c.answered, min_cell),
                completion_rate: cell_key::publish_rate(c.completed, c.started, min_cell),
                dropout_rate: cell_key::publish_rate(c.dropped, c.started, min_cell),
                employment_share: cell_key::publish_rate(c.employed, c.completed, min_cell),
                suppressed: false,
            };
            let suppressed = referrals.is_none()
                || (c.answered.count > 0 && row.acceptance_rate.is_none())
                || (c.started.count > 0 && (row.completion_rate.is_none() || row.dropout_rate.is_none()))
                || (c.completed.count > 0 && row.employment_share.is_none());
            OutcomeRow { suppressed, ..row }
        })
        .collect();
    Ok(OutcomeReport {
        group_by: group.name().to_owned(),
        perturbed: true,
        method: cell_key::METHOD.to_owned(),
        perturbation: Perturbation::current(),
        min_cell,
        rows,
    })
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
    /// The group's label in the caller's language: the programme's name,
    /// the funder's name or the applicant kind's label.
    pub group_label: Option<String>,
    /// Applications (all statuses but `draft`), perturbed.
    pub applications: Option<u64>,
    /// Granted applications, perturbed.
    pub granted: Option<u64>,
    /// Exact sum (money, not a count of people); published only when the
    /// applications are, perturbed and unperturbed, at least `min_cell`.
    pub amount_requested_eur: Option<f64>,
    /// Funding raised: the granted amounts. Exact, published only when the
    /// grants are, perturbed and unperturbed, at least `min_cell`.
    pub amount_granted_eur: Option<f64>,
    pub suppressed: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FundingReport {
    pub group_by: String,
    /// Always `true`: the counts carry a small noise (the sums of money do not).
    pub perturbed: bool,
    /// Always `cell-key`.
    pub method: String,
    pub perturbation: Perturbation,
    pub min_cell: u64,
    pub rows: Vec<FundingRow>,
}

/// Funding raised, by programme, funder or kind of applicant. Counts are
/// perturbed cells whose records are the applications: an application of a
/// client is keyed from the client's key, one of an organisation from a
/// secret the service keeps (`server_keys`), so no reader can recompute a
/// key. Sums of money are exact and published only where both the true and
/// the perturbed count reach `min_cell` (a small group's sum would reveal
/// individual grants).
pub async fn funding(
    db: &impl ConnectionTrait,
    group: FundingGroup,
    min_cell: u64,
    lang: Lang,
) -> Result<FundingReport, ApiError> {
    let applications = repository::funding::all_applications(db).await?;
    let client_keys: HashMap<Uuid, u32> = repository::statistics::applicant_client_keys(db)
        .await?
        .into_iter()
        .map(|(id, key)| (id, key_of(key)))
        .collect();
    let secret = repository::server_keys::get_or_create(db, STATS_SECRET, crate::startup::random_key).await?;
    let mut programmes: HashMap<Uuid, (String, String)> = HashMap::new();
    if group != FundingGroup::ApplicantKind {
        let ids: HashSet<Uuid> = applications.iter().map(|a| a.programme_id).collect();
        for id in ids {
            if let Some(p) = repository::funding::find_programme(db, id).await? {
                programmes.insert(id, (p.name, p.funder));
            }
        }
    }
    #[derive(Default)]
    struct Sums {
        label: Option<String>,
        applications: Cell,
        granted: Cell,
        requested: i64,
        granted_cents: i64,
    }
    let mut table: BTreeMap<String, Sums> = BTreeMap::new();
    for a in applications.iter().filter(|a| a.status != "draft") {
        let programme = programmes.get(&a.programme_id);
        let (key, label) = match group {
            FundingGroup::Programme => (a.programme_id.to_string(), programme.map(|p| p.0.clone())),
            FundingGroup::Funder => {
                let funder = programme.map(|p| p.1.clone()).unwrap_or_default();
                (funder.clone(), Some(funder))
            }
            FundingGroup::ApplicantKind => {
                (a.applicant_kind.clone(), label_of::<ApplicantKind>(&a.applicant_kind, lang))
            }
        };
        let record = match client_keys.get(&a.applicant_id).filter(|_| a.applicant_kind == "client") {
            Some(client_key) => cell_key::derived_key(*client_key, a.id.as_u128()),
            None => cell_key::secret_key(secret.as_bytes(), a.id.as_u128()),
        };
        let s = table.entry(key).or_default();
        s.label = label;
        s.applications.add(record);
        s.requested += a.amount_requested_cents;
        if a.status == "granted" {
            s.granted.add(record);
            s.granted_cents += a.amount_granted_cents.unwrap_or(0);
        }
    }
    let rows = table
        .into_iter()
        .map(|(group, s)| {
            let applications = cell_key::publish(s.applications, min_cell);
            let granted = cell_key::publish(s.granted, min_cell);
            // Zero or at least `min_cell` real records: only then is an
            // exact sum safe to show.
            let large = |c: Cell| c.count == 0 || c.count >= min_cell;
            let row = FundingRow {
                group,
                group_label: s.label,
                applications,
                granted,
                amount_requested_eur: applications
                    .filter(|_| large(s.applications))
                    .map(|_| s.requested as f64 / 100.0),
                amount_granted_eur: granted.filter(|_| large(s.granted)).map(|_| s.granted_cents as f64 / 100.0),
                suppressed: false,
            };
            let suppressed = row.applications.is_none()
                || row.granted.is_none()
                || row.amount_requested_eur.is_none()
                || row.amount_granted_eur.is_none();
            FundingRow { suppressed, ..row }
        })
        .collect();
    Ok(FundingReport {
        group_by: group.name().to_owned(),
        perturbed: true,
        method: cell_key::METHOD.to_owned(),
        perturbation: Perturbation::current(),
        min_cell,
        rows,
    })
}

/// The `server_keys` entry from which records without a client of their
/// own (an organisation's funding application) get their record keys.
const STATS_SECRET: &str = "stats_record_key";
