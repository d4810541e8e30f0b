//! `/api/v1/statistics`: anonymised demand, outcomes and funding (no
//! personal data; counts perturbed by the cell-key method, then counts below
//! `OSTWERK_STATS_MIN_CELL` suppressed), as JSON or CSV.
use actix_web::{
    HttpRequest, HttpResponse, get,
    http::header::{self, ContentType},
    web,
    web::Bytes,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use super::common::DateOrTimestamp;
use crate::{
    auth::{Access, AuthUser, Role::*},
    domain::statistics::Lang,
    error::{ApiError, FieldError},
    http::{heavy::ResponseCache, request_context::german_preferred},
    service::statistics::{
        self, DemandQuery, DemandReport, Dim, FundingGroup, FundingReport, OutcomeGroup, OutcomeReport,
    },
    startup::AppState,
};

pub const DEMAND: Access = Access::new("get_demand_statistics", &[Admin, Caseworker, Jobcenter, Provider, Analyst]);
pub const OUTCOMES: Access = Access::new("get_outcome_statistics", &[Admin, Caseworker, Jobcenter, Provider, Analyst]);
pub const FUNDING: Access = Access::new("get_funding_statistics", &[Admin, Caseworker, Jobcenter, Provider, Analyst]);
pub const ACCESS: &[&Access] = &[&DEMAND, &OUTCOMES, &FUNDING];

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_demand_statistics).service(get_outcome_statistics).service(get_funding_statistics);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DemandParams {
    /// Comma list of `district`, `target_group`, `occupation_field` (first two KldB digits), `measure_kind`.
    #[param(
        example = "district,target_group",
        pattern = "^(district|target_group|occupation_field|measure_kind)(,(district|target_group|occupation_field|measure_kind))*$"
    )]
    pub group_by: Option<String>,
    /// Only this district.
    #[param(min_length = 1)]
    pub district: Option<String>,
    /// Referrals created at or after this date or timestamp (see `DateOrTimestamp`).
    /// Midnight UTC bounds (dates, or timestamps at 00:00:00Z) are answered
    /// from the maintained aggregate; other timestamps count the referrals
    /// themselves (the same answer, more slowly).
    #[param(value_type = Option<DateOrTimestamp>)]
    pub from: Option<String>,
    /// Referrals created before this date or timestamp (see `DateOrTimestamp`).
    /// Midnight UTC bounds are answered from the maintained aggregate (see `from`).
    #[param(value_type = Option<DateOrTimestamp>)]
    pub to: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutcomeParams {
    /// `measure_kind` (default), `provider` or `funding`.
    #[param(pattern = "^(measure_kind|provider|funding)$")]
    pub group_by: Option<String>,
    /// Referrals created at or after this date or timestamp (see `DateOrTimestamp`).
    #[param(value_type = Option<DateOrTimestamp>)]
    pub from: Option<String>,
    /// Referrals created before this date or timestamp (see `DateOrTimestamp`).
    #[param(value_type = Option<DateOrTimestamp>)]
    pub to: Option<String>,
}

/// The representation a caller asked for: JSON (default) or CSV, and the
/// language of labels and CSV headers.
#[derive(Debug, Clone, Copy)]
struct Representation {
    csv: bool,
    lang: Lang,
}

impl Representation {
    fn of(req: &HttpRequest) -> Self {
        let header = |name| req.headers().get(name).and_then(|v: &header::HeaderValue| v.to_str().ok());
        let lang = if german_preferred(header(header::ACCEPT_LANGUAGE)) { Lang::De } else { Lang::En };
        Self { csv: wants_csv(header(header::ACCEPT)), lang }
    }
}

