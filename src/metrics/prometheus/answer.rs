//! Reading Prometheus' answers without trusting their sizes: only the first elements of a
//! result are built (the rest are counted and skipped), and a range series longer than
//! `MAX_RANGE_POINTS` is refused.

use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};

use super::MAX_RANGE_POINTS;
use crate::domain::health::SideStats;

/// Result elements built; the rest of a longer result is only counted.
const KEPT_ELEMENTS: usize = 2;

/// A query's answer: one number and its timestamp, or nothing (an empty vector).
pub(super) type Answer = Option<(f64, DateTime<Utc>)>;

/// One side's answers to its seven queries.
pub(super) struct Answers {
    pub(super) requests: Result<Answer, String>,
    pub(super) errors: Result<Answer, String>,
    /// None when no `newest` template is set.
    pub(super) newest: Option<Result<Answer, String>>,
    pub(super) quantiles: [Result<Answer, String>; 4],
}

impl Answers {
    /// From the answers in `GroupPlan` order.
    pub(super) fn from_list(list: Vec<Result<Answer, String>>, has_newest: bool) -> Answers {
        let mut list = list.into_iter();
        let mut next = || list.next().unwrap_or_else(|| Err("no answer".into()));
        Answers {
            requests: next(),
            errors: next(),
            newest: has_newest.then(&mut next),
            quantiles: [next(), next(), next(), next()],
        }
    }

    /// A side's numbers; the first problem, in the order the answers are read, otherwise.
    pub(super) fn side(self, rev: &str) -> Result<SideStats, String> {
        let (requests, at) = self
            .requests
            .map_err(|e| format!("requests query: {e}"))?
            .ok_or_else(|| format!("no data for revision {rev}"))?;
        let (errors, _) = self.errors.map_err(|e| format!("errors query: {e}"))?.ok_or_else(|| {
            format!("errors query returned no data for revision {rev} (add `or vector(0)` if no series means no errors)")
        })?;
        let newest_point_at = match self
            .newest
            .transpose()
            .map_err(|e| format!("newest query: {e}"))?
        {
            None => Some(at),
            Some(Some((t, _))) => seconds_to_time(t),
            Some(None) => None,
        };
        let ms = |a: Result<Answer, String>| -> Result<Option<f64>, String> {
            Ok(a.map_err(|e| format!("latency query: {e}"))?
                .map(|(v, _)| v)
                .filter(|v| v.is_finite() && *v >= 0.0))
        };
        let [q0, q1, q2, q3] = self.quantiles;
        Ok(SideStats {
            requests: count(requests, "requests")?,
            errors: count(errors, "errors")?,
            p50_ms: ms(q0)?,
            p75_ms: ms(q1)?,
            p95_ms: ms(q2)?,
            p99_ms: ms(q3)?,
            newest_point_at,
        })
    }
}

/// The envelope of an answer, with `result` skipped: read first to learn the result type.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Head>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    result_type: String,
    #[serde(default)]
    result: Option<IgnoredAny>,
}

/// The answer again, with `result` read as `R`.
#[derive(Deserialize)]
struct Typed<R> {
    data: TypedData<R>,
}

#[derive(Deserialize)]
struct TypedData<R> {
    result: R,
}

/// The result type of a successful answer; a failed query says why.
pub(super) fn result_type(body: &str) -> Result<String, String> {
    let r: Envelope = serde_json::from_str(body).map_err(|e| format!("malformed answer: {e}"))?;
    if r.status != "success" {
        return Err(format!(
            "query failed ({}): {}",
            r.error_type.as_deref().unwrap_or("error"),
            r.error.as_deref().unwrap_or("no reason given")
        ));
    }
    match r.data {
        Some(Head {
            result_type,
            result: Some(_),
        }) => Ok(result_type),
        _ => Err("malformed answer: no data".into()),
    }
}

