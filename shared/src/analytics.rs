//! A tenant's numbers over a bounded time range, in one aggregation on indexed fields
//! (`tenantId`, `createdAt`): inbound and outbound messages per day (or hour), the delivery
//! funnel of what was sent (sent, delivered, read; failed by Graph's error code), taps per
//! template and option (reply buttons and list rows), flow rule hits, and the median time
//! from a customer's message to the bot's reply leaving (`statusAt.sent`).

use std::collections::BTreeMap;

use futures::TryStreamExt;
use mongodb::bson::{Bson, DateTime, Document, doc};
use serde::{Deserialize, Serialize};

use crate::{
    error::ApiError,
    ids::{TenantId, rfc3339},
    store::{MESSAGES, Store},
    template::Template,
};

/// The longest range one request may ask for (the aggregation stays bounded).
pub const MAX_DAYS: i64 = 92;
/// Hourly buckets only over this many days.
pub const MAX_HOURLY_DAYS: i64 = 7;
const DAY_MS: i64 = 24 * 3600 * 1000;

/// `GET /tenants/{tenantId}/analytics` query as sent.
#[derive(Debug, Default, Deserialize)]
pub struct AnalyticsQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub granularity: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Day,
    Hour,
}

/// A checked range: `[from, to)`.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub from: DateTime,
    pub to: DateTime,
    pub granularity: Granularity,
}

/// A date (`2026-12-01`, midnight UTC) or an RFC 3339 time.
fn instant(field: &str, s: &str) -> Result<DateTime, ApiError> {
    let s = s.trim();
    let full = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        s.to_owned()
    };
    DateTime::parse_rfc3339_str(&full).map_err(|_| {
        ApiError::invalid(
            field,
            "must be a date (2026-12-01) or an RFC 3339 time (2026-12-01T10:00:00Z)",
        )
    })
}

impl AnalyticsQuery {
    /// Defaults: the last 7 days, by day. `to` is exclusive; a bare date as `to` means the
    /// end of that day.
    pub fn range(&self) -> Result<Range, ApiError> {
        self.range_at(DateTime::now())
    }