/// Whether `Accept` prefers `text/csv` (a `q` above 0 and not below that
/// of JSON); anything else gets JSON.
fn wants_csv(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    let q_of = |wanted: &[&str]| -> f32 {
        accept
            .split(',')
            .filter_map(|part| {
                let mut it = part.trim().split(';');
                let media = it.next()?.trim().to_ascii_lowercase();
                let q = it.find_map(|p| p.trim().strip_prefix("q=")).and_then(|q| q.parse::<f32>().ok()).unwrap_or(1.0);
                wanted.contains(&media.as_str()).then_some(q)
            })
            .fold(0.0, f32::max)
    };
    let csv = q_of(&["text/csv"]);
    csv > 0.0 && csv >= q_of(&["application/json", "application/*"])
}

/// The answer for `what` (a normalised query): from the principal's cache,
/// else computed in one of the principal's heavy-request slots (`429` when
/// they are all taken) and cached. See `http::heavy`. Each representation
/// is cached on its own.
async fn cached<T: Serialize + CsvTable>(
    state: &AppState,
    user: &AuthUser,
    what: String,
    rep: Representation,
    compute: impl AsyncFnOnce() -> Result<T, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let key = ResponseCache::key(user, &format!("{what} {rep:?}"));
    let body = match state.stats_cache.get(&key) {
        Some(body) => body,
        None => {
            let _slot = state.heavy.enter(user)?;
            let report = compute().await?;
            let body = if rep.csv {
                Bytes::from(to_csv(&report.table(rep.lang), rep.lang)?)
            } else {
                Bytes::from(serde_json::to_vec(&report).map_err(ApiError::internal)?)
            };
            state.stats_cache.put(key, body.clone());
            body
        }
    };
    let mut res = HttpResponse::Ok();
    res.insert_header((header::VARY, "Accept, Accept-Language"))
        .insert_header((header::CONTENT_LANGUAGE, rep.lang.pick("de", "en")));
    if rep.csv {
        res.content_type("text/csv; charset=utf-8");
    } else {
        res.content_type(ContentType::json());
    }
    Ok(res.body(body))
}

/// A statistics answer as a table: header names (wire names) and rows of
/// cells, `None` for `null`.
struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<Option<Cell>>>,
}

/// One CSV cell.
enum Cell {
    Text(String),
    Count(u64),
    Decimal(f64),
    Flag(bool),
}

trait CsvTable {
    fn table(&self, lang: Lang) -> Table;
}

/// The header of column `name` in `lang`. Unknown names (none today) stay
/// as they are.
fn header_name(name: &str, lang: Lang) -> String {
    if lang == Lang::En {
        return name.to_owned();
    }
    let de = match name {
        "district" => "Ortsteil",
        "district_label" => "Ortsteil (Bezeichnung)",
        "target_group" => "Zielgruppe",
        "target_group_label" => "Zielgruppe (Bezeichnung)",
        "occupation_field" => "Berufsbereich (KldB 2010)",
        "measure_kind" => "Maßnahmeart",
        "measure_kind_label" => "Maßnahmeart (Bezeichnung)",
        "clients" => "Klient:innen",
        "referrals_requested" => "Zuweisungen angefragt",
        "referrals_active" => "Zuweisungen aktiv",
        "seats_offered" => "Plätze angeboten",
        "seats_free" => "Plätze frei",
        "unserved_clients" => "Klient:innen ohne Zuweisung",
        "group" => "Gruppe",
        "group_label" => "Gruppe (Bezeichnung)",
        "referrals" => "Zuweisungen",
        "acceptance_rate" => "Annahmequote",
        "completion_rate" => "Abschlussquote",
        "dropout_rate" => "Abbruchquote",
        "employment_share" => "Anteil Arbeit oder Ausbildung",
        "applications" => "Anträge",
        "granted" => "Bewilligungen",
        "amount_requested_eur" => "Beantragt (EUR)",
        "amount_granted_eur" => "Bewilligt (EUR)",
        "suppressed" => "Geheimgehalten",
        other => other,
    };
    de.to_owned()
}