fn typed_result<'de, R: Deserialize<'de>>(body: &'de str) -> Result<R, String> {
    serde_json::from_str::<Typed<R>>(body)
        .map(|t| t.data.result)
        .map_err(|e| format!("malformed answer: {e}"))
}

/// A JSON array of which only the first `KEPT_ELEMENTS` are built; `total` counts all.
struct FirstOf<T> {
    kept: Vec<T>,
    total: usize,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for FirstOf<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = FirstOf<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FirstOf<T>, A::Error> {
                let mut kept = Vec::new();
                let mut total = 0;
                while total < KEPT_ELEMENTS {
                    match seq.next_element::<T>()? {
                        Some(t) => kept.push(t),
                        None => return Ok(FirstOf { kept, total }),
                    }
                    total += 1;
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    total += 1;
                }
                Ok(FirstOf { kept, total })
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// A range series' values, refused past `MAX_RANGE_POINTS` before more are built.
struct RangeValues(Vec<(f64, String)>);

impl<'de> Deserialize<'de> for RangeValues {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RangeValues;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of [time, value] pairs")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RangeValues, A::Error> {
                at_most(seq, MAX_RANGE_POINTS, || {
                    format!("a series of more than {MAX_RANGE_POINTS} points")
                })
                .map(RangeValues)
            }
        }
        d.deserialize_seq(V)
    }
}

/// An array's elements, refused with `too_many()` at the one past `max` before it is built.
fn at_most<'de, A: SeqAccess<'de>, T: Deserialize<'de>>(
    mut seq: A,
    max: usize,
    too_many: impl Fn() -> String,
) -> Result<Vec<T>, A::Error> {
    let mut kept = Vec::new();
    while let Some(t) = seq.next_element::<T>()? {
        if kept.len() == max {
            return Err(de::Error::custom(too_many()));
        }
        kept.push(t);
    }
    Ok(kept)
}

pub(super) fn too_many_series(n: usize) -> String {
    format!("the query returned {n} series; aggregate it to one (sum(...), max(...))")
}

/// One series from a range query as (milliseconds, value), or none (an empty matrix).
pub fn parse_matrix(body: &str) -> Result<Vec<(i64, f64)>, String> {
    let kind = result_type(body)?;
    if kind != "matrix" {
        return Err(format!(
            "the range query returned a {kind}; a range vector (matrix) is needed"
        ));
    }
    let mut series: FirstOf<Series> = typed_result(body)?;
    match series.total {
        0 => Ok(Vec::new()),
        1 => series
            .kept
            .remove(0)
            .values
            .0
            .into_iter()
            .map(|(t, v)| {
                let value =
                    parse_float(&v).ok_or_else(|| format!("malformed answer: value '{v}'"))?;
                if !t.is_finite() {
                    return Err(format!("malformed answer: time {t}"));
                }
                Ok(((t * 1000.0).round() as i64, value))
            })
            .collect(),
        n => Err(too_many_series(n)),
    }
}

#[derive(Deserialize)]
struct Series {
    values: RangeValues,
}

pub(super) fn count(v: f64, what: &str) -> Result<u64, String> {
    if v.is_finite() && v >= 0.0 {
        // increase() extrapolates, so counts arrive as fractions.
        Ok(v.round() as u64)
    } else {
        Err(format!("{what} is {v}, not a count"))
    }
}

fn seconds_to_time(t: f64) -> Option<DateTime<Utc>> {
    t.is_finite()
        .then(|| DateTime::from_timestamp_millis((t * 1000.0).round() as i64))
        .flatten()
}

#[derive(Deserialize)]
struct Sample {
    value: (f64, String),
}

/// Buckets one answer may hold: classic histograms have a few dozen.
pub const MAX_BUCKETS: usize = 500;

/// A latency histogram from a `sum by (le)` answer: ascending `le` bounds, the last +Inf,
/// and each bucket's own count (not cumulative). Both empty for an empty answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    pub le: Vec<f64>,
    pub counts: Vec<u64>,
}

