//! One query per template for every rollout: `label="{revision}"` becomes
//! `label=~"rev1|rev2|..."`, the answer keeps the label and is split by revision.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};
use futures::{FutureExt, StreamExt};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use tokio::time::Instant;

use super::answer::{Answer, Answers, point, result_type, too_many_series};
use super::{Prometheus, QUANTILES, escape};
use crate::domain::health::{HealthSample, SideStats, StageTotals};
use crate::domain::rollout::Rollout;
use crate::domain::units::format_duration;
use crate::metrics::config::{MetricsConfig, fill};
use crate::metrics::promql::{self, Grouped};
use crate::metrics::{Distinct, Revisions, StageJob, stage_totals_each};

/// Revision names (in characters) one grouped query asks for: about 100 Cloud Run names,
/// so a URL stays well under the 8 KiB proxies allow; more take one more query each.
pub const GROUP_NAME_CHARS: usize = 4000;
/// Grouped queries in flight at once: one round's 7 templates, twice.
const GROUP_QUERIES_IN_FLIGHT: usize = 14;

/// The templates of one sample, grouped: requests, errors, newest (when set), then the four
/// quantiles, in the order of `Answers`.
pub(super) struct GroupPlan {
    templates: Vec<Grouped>,
    has_newest: bool,
}

impl GroupPlan {
    pub(super) fn new(cfg: &MetricsConfig) -> Result<GroupPlan, String> {
        let window = format_duration(cfg.query_span());
        let t = &cfg.prometheus;
        let one = |name: &str, template: &str, quantile: Option<f64>| {
            let q = quantile.map(|q| q.to_string()).unwrap_or_default();
            let filled = fill(template, &[("window", &window), ("quantile", &q)]);
            promql::group(&filled).map_err(|e| format!("{name} template: {e}"))
        };
        let mut templates = vec![
            one("requests", &t.requests, None)?,
            one("errors", &t.errors, None)?,
        ];
        let has_newest = !t.newest.trim().is_empty();
        if has_newest {
            templates.push(one("newest", &t.newest, None)?);
        }
        for q in QUANTILES {
            templates.push(one("latency", &t.latency, Some(q))?);
        }
        Ok(GroupPlan {
            templates,
            has_newest,
        })
    }
}

impl Prometheus {
    /// Every rollout from one query per grouped template (per `GROUP_NAME_CHARS` of
    /// revision names), split by revision.
    pub(super) async fn sample_grouped(
        &self,
        plan: &GroupPlan,
        rollouts: &[Rollout],
        now: DateTime<Utc>,
    ) -> Vec<HealthSample> {
        let revs: Vec<Revisions> = rollouts.iter().map(Revisions::of).collect();
        let Distinct { names, index } = Distinct::of(&revs);
        let chunks = chunks(&names);
        let deadline = Instant::now() + self.cfg.timeout;
        let jobs: Vec<(usize, std::ops::Range<usize>)> = (0..plan.templates.len())
            .flat_map(|t| chunks.iter().map(move |c| (t, c.clone())))
            .collect();
        type Job<'f> = futures::future::BoxFuture<
            'f,
            (usize, std::ops::Range<usize>, Vec<Result<Answer, String>>),
        >;
        let jobs: Vec<Job> = jobs
            .into_iter()
            .map(|(t, chunk)| {
                let asked = &names[chunk.clone()];
                self.grouped_query(&plan.templates[t], asked, now, deadline)
                    .map(move |answers| (t, chunk, answers))
                    .boxed()
            })
            .collect();
        let work = futures::stream::iter(jobs)
            .buffer_unordered(GROUP_QUERIES_IN_FLIGHT)
            .collect::<Vec<_>>();
        let grace = std::time::Duration::from_millis(200);
        // answers[template][revision]
        let answers: Result<Vec<Vec<Result<Answer, String>>>, String> =
            match tokio::time::timeout_at(deadline + grace, work).await {
                Err(_) => Err(self.too_slow()),
                Ok(done) => {
                    let mut all =
                        vec![vec![Err("no answer".to_string()); names.len()]; plan.templates.len()];
                    for (t, chunk, got) in done {
                        for (slot, a) in all[t][chunk].iter_mut().zip(got) {
                            *slot = a;
                        }
                    }
                    Ok(all)
                }
            };
        let stage_jobs: Vec<StageJob> = rollouts
            .iter()
            .map(|r| self.stage_totals(r, now, deadline).boxed())
            .collect();
        let stages: Vec<Option<StageTotals>> =
            match tokio::time::timeout_at(deadline + grace, stage_totals_each(stage_jobs)).await {
                Ok(all) => all,
                Err(_) => vec![None; rollouts.len()],
            };
        revs.iter()
            .zip(stages)
            .map(|(r, stage)| {
                let side = |i: usize| -> Result<SideStats, String> {
                    // A timeout stands for both sides, as in `sample`.
                    let all = answers.as_ref().map_err(Clone::clone)?;
                    let rev = r.get(i).ok_or_else(|| r.missing(i))?;
                    let k = index[rev];
                    let list = all.iter().map(|t| t[k].clone()).collect();
                    Answers::from_list(list, plan.has_newest).side(rev)
                };
                HealthSample {
                    stage,
                    ..self.finish(now, side(0), side(1))
                }
            })
            .collect()
    }