/// Semicolon-separated, UTF-8 with a byte-order mark, as German
/// spreadsheets expect (they read a comma as the decimal separator, and
/// without the BOM they guess Windows-1252 and garble umlauts). German
/// output writes decimals with a comma and flags as `ja`/`nein`.
fn to_csv(table: &Table, lang: Lang) -> Result<Vec<u8>, ApiError> {
    let mut out = "\u{feff}".as_bytes().to_vec();
    {
        let mut w = csv::WriterBuilder::new().delimiter(b';').from_writer(&mut out);
        w.write_record(table.headers.iter().map(|h| header_name(h, lang))).map_err(ApiError::internal)?;
        for row in &table.rows {
            let cells = row.iter().map(|c| match c {
                None => String::new(),
                Some(Cell::Text(t)) => t.clone(),
                Some(Cell::Count(n)) => n.to_string(),
                Some(Cell::Decimal(x)) if lang == Lang::De => x.to_string().replace('.', ","),
                Some(Cell::Decimal(x)) => x.to_string(),
                Some(Cell::Flag(b)) => {
                    lang.pick(if *b { "ja" } else { "nein" }, if *b { "true" } else { "false" }).to_owned()
                }
            });
            w.write_record(cells).map_err(ApiError::internal)?;
        }
        w.flush().map_err(ApiError::internal)?;
    }
    Ok(out)
}

fn count(n: Option<u64>) -> Option<Cell> {
    n.map(Cell::Count)
}

fn decimal(x: Option<f64>) -> Option<Cell> {
    x.map(Cell::Decimal)
}

fn text(t: Option<&String>) -> Option<Cell> {
    t.map(|t| Cell::Text(t.clone()))
}

const DEMAND_COUNTS: [&str; 6] =
    ["clients", "referrals_requested", "referrals_active", "seats_offered", "seats_free", "unserved_clients"];

impl CsvTable for DemandReport {
    /// The dimensions (each coded one with its label), the counts and
    /// `suppressed`; then, when there are dimensions, a `total` line with
    /// the totals (`Insgesamt` in German).
    fn table(&self, lang: Lang) -> Table {
        let mut dims = Vec::new();
        for d in &self.group_by {
            dims.push(d.clone());
            if d != "occupation_field" {
                dims.push(format!("{d}_label"));
            }
        }
        let headers: Vec<String> = dims
            .iter()
            .cloned()
            .chain(DEMAND_COUNTS.iter().map(|c| (*c).to_owned()))
            .chain(["suppressed".to_owned()])
            .collect();
        let mut rows: Vec<Vec<Option<Cell>>> = self
            .rows
            .iter()
            .map(|r| {
                let mut cells: Vec<Option<Cell>> =
                    dims.iter().map(|d| text(r.dimensions.get(d).and_then(Option::as_ref))).collect();
                cells.extend(
                    [
                        r.clients,
                        r.referrals_requested,
                        r.referrals_active,
                        r.seats_offered,
                        r.seats_free,
                        r.unserved_clients,
                    ]
                    .map(count),
                );
                cells.push(Some(Cell::Flag(r.suppressed)));
                cells
            })
            .collect();
        if !dims.is_empty() {
            let t = &self.totals;
            let mut cells: Vec<Option<Cell>> = dims.iter().map(|_| None).collect();
            cells[0] = Some(Cell::Text(lang.pick("Insgesamt", "total").to_owned()));
            cells.extend(
                [
                    t.clients,
                    t.referrals_requested,
                    t.referrals_active,
                    t.seats_offered,
                    t.seats_free,
                    t.unserved_clients,
                ]
                .map(count),
            );
            let suppressed = cells.iter().skip(dims.len()).any(Option::is_none);
            cells.push(Some(Cell::Flag(suppressed)));
            rows.push(cells);
        }
        Table { headers, rows }
    }
}

impl CsvTable for OutcomeReport {
    fn table(&self, _lang: Lang) -> Table {
        let headers = [
            "group",
            "group_label",
            "referrals",
            "acceptance_rate",
            "completion_rate",
            "dropout_rate",
            "employment_share",
            "suppressed",
        ]
        .map(str::to_owned)
        .to_vec();
        let rows = self
            .rows
            .iter()
            .map(|r| {
                vec![
                    Some(Cell::Text(r.group.clone())),
                    text(r.group_label.as_ref()),
                    count(r.referrals),
                    decimal(r.acceptance_rate),
                    decimal(r.completion_rate),
                    decimal(r.dropout_rate),
                    decimal(r.employment_share),
                    Some(Cell::Flag(r.suppressed)),
                ]
            })
            .collect();
        Table { headers, rows }
    }
}