/// At most `MAX_BUCKETS` vector elements, refused before more are built.
struct BucketElements(Vec<BucketElement>);

#[derive(Deserialize)]
struct BucketElement {
    #[serde(default)]
    metric: std::collections::HashMap<String, String>,
    value: (f64, String),
}

impl<'de> Deserialize<'de> for BucketElements {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BucketElements;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of vector elements")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<BucketElements, A::Error> {
                at_most(seq, MAX_BUCKETS, || {
                    format!("more than {MAX_BUCKETS} buckets; aggregate them with sum by (le)")
                })
                .map(BucketElements)
            }
        }
        d.deserialize_seq(V)
    }
}

/// A histogram's cumulative buckets by `le` from an instant query. Counts that shrink with
/// a larger `le` (each bucket's `increase()` is extrapolated on its own) are raised to the
/// one before, as `histogram_quantile` does.
pub fn parse_buckets(body: &str) -> Result<Buckets, String> {
    let kind = result_type(body)?;
    if kind != "vector" {
        return Err(format!(
            "the buckets query returned a {kind}; an instant vector by le is needed"
        ));
    }
    let BucketElements(elements) = typed_result(body)?;
    let mut cumulative = Vec::with_capacity(elements.len());
    for e in elements {
        let le = e
            .metric
            .get("le")
            .ok_or("an element without an le label; aggregate the buckets with sum by (le)")?;
        let bound = parse_float(le)
            .filter(|b| !b.is_nan())
            .ok_or_else(|| format!("malformed answer: le '{le}'"))?;
        let (_, v) = e.value;
        let v = parse_float(&v).ok_or_else(|| format!("malformed answer: value '{v}'"))?;
        cumulative.push((bound, count(v, "a bucket count")?));
    }
    if cumulative.is_empty() {
        return Ok(Buckets {
            le: Vec::new(),
            counts: Vec::new(),
        });
    }
    cumulative.sort_by(|a, b| a.0.total_cmp(&b.0));
    if let Some(w) = cumulative.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!(
            "two buckets with le {}; aggregate them with sum by (le)",
            w[0].0
        ));
    }
    if cumulative.last().map(|b| b.0) != Some(f64::INFINITY) {
        return Err("no le=\"+Inf\" bucket, so the total is unknown".into());
    }
    let mut le = Vec::with_capacity(cumulative.len());
    let mut counts = Vec::with_capacity(cumulative.len());
    let mut below = 0u64;
    for (bound, c) in cumulative {
        let c = c.max(below);
        le.push(bound);
        counts.push(c - below);
        below = c;
    }
    Ok(Buckets { le, counts })
}

/// One number from an instant query: a scalar, or a vector of exactly one element.
pub fn parse_answer(body: &str) -> Result<Answer, String> {
    let kind = result_type(body)?;
    match kind.as_str() {
        "scalar" => {
            let (t, v) = typed_result::<(f64, String)>(body)?;
            point(t, &v).map(Some)
        }
        "vector" => {
            let mut v: FirstOf<Sample> = typed_result(body)?;
            match v.total {
                0 => Ok(None),
                1 => {
                    let (t, v) = v.kept.remove(0).value;
                    point(t, &v).map(Some)
                }
                n => Err(too_many_series(n)),
            }
        }
        other => Err(format!(
            "the query returned a {other}; an instant vector or scalar is needed"
        )),
    }
}

/// One element's `[time, "value"]`.
pub(super) fn point(t: f64, v: &str) -> Result<(f64, DateTime<Utc>), String> {
    let value = parse_float(v).ok_or_else(|| format!("malformed answer: value '{v}'"))?;
    let at = seconds_to_time(t).ok_or_else(|| format!("malformed answer: time {t}"))?;
    Ok((value, at))
}