    fn range_at(&self, now: DateTime) -> Result<Range, ApiError> {
        let granularity = match self.granularity.as_deref() {
            None | Some("day") => Granularity::Day,
            Some("hour") => Granularity::Hour,
            Some(_) => return Err(ApiError::invalid("granularity", "must be day or hour")),
        };
        let to = match self.to.as_deref() {
            None => now,
            Some(t) if t.trim().len() == 10 => {
                DateTime::from_millis(instant("to", t)?.timestamp_millis() + DAY_MS)
            }
            Some(t) => instant("to", t)?,
        };
        let from = match self.from.as_deref() {
            None => DateTime::from_millis(to.timestamp_millis() - 7 * DAY_MS),
            Some(f) => instant("from", f)?,
        };
        let span = to.timestamp_millis() - from.timestamp_millis();
        if span <= 0 {
            return Err(ApiError::invalid("from", "must be before to"));
        }
        let max = match granularity {
            Granularity::Day => MAX_DAYS,
            Granularity::Hour => MAX_HOURLY_DAYS,
        };
        if span > max * DAY_MS {
            return Err(ApiError::invalid(
                "from",
                format!("the range is at most {max} days by {granularity:?}").to_lowercase(),
            ));
        }
        Ok(Range {
            from,
            to,
            granularity,
        })
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    /// `2026-12-01` (day) or `2026-12-01T10` (hour), UTC.
    pub bucket: String,
    pub inbound: u64,
    pub outbound: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Funnel {
    /// Outbound messages accepted in the range.
    pub outbound: u64,
    pub sent: u64,
    pub delivered: u64,
    pub read: u64,
    pub failed: u64,
    /// Graph's error code → how many failed with it.
    pub failed_by_code: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Tap {
    pub template_key: String,
    /// The button's or list row's id.
    pub option: String,
    /// Its title in the template as it is now (absent when the option is gone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RuleHit {
    pub rule_id: String,
    pub count: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReplyTime {
    /// Bot replies that left (have `statusAt.sent`) in the range.
    pub replies: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub median_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub from: String,
    pub to: String,
    pub granularity: Granularity,
    /// Every bucket of the range, empty ones included.
    pub series: Vec<Bucket>,
    pub totals: Bucket,
    pub funnel: Funnel,
    pub taps: Vec<Tap>,
    pub rule_hits: Vec<RuleHit>,
    pub reply_time: ReplyTime,
}

fn count(d: &Document, key: &str) -> u64 {
    match d.get(key) {
        Some(Bson::Int32(n)) => (*n).max(0) as u64,
        Some(Bson::Int64(n)) => (*n).max(0) as u64,
        Some(Bson::Double(n)) => n.max(0.0) as u64,
        _ => 0,
    }
}

fn docs(d: &Document, key: &str) -> Vec<Document> {
    d.get_array(key)
        .map(|a| a.iter().filter_map(|b| b.as_document().cloned()).collect())
        .unwrap_or_default()
}

fn format_of(g: Granularity) -> &'static str {
    match g {
        Granularity::Day => "%Y-%m-%d",
        Granularity::Hour => "%Y-%m-%dT%H",
    }
}

/// Every bucket label from `from` to `to`.
fn labels(range: &Range) -> Vec<String> {
    let step = match range.granularity {
        Granularity::Day => DAY_MS,
        Granularity::Hour => 3600 * 1000,
    };
    let start = range.from.timestamp_millis() - range.from.timestamp_millis().rem_euclid(step);
    let cut = match range.granularity {
        Granularity::Day => 10,
        Granularity::Hour => 13,
    };
    (0..)
        .map(|i| start + i * step)
        .take_while(|t| *t < range.to.timestamp_millis())
        .map(|t| {
            rfc3339(DateTime::from_millis(t))
                .chars()
                .take(cut)
                .collect()
        })
        .collect()
}

/// The option titles of the tenant's templates: (template key, option id) → title.
fn titles(templates: &[Template]) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for t in templates {
        let key = t.key.to_string();
        for b in &t.buttons {
            out.insert(
                (key.clone(), b.id.as_str().to_owned()),
                b.title.as_str().to_owned(),
            );
        }
        for row in t.list.iter().flat_map(|l| l.rows()) {
            out.insert((key.clone(), row.id.clone()), row.title.clone());
        }
    }
    out
}

pub async fn report(
    store: &Store,
    tenant: &TenantId,
    range: &Range,
    templates: &[Template],
) -> Result<Report, ApiError> {
    let matched = doc! {
        "tenantId": *tenant,
        "createdAt": { "$gte": range.from, "$lt": range.to },
    };
    let sent_at = |status: &str| {
        doc! { "$sum": { "$cond": [{ "$ifNull": [format!("$statusAt.{status}"), false] }, 1, 0] } }
    };
    let pipeline = vec![
        doc! { "$match": matched },
        doc! { "$facet": {
            "series": [
                { "$group": {
                    "_id": {
                        "direction": "$direction",
                        "bucket": { "$dateToString": {
                            "format": format_of(range.granularity), "date": "$createdAt",
                        } },
                    },
                    "n": { "$sum": 1 },
                } },
            ],
            "funnel": [
                { "$match": { "direction": "OUT" } },
                { "$group": {
                    "_id": null,
                    "outbound": { "$sum": 1 },
                    "sent": sent_at("sent"),
                    "delivered": sent_at("delivered"),
                    "read": sent_at("read"),
                } },
            ],
            "failed": [
                { "$match": { "direction": "OUT", "status": "failed" } },
                { "$group": { "_id": { "$ifNull": ["$lastError.code", "unknown"] }, "n": { "$sum": 1 } } },
            ],
            "taps": [
                { "$match": { "trigger.kind": "button" } },
                { "$group": {
                    "_id": { "template": "$trigger.template", "option": "$trigger.option" },
                    "n": { "$sum": 1 },
                } },
            ],
            "rules": [
                { "$match": { "trigger.kind": { "$in": ["rule", "handoff"] } } },
                { "$group": { "_id": "$trigger.rule", "n": { "$sum": 1 } } },
            ],
            "replyTime": [
                { "$match": { "inboundAt": { "$exists": true }, "statusAt.sent": { "$exists": true } } },
                { "$project": { "d": { "$subtract": ["$statusAt.sent", "$inboundAt"] } } },
                { "$sort": { "d": 1 } },
                { "$group": { "_id": null, "all": { "$push": "$d" } } },
            ],
        } },
    ];
    let facets: Vec<Document> = store
        .collection::<Document>(MESSAGES)
        .await?
        .aggregate(pipeline)
        .await?
        .try_collect()
        .await?;
    let f = facets.into_iter().next().unwrap_or_default();

    let mut series: Vec<Bucket> = labels(range)
        .into_iter()
        .map(|bucket| Bucket {
            bucket,
            ..Bucket::default()
        })
        .collect();
    let mut totals = Bucket {
        bucket: "total".into(),
        ..Bucket::default()
    };
    for g in docs(&f, "series") {
        let id = g.get_document("_id").cloned().unwrap_or_default();
        let n = count(&g, "n");
        let label = id.get_str("bucket").unwrap_or_default();
        let slot = series.iter_mut().find(|b| b.bucket == label);
        match id.get_str("direction") {
            Ok("IN") => {
                totals.inbound += n;
                if let Some(b) = slot {
                    b.inbound += n;
                }
            }
            Ok("OUT") => {
                totals.outbound += n;
                if let Some(b) = slot {
                    b.outbound += n;
                }
            }
            _ => {}
        }
    }

    let mut funnel = docs(&f, "funnel")
        .first()
        .map(|g| Funnel {
            outbound: count(g, "outbound"),
            sent: count(g, "sent"),
            delivered: count(g, "delivered"),
            read: count(g, "read"),
            ..Funnel::default()
        })
        .unwrap_or_default();
    for g in docs(&f, "failed") {
        let code = match g.get("_id") {
            Some(Bson::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => "unknown".into(),
        };
        let n = count(&g, "n");
        funnel.failed += n;
        *funnel.failed_by_code.entry(code).or_default() += n;
    }

    let names = titles(templates);
    let mut taps: Vec<Tap> = docs(&f, "taps")
        .into_iter()
        .filter_map(|g| {
            let id = g.get_document("_id").ok()?;
            let template_key = id.get_str("template").ok()?.to_owned();
            let option = id.get_str("option").ok()?.to_owned();
            Some(Tap {
                title: names.get(&(template_key.clone(), option.clone())).cloned(),
                template_key,
                option,
                count: count(&g, "n"),
            })
        })
        .collect();
    taps.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| (&a.template_key, &a.option).cmp(&(&b.template_key, &b.option)))
    });
    let mut rule_hits: Vec<RuleHit> = docs(&f, "rules")
        .into_iter()
        .filter_map(|g| {
            Some(RuleHit {
                rule_id: g.get_str("_id").ok()?.to_owned(),
                count: count(&g, "n"),
            })
        })
        .collect();
    rule_hits.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.rule_id.cmp(&b.rule_id))
    });

    let waits: Vec<i64> = docs(&f, "replyTime")
        .first()
        .and_then(|g| g.get_array("all").ok().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|b| match b {
            Bson::Int64(n) => Some(*n),
            Bson::Int32(n) => Some(i64::from(*n)),
            Bson::Double(n) => Some(*n as i64),
            _ => None,
        })
        .collect();
    let reply_time = ReplyTime {
        replies: waits.len() as u64,
        median_seconds: median_ms(&waits).map(|ms| ms / 1000.0),
    };

    Ok(Report {
        from: rfc3339(range.from),
        to: rfc3339(range.to),
        granularity: range.granularity,
        series,
        totals,
        funnel,
        taps,
        rule_hits,
        reply_time,
    })
}