impl CsvTable for FundingReport {
    fn table(&self, _lang: Lang) -> Table {
        let headers = [
            "group",
            "group_label",
            "applications",
            "granted",
            "amount_requested_eur",
            "amount_granted_eur",
            "suppressed",
        ]
        .map(str::to_owned)
        .to_vec();
        let rows = self
            .rows
            .iter()
            .map(|r| {
                vec![
                    Some(Cell::Text(r.group.clone())),
                    text(r.group_label.as_ref()),
                    count(r.applications),
                    count(r.granted),
                    decimal(r.amount_requested_eur),
                    decimal(r.amount_granted_eur),
                    Some(Cell::Flag(r.suppressed)),
                ]
            })
            .collect();
        Table { headers, rows }
    }
}

/// A date (midnight UTC) or a timestamp with an offset
/// (`validate::parse_timestamp`); `400` otherwise.
fn instant(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(v) = value.map(str::trim) else { return Ok(None) };
    if let Some(d) = crate::domain::validate::parse_date(v) {
        return Ok(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()));
    }
    crate::domain::validate::parse_timestamp(v).map(Some).map_err(|message| {
        ApiError::bad_request("Invalid query parameters.")
            .with_errors(vec![FieldError::new(field, format!("must be a date YYYY-MM-DD or a timestamp: {message}"))])
    })
}

/// Demand by district, target group, occupation field, measure kind
///
/// Per row: active `clients`, `referrals_requested`, `referrals_active`,
/// `seats_offered` and `seats_free` of measures not closed, and
/// `unserved_clients` (active clients with no active referral). A count from
/// 1 to `min_cell − 1` is `null` and the row says `"suppressed": true`; a
/// total is `null` when it would reveal a suppressed cell. Where one count
/// is part of another (`referrals_requested` of `referrals_active`,
/// `seats_free` of `seats_offered`, `unserved_clients` of `clients`) and the
/// two differ by 1 to `min_cell − 1`, the part is `null` too, since the
/// difference would count a small group. Client and
/// referral counts use the client's district, target groups and occupation
/// fields; seats use the measure's. `referrals_active` includes the
/// `requested` ones (active: `requested`, `accepted`, `on_hold`,
/// `in_progress`). `from` and `to` narrow only the two referral counts;
/// clients, seats and `unserved_clients` describe the present. By
/// `measure_kind`, a client is counted under the kind of each measure it has
/// an active referral to, else under `null`. Anonymous: no personal data ever.
///
/// **Perturbed (cell-key method).** Every count of people (clients,
/// referrals, unserved clients) carries a small, fixed noise of at most ±2:
/// the same group of people always gets the same noise, in every table and
/// on every day, so subtracting two answers yields noise, not a person. The
/// noise averages to 0, so sums over many rows stay right; totals are
/// perturbed on their own and need not equal the sum of the rows. Seats are
/// exact (the measures publish them). After the noise, a count from 1 to
/// `min_cell − 1` is still `null`. `"perturbed": true`, `"method":
/// "cell-key"` and the parameters are in every answer. Beside each coded
/// dimension its label (`district_label`, …) in the caller's language.
#[utoipa::path(
    tag = "statistics",
    params(DemandParams),
    responses((status = 200, description = "The demand table: JSON by default; with `Accept: text/csv` semicolon-separated UTF-8 with a byte-order mark, headers in German with `Accept-Language: de`", content(
        (DemandReport = "application/json"),
        (String = "text/csv")
    ))),
)]
#[get("/statistics/demand")]
pub async fn get_demand_statistics(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<DemandParams>,
) -> Result<HttpResponse, ApiError> {
    user.require(&DEMAND)?;
    let q = query.into_inner();
    let query = DemandQuery {
        group_by: Dim::parse_list(q.group_by.as_deref())?,
        district: q.district.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty()),
        from: instant("from", q.from.as_deref())?,
        to: instant("to", q.to.as_deref())?,
    };
    let min_cell = u64::from(state.settings.stats_min_cell);
    let what = format!("demand {:?} {:?} {:?} {:?}", query.group_by, query.district, query.from, query.to);
    let rep = Representation::of(&req);
    cached(&state, &user, what, rep, async || statistics::demand(&state.db, &query, min_cell, rep.lang).await).await
}

