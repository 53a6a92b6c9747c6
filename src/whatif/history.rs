//! A metrics source's history as a replay feed: the windows the source answers for each
//! minute, asked for the rollout as it really was then (so the traffic is what was served).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::replay::{Fed, SampleFeed};
use crate::domain::health::{Counts, HealthSample, SideStats, StageTotals};
use crate::domain::rollout::Rollout;

pub struct HistoryFeed {
    samples: BTreeMap<DateTime<Utc>, HealthSample>,
    /// The replayed stage's totals so far: the source's own stage totals are for the stage
    /// the rollout really was in, not the replayed one.
    stage: Option<StageTotals>,
}

impl HistoryFeed {
    pub fn new(samples: impl IntoIterator<Item = HealthSample>) -> HistoryFeed {
        HistoryFeed {
            samples: samples.into_iter().map(|s| (s.taken_at, s)).collect(),
            stage: None,
        }
    }

    pub fn samples(&self) -> impl Iterator<Item = &HealthSample> {
        self.samples.values()
    }
}

impl SampleFeed for HistoryFeed {
    fn feed(&mut self, rollout: &Rollout, previous: DateTime<Utc>, at: DateTime<Utc>) -> Fed {
        let since = rollout.stage_entered_at.unwrap_or(previous);
        if self.stage.as_ref().is_none_or(|t| t.since != since) {
            self.stage = Some(StageTotals {
                since,
                stable: Counts::default(),
                canary: Counts::default(),
                slow: None,
            });
        }
        let Some(sample) = self.samples.get(&at) else {
            return Fed {
                sample: HealthSample {
                    taken_at: at,
                    window: Duration::ZERO,
                    stable: None,
                    canary: None,
                    source_error: Some("the source had no numbers for this minute".into()),
                    ingestion_delay: Duration::ZERO,
                    stage: None,
                },
                canary_served: 0,
            };
        };
        // A window overlaps the previous ones: the minutes since the last tick are the
        // window's share of its requests (the source gives windows, not minutes).
        let share =
            ((at - previous).num_seconds() as f64 / sample.window.as_secs_f64().max(1.0)).min(1.0);
        let part = |side: &Option<SideStats>| {
            side.as_ref().map_or(Counts::default(), |s| Counts {
                requests: (s.requests as f64 * share).round() as u64,
                errors: (s.errors as f64 * share).round() as u64,
            })
        };
        let (stable, canary) = (part(&sample.stable), part(&sample.canary));
        let totals = self.stage.as_mut().expect("set above");
        for (total, add) in [(&mut totals.stable, stable), (&mut totals.canary, canary)] {
            total.requests += add.requests;
            total.errors += add.errors.min(add.requests);
        }
        let mut sample = sample.clone();
        sample.stage = Some(totals.clone());
        Fed {
            sample,
            canary_served: canary.requests,
        }
    }
}