    /// One grouped template for `names`: each name's answer, in order.
    async fn grouped_query(
        &self,
        g: &Grouped,
        names: &[&str],
        now: DateTime<Utc>,
        deadline: Instant,
    ) -> Vec<Result<Answer, String>> {
        let regex = escape(&promql::alternatives(names));
        let promql = fill(&g.template, &[("revision", &regex)]);
        let got = async {
            let body = self
                .http
                .get(self.query_url(&promql, now)?, deadline)
                .await?;
            split_answer(&body, &g.label, names).map_err(|e| self.http.scrub_body_text(&e))
        }
        .await;
        // What `vector(N)` answers: N at the evaluation time.
        let at = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        match got {
            Err(e) => vec![Err(e); names.len()],
            Ok(found) => found
                .into_iter()
                .map(|f| match f {
                    Found::None => Ok(g.fallback.map(|v| (v, at))),
                    Found::One(t, v) => point(t, &v).map(Some),
                    Found::Many(n) => Err(too_many_series(n)),
                })
                .collect(),
        }
    }
}

/// Consecutive runs of `names` of at most `GROUP_NAME_CHARS` characters (at least one name).
fn chunks(names: &[&str]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut chars) = (0, 0);
    for (i, n) in names.iter().enumerate() {
        let len = n.chars().count() + 1;
        if i > start && chars + len > GROUP_NAME_CHARS {
            out.push(start..i);
            (start, chars) = (i, 0);
        }
        chars += len;
    }
    if start < names.len() {
        out.push(start..names.len());
    }
    out
}

/// What a grouped answer holds for one revision.
#[derive(Debug, Clone, PartialEq)]
enum Found {
    None,
    /// The only element's time and value.
    One(f64, String),
    /// More than one element: the count.
    Many(usize),
}

/// A grouped query's vector split by `label`, one entry per name. The elements are read one
/// at a time and only what each name needs is kept, so a long answer costs no more than
/// its (capped) body. An element without the label, or with a name not asked for, means
/// the answer is not what grouping expects: the whole answer is refused, never guessed at.
fn split_answer(body: &str, label: &str, names: &[&str]) -> Result<Vec<Found>, String> {
    let kind = result_type(body)?;
    if kind != "vector" {
        return Err(format!(
            "the query returned a {kind}; an instant vector is needed"
        ));
    }
    #[derive(Deserialize)]
    struct Raw<'a> {
        #[serde(borrow)]
        data: RawData<'a>,
    }
    #[derive(Deserialize)]
    struct RawData<'a> {
        #[serde(borrow)]
        result: &'a serde_json::value::RawValue,
    }
    let raw: Raw = serde_json::from_str(body).map_err(|e| format!("malformed answer: {e}"))?;
    let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let mut found = vec![Found::None; names.len()];
    let seed = SplitSeed {
        label,
        index: &index,
        found: &mut found,
    };
    let mut de = serde_json::Deserializer::from_str(raw.data.result.get());
    de::DeserializeSeed::deserialize(seed, &mut de)
        .map_err(|e| format!("malformed answer: {e}"))?;
    Ok(found)
}

struct SplitSeed<'s> {
    label: &'s str,
    index: &'s HashMap<&'s str, usize>,
    found: &'s mut Vec<Found>,
}

#[derive(Deserialize)]
struct Element {
    #[serde(default)]
    metric: HashMap<String, String>,
    value: (f64, String),
}

impl<'de> de::DeserializeSeed<'de> for SplitSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for SplitSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of vector elements")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(e) = seq.next_element::<Element>()? {
            let Some(name) = e.metric.get(self.label) else {
                return Err(de::Error::custom(format!(
                    "an element without the {} label, which grouping needs",
                    self.label
                )));
            };
            let Some(&i) = self.index.get(name.as_str()) else {
                return Err(de::Error::custom(format!(
                    "an element for {}=\"{name}\", which was not asked for",
                    self.label
                )));
            };
            let slot = &mut self.found[i];
            *slot = match std::mem::replace(slot, Found::None) {
                Found::None => Found::One(e.value.0, e.value.1),
                Found::One(..) => Found::Many(2),
                Found::Many(n) => Found::Many(n + 1),
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_answers_split_by_the_label() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"revision":"b","job":"x"},"value":[1772366400.5,"2"]},
            {"metric":{"revision":"a"},"value":[1772366400.5,"1"]},
            {"metric":{"revision":"c"},"value":[1,"3"]},
            {"metric":{"revision":"c"},"value":[1,"4"]}]}}"#;
        let found = split_answer(body, "revision", &["a", "b", "c", "d"]).unwrap();
        assert_eq!(
            found,
            [
                Found::One(1772366400.5, "1".into()),
                Found::One(1772366400.5, "2".into()),
                Found::Many(2),
                Found::None
            ]
        );
        let e = split_answer(body, "revision", &["a", "b"]).unwrap_err();
        assert!(e.contains("revision=\"c\", which was not asked for"), "{e}");
        let e = split_answer(body, "rev", &["a"]).unwrap_err();
        assert!(e.contains("without the rev label"), "{e}");
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}"#;
        assert!(
            split_answer(scalar, "revision", &["a"])
                .unwrap_err()
                .contains("scalar")
        );
    }

    #[test]
    fn long_name_lists_take_more_queries() {
        let long = "r".repeat(999);
        let names: Vec<&str> = vec![&long; 9];
        // 1000 characters each with the separator: 4 fit in 4000.
        assert_eq!(chunks(&names), [0..4, 4..8, 8..9]);
        let short = chunks(&["a", "b"]);
        assert_eq!((short.len(), short.first()), (1, Some(&(0..2))));
        assert!(chunks(&[]).is_empty());
        let huge = "r".repeat(5000);
        assert_eq!(chunks(&[&huge, "a"]), [0..1, 1..2]);
    }
}