/// Outcomes by measure kind, provider or funding
///
/// Per group of measures: `referrals`; `acceptance_rate` (accepted ever ÷
/// accepted ever or rejected); `completion_rate` (completed ÷ started);
/// `dropout_rate` (ended early after the start — `failed` or `cancelled`
/// while in progress, whoever ended it — ÷ started); and `employment_share`
/// (completions with outcome `employed`, `apprenticeship` or
/// `self_employed` ÷ completions). A referral count from 1 to `min_cell − 1`
/// is `null`, and so is a rate whose own denominator is below `min_cell`;
/// either makes the row `"suppressed": true`.
///
/// Perturbed (cell-key method, see the demand statistics): every count is
/// a cell with its own fixed noise of at most ±2, and rates divide
/// perturbed counts. `group_label` names the group in the caller's language.
#[utoipa::path(
    tag = "statistics",
    params(OutcomeParams),
    responses((status = 200, description = "The outcome table: JSON by default; with `Accept: text/csv` semicolon-separated UTF-8 with a byte-order mark, headers in German with `Accept-Language: de`", content(
        (OutcomeReport = "application/json"),
        (String = "text/csv")
    ))),
)]
#[get("/statistics/outcomes")]
pub async fn get_outcome_statistics(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<OutcomeParams>,
) -> Result<HttpResponse, ApiError> {
    user.require(&OUTCOMES)?;
    let q = query.into_inner();
    let group = OutcomeGroup::parse(q.group_by.as_deref())?;
    let from = instant("from", q.from.as_deref())?;
    let to = instant("to", q.to.as_deref())?;
    let min_cell = u64::from(state.settings.stats_min_cell);
    let what = format!("outcomes {group:?} {from:?} {to:?}");
    let rep = Representation::of(&req);
    cached(&state, &user, what, rep, async || {
        statistics::outcomes(&state.db, group, from, to, min_cell, rep.lang).await
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FundingParams {
    /// `programme` (default), `funder` or `applicant_kind`.
    #[param(pattern = "^(programme|funder|applicant_kind)$")]
    pub group_by: Option<String>,
}

/// Funding raised
///
/// Per group: applications (not drafts), grants, amounts requested and
/// granted. The counts are perturbed (cell-key method, see the demand
/// statistics; at most ±2, the same every time); the sums of money are
/// exact and shown only where at least `min_cell` applications (or grants)
/// stand behind them. Groups with fewer than `min_cell` applications or
/// grants are suppressed, their sums with them. `group_label` is the
/// programme's or funder's name or the applicant kind's label.
#[utoipa::path(
    tag = "statistics",
    params(FundingParams),
    responses((status = 200, description = "The funding table: JSON by default; with `Accept: text/csv` semicolon-separated UTF-8 with a byte-order mark, headers in German with `Accept-Language: de`", content(
        (FundingReport = "application/json"),
        (String = "text/csv")
    ))),
)]
#[get("/statistics/funding")]
pub async fn get_funding_statistics(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<FundingParams>,
) -> Result<HttpResponse, ApiError> {
    user.require(&FUNDING)?;
    let group = FundingGroup::parse(query.group_by.as_deref())?;
    let min_cell = u64::from(state.settings.stats_min_cell);
    let what = format!("funding {group:?}");
    let rep = Representation::of(&req);
    cached(&state, &user, what, rep, async || statistics::funding(&state.db, group, min_cell, rep.lang).await).await
}
