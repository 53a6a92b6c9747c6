//! A metrics source's history as a replay feed: the windows the source answers for each
//! minute, asked for the rollout as it really was then (so the traffic is what was served).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::replay::{Fed, SampleFeed};
use crate::domain::health::HealthSample;
use crate::domain::rollout::Rollout;

pub struct HistoryFeed {
    samples: BTreeMap<DateTime<Utc>, HealthSample>,
}

impl HistoryFeed {
    pub fn new(samples: impl IntoIterator<Item = HealthSample>) -> HistoryFeed {
        HistoryFeed {
            samples: samples.into_iter().map(|s| (s.taken_at, s)).collect(),
        }
    }

    pub fn samples(&self) -> impl Iterator<Item = &HealthSample> {
        self.samples.values()
    }
}

impl SampleFeed for HistoryFeed {
    fn feed(&mut self, _: &Rollout, previous: DateTime<Utc>, at: DateTime<Utc>) -> Fed {
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
        let canary = sample.canary.as_ref().map_or(0, |c| c.requests);
        Fed {
            sample: sample.clone(),
            canary_served: (canary as f64 * share).round() as u64,
        }
    }
}