/// The median of sorted milliseconds (the mean of the middle two for an even count).
fn median_ms(sorted: &[i64]) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    Some(if n % 2 == 1 {
        sorted[n / 2] as f64
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) as f64 / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(from: Option<&str>, to: Option<&str>, g: Option<&str>) -> AnalyticsQuery {
        AnalyticsQuery {
            from: from.map(str::to_owned),
            to: to.map(str::to_owned),
            granularity: g.map(str::to_owned),
        }
    }

    fn field(e: ApiError) -> String {
        match e {
            ApiError::Unprocessable { field, .. } => field,
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn ranges_are_bounded_and_named() {
        let now = DateTime::parse_rfc3339_str("2026-12-03T10:00:00Z").expect("now");
        let r = q(None, None, None).range_at(now).expect("default");
        assert_eq!(labels(&r).len(), 8, "7 days from 10:00 touch 8 dates");
        let r = q(Some("2026-12-01"), Some("2026-12-02"), None)
            .range_at(now)
            .expect("two whole days");
        assert_eq!(labels(&r), ["2026-12-01", "2026-12-02"]);
        let r = q(
            Some("2026-12-01T22:00:00Z"),
            Some("2026-12-02T01:00:00Z"),
            Some("hour"),
        )
        .range_at(now)
        .expect("hours");
        assert_eq!(
            labels(&r),
            ["2026-12-01T22", "2026-12-01T23", "2026-12-02T00"]
        );
        assert_eq!(
            field(q(Some("yesterday"), None, None).range_at(now).unwrap_err()),
            "from"
        );
        assert_eq!(
            field(q(None, Some("2026-13-01"), None).range_at(now).unwrap_err()),
            "to"
        );
        assert_eq!(
            field(q(None, None, Some("week")).range_at(now).unwrap_err()),
            "granularity"
        );
        assert_eq!(
            field(q(Some("2026-01-01"), None, None).range_at(now).unwrap_err()),
            "from"
        );
        assert_eq!(
            field(
                q(Some("2026-11-20"), None, Some("hour"))
                    .range_at(now)
                    .unwrap_err()
            ),
            "from"
        );
        assert_eq!(
            field(q(Some("2026-12-05"), None, None).range_at(now).unwrap_err()),
            "from"
        );
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median_ms(&[]), None);
        assert_eq!(median_ms(&[5]), Some(5.0));
        assert_eq!(median_ms(&[1, 3, 10]), Some(3.0));
        assert_eq!(median_ms(&[1, 3, 5, 10]), Some(4.0));
    }
}