/// Prometheus writes "NaN", "+Inf" and "-Inf".
fn parse_float(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        let one = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.5,"42.4"]}]}}"#;
        let (v, t) = parse_answer(one).unwrap().unwrap();
        assert_eq!(v, 42.4);
        assert_eq!(t.timestamp_millis(), 1_700_000_000_500);
        let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(parse_answer(empty).unwrap(), None);
        let nan = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#;
        assert!(parse_answer(nan).unwrap().unwrap().0.is_nan());
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1,"+Inf"]}}"#;
        assert_eq!(parse_answer(scalar).unwrap().unwrap().0, f64::INFINITY);
        let two = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]}]}}"#;
        assert!(parse_answer(two).unwrap_err().contains("2 series"));
        // Elements past the first two are counted, not built (nor even checked).
        let mut elements = vec![r#"{"metric":{},"value":[1,"1"]}"#; 2];
        elements.extend(vec![r#"{"odd":[1,{"x":null}]}"#; 4998]);
        let many = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
            elements.join(",")
        );
        assert!(parse_answer(&many).unwrap_err().contains("5000 series"));
        let no_result = r#"{"status":"success","data":{"resultType":"vector"}}"#;
        assert!(parse_answer(no_result).unwrap_err().contains("no data"));
        let err = r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error"}"#;
        assert!(parse_answer(err).unwrap_err().contains("bad_data"));
        assert!(parse_answer("<html>").unwrap_err().contains("malformed"));
        let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(parse_answer(matrix).unwrap_err().contains("matrix"));
    }

    #[test]
    fn buckets_by_le() {
        let answer = |elements: &[(&str, &str)]| {
            let e: Vec<String> = elements
                .iter()
                .map(|(le, v)| format!(r#"{{"metric":{{"le":"{le}"}},"value":[1,"{v}"]}}"#))
                .collect();
            format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
                e.join(",")
            )
        };
        // Out of order, fractional, and one bucket extrapolated below the one before it.
        let b = parse_buckets(&answer(&[
            ("+Inf", "100.4"),
            ("0.1", "60.2"),
            ("0.05", "30"),
            ("0.25", "59.6"),
        ]))
        .unwrap();
        assert_eq!(b.le, [0.05, 0.1, 0.25, f64::INFINITY]);
        assert_eq!(b.counts, [30, 30, 0, 40]);
        assert_eq!(parse_buckets(&answer(&[])).unwrap().le, Vec::<f64>::new());
        let e = parse_buckets(&answer(&[("0.1", "1")])).unwrap_err();
        assert!(e.contains("+Inf"), "{e}");
        let e = parse_buckets(&answer(&[("0.1", "1"), ("0.1", "2"), ("+Inf", "3")])).unwrap_err();
        assert!(e.contains("sum by (le)"), "{e}");
        let e = parse_buckets(&answer(&[("x", "1"), ("+Inf", "3")])).unwrap_err();
        assert!(e.contains("le 'x'"), "{e}");
        let e = parse_buckets(&answer(&[("0.1", "NaN"), ("+Inf", "3")])).unwrap_err();
        assert!(e.contains("not a count"), "{e}");
        let unlabelled = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}"#;
        assert!(
            parse_buckets(unlabelled)
                .unwrap_err()
                .contains("without an le")
        );
        let many: Vec<(String, String)> = (0..=MAX_BUCKETS)
            .map(|i| (i.to_string(), i.to_string()))
            .collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let e = parse_buckets(&answer(&many)).unwrap_err();
        assert!(e.contains("more than 500 buckets"), "{e}");
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}"#;
        assert!(parse_buckets(scalar).unwrap_err().contains("scalar"));
    }

    #[test]
    fn counts_refuse_nonsense() {
        assert_eq!(count(41.6, "x").unwrap(), 42);
        assert!(count(f64::NAN, "x").is_err());
        assert!(count(-1.0, "x").is_err());
    }
}
