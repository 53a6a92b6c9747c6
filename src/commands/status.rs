//! `status`: the rollouts as a table, one rollout in detail, or either as JSON, with the
//! health column or section when metrics are configured.

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::domain::freeze::{self, Freeze, Frozen};
use crate::domain::rollout::time_to_json;
use serde_json::{Map, Value, json};

use super::{CmdResult, Env, Failure, get_existing, json_text, say_raw, write_out};
use crate::domain::health::{GateReport, HealthSample};
use crate::domain::rollout::Rollout;
use crate::present::{self, escape};
use crate::store::StoredRollout;

/// The JSON form of a stored rollout: `id` first, then every stored field.
/// One rollout as `status --json` shows it. Takes the stored document by value: with 1,000
/// rollouts, copying every field was a large part of the command's time.
fn rollout_json(stored: StoredRollout, error: Option<String>) -> Value {
    let mut m = Map::with_capacity(stored.fields.len() + 3);
    m.insert("id".into(), Value::from(stored.id));
    for (k, v) in stored.fields {
        if k != "id" {
            m.insert(k, v);
        }
    }
    // Tool-added keys carry a leading underscore so they never hide a stored field.
    m.insert("_revision".into(), Value::from(stored.revision.0));
    if let Some(e) = error {
        m.insert("_error".into(), Value::from(e));
    }
    Value::Object(m)
}

pub(super) async fn status(env: &Env, id: Option<&str>, as_json: bool) -> CmdResult {
    let store = env.open_store_read_only()?;
    let rollouts = match id {
        Some(id) => vec![get_existing(store.as_ref(), id).await?],
        None => store.list().await?,
    };
    let flag = store.freeze().await?;
    if as_json {
        return print_status_json(env, rollouts, flag).await;
    }
    let (source, clock) = env.source_and_clock().await?;
    let now = clock.now();
    let windows = &env.config.freeze.windows;
    if let Some(frozen) = freeze::frozen_now(flag.as_ref(), windows, now) {
        say!("{} — {}", frozen.describe(), frozen.remedy());
    } else if let Some(next) = freeze::next_window(windows, now) {
        say!("{}", present::freeze_ahead(&next, now));
    }
    match id {
        Some(_) => {
            let stored = &rollouts[0];
            match stored.parse() {
                Ok(r) => {
                    let mut text = detail_text(&r, stored, now);
                    if let Some(source) = source {
                        let judged = crate::engine::oneshot::judge_all(
                            source.clone(),
                            std::slice::from_ref(&r),
                            &env.config.gates,
                            now,
                        )
                        .await;
                        if let Some((sample, report)) = judged.first() {
                            text.push_str(&health_text(&source.describe(), sample, report));
                        }
                    }
                    if let Some(traffic) = super::traffic::view(env, &r).await {
                        text.push_str(&super::traffic::text(&traffic));
                    }
                    say_raw(&text);
                }
                Err(e) => {
                    return Err(Failure::failed(format!(
                        "{e}\nstored fields: {}",
                        Value::Object(stored.fields.clone())
                    )));
                }
            }
        }
        None if rollouts.is_empty() => {
            say!(
                "no rollouts in {}; create one with `rollout-tui create ID --version V`",
                store.describe()
            );
        }
        None => {
            let health = match source {
                Some(source) => {
                    let readable: Vec<Rollout> =
                        rollouts.iter().filter_map(|s| s.parse().ok()).collect();
                    let judged = crate::engine::oneshot::judge_all(
                        source,
                        &readable,
                        &env.config.gates,
                        now,
                    )
                    .await;
                    let column: HashMap<String, String> = readable
                        .iter()
                        .zip(judged)
                        .map(|(r, (_, report))| (r.id.clone(), present::health_cell(&report)))
                        .collect();
                    Some(column)
                }
                None => None,
            };
            say_raw(&table_text(&rollouts, health.as_ref(), now));
        }
    }
    Ok(())
}

/// The health section of `status ID`: both sides' numbers and every gate's verdict.
fn health_text(source: &str, sample: &HealthSample, report: &GateReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "  health       {} (metrics: {source})",
        present::verdict_word(report.verdict)
    );
    if let Some(e) = &sample.source_error {
        let _ = writeln!(o, "               {}", escape(e));
    }
    let ms = present::ms;
    for (name, side) in [("stable", &sample.stable), ("canary", &sample.canary)] {
        match side {
            Some(s) => {
                let rate = present::rate_pct(s.error_rate());
                let _ = writeln!(
                    o,
                    "    {name}  requests {}  errors {} ({rate})  p50 {}  p95 {}  p99 {}",
                    s.requests,
                    s.errors,
                    ms(s.p50_ms),
                    ms(s.p95_ms),
                    ms(s.p99_ms)
                );
            }
            None => {
                let _ = writeln!(o, "    {name}  no data");
            }
        }
    }
    // The evidence the stage has gathered, when the source counts it.
    if let Some(t) = &sample.stage {
        let slow = t.slow.map_or(String::new(), |s| {
            format!(
                "; over {:.0} ms: canary {}, stable {}",
                s.threshold_ms, s.canary, s.stable
            )
        });
        let _ = writeln!(
            o,
            "    stage   since {}: canary {} requests, {} errors; stable {} requests, {} errors{slow}",
            t.since.format("%Y-%m-%d %H:%M UTC"),
            t.canary.requests,
            t.canary.errors,
            t.stable.requests,
            t.stable.errors
        );
    }
    for g in &report.gates {
        let _ = writeln!(
            o,
            "    {:<4} {:<20} {}",
            present::gate_word(g.verdict),
            escape(&g.name),
            escape(&g.detail)
        );
    }
    o
}

async fn print_status_json(
    env: &Env,
    rollouts: Vec<StoredRollout>,
    flag: Option<Freeze>,
) -> CmdResult {
    let parsed: Vec<Result<Rollout, String>> = rollouts
        .iter()
        .map(|s| s.parse().map_err(|e| e.to_string()))
        .collect();
    // With a metrics source, every readable rollout gets `health`; without one, none does.
    let mut health: Vec<Option<Value>> = vec![None; rollouts.len()];
    let (source, clock) = env.source_and_clock().await?;
    if let Some(source) = source {
        let (at, readable): (Vec<usize>, Vec<Rollout>) = parsed
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().ok().map(|r| (i, r.clone())))
            .unzip();
        let values = crate::engine::oneshot::health_of_all(
            source,
            &readable,
            &env.config.gates,
            clock.now(),
        )
        .await;
        for (i, h) in at.into_iter().zip(values) {
            health[i] = Some(h);
        }
    }
    // What Cloud Run serves, where `[actuator]` acts on the rollout's service.
    let traffic: Vec<Option<Value>> =
        futures::future::join_all(parsed.iter().map(|r| async move {
            match r {
                Ok(r) => super::traffic::view(env, r)
                    .await
                    .map(|t| super::traffic::json(&t)),
                Err(_) => None,
            }
        }))
        .await;
    let list: Vec<Value> = rollouts
        .into_iter()
        .zip(parsed)
        .zip(health)
        .zip(traffic)
        .map(|(((stored, parsed), health), traffic)| {
            let mut v = rollout_json(stored, parsed.err());
            if let (Value::Object(m), Some(h)) = (&mut v, health) {
                m.insert("health".into(), h);
            }
            if let (Value::Object(m), Some(t)) = (&mut v, traffic) {
                m.insert("cloudRun".into(), t);
            }
            v
        })
        .collect();
    let now = clock.now();
    let frozen = match freeze::frozen_now(flag.as_ref(), &env.config.freeze.windows, now) {
        Some(Frozen::Flag(f)) => json!({
            "by": f.by,
            "at": time_to_json(f.at),
            "reason": f.reason,
        }),
        Some(Frozen::Window { name, until }) => json!({
            "window": name,
            "until": time_to_json(until),
        }),
        None => Value::Null,
    };
    let out = json!({ "frozen": frozen, "rollouts": list });
    let text = json_text(&out);
    // The process ends next; freeing a thousand documents one by one would only cost time.
    std::mem::forget(out);
    write_out(text.as_bytes())?;
    Ok(())
}

/// The rollouts as a table; `health` (by id) adds a HEALTH column when metrics are configured.
fn table_text(
    rollouts: &[StoredRollout],
    health: Option<&HashMap<String, String>>,
    now: DateTime<Utc>,
) -> String {
    let mut header: Vec<String> = [
        "ID", "STATUS", "STAGE", "PERCENT", "CANARY", "VERSION", "UPDATED",
    ]
    .map(String::from)
    .to_vec();
    if health.is_some() {
        header.push("HEALTH".into());
    }
    let mut rows = vec![header];
    let mut errors = Vec::new();
    for stored in rollouts {
        match stored.parse() {
            Ok(r) => rows.push(vec![
                r.id.clone(),
                present::status_label(r.status).into(),
                present::stage_label(&r),
                r.percentage.to_string(),
                r.canary_users.len().to_string(),
                r.version.clone(),
                present::ago(r.last_updated_at.or(r.started_at), now),
            ]),
            Err(e) => {
                rows.push(vec![
                    stored.id.clone(),
                    "ERROR".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                ]);
                errors.push(e.to_string());
            }
        }
    }
    if let Some(health) = health {
        for row in rows.iter_mut().skip(1) {
            let cell = health.get(&row[0]).cloned().unwrap_or_else(|| "-".into());
            row.push(cell);
        }
    }
    // Escaped before measuring, so a stored newline or escape sequence cannot break a row.
    for cell in rows.iter_mut().flatten() {
        if let std::borrow::Cow::Owned(safe) = escape(cell) {
            *cell = safe;
        }
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    for e in errors {
        let _ = writeln!(out, "error: {e}");
    }
    out
}

fn detail_text(r: &Rollout, stored: &StoredRollout, now: DateTime<Utc>) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "rollout {} (revision {})",
        escape(&r.id),
        escape(&stored.revision.0)
    );
    let stable_version = r
        .stable_version
        .as_deref()
        .map(|v| format!(" (stable {})", escape(v)))
        .unwrap_or_default();
    let _ = writeln!(o, "  version      {}{stable_version}", escape(&r.version));
    let _ = writeln!(o, "  status       {}", present::status_label(r.status));
    let _ = writeln!(o, "  percentage   {}", r.percentage);
    let _ = writeln!(o, "  hashing      {}", r.hashing);
    let _ = writeln!(
        o,
        "  revisions    stable {}  canary {}",
        escape(r.stable_revision.as_deref().unwrap_or("-")),
        escape(r.canary_revision.as_deref().unwrap_or("-"))
    );
    let _ = writeln!(o, "  started      {}", present::ago(r.started_at, now));
    let _ = writeln!(o, "  updated      {}", present::ago(r.last_updated_at, now));
    if let Some(t) = r.completed_at {
        let _ = writeln!(o, "  completed    {}", present::ago(Some(t), now));
    }
    if let Some(by) = &r.approved_by {
        let _ = writeln!(o, "  approved by  {}", escape(by));
    }
    if let Some(why) = &r.pause_reason {
        let _ = writeln!(o, "  paused       {}", escape(why));
    }
    if let Some(why) = &r.rollback_reason {
        let _ = writeln!(o, "  rolled back  {}", escape(why));
    }
    match (&r.plan, r.stage()) {
        (Some(plan), Some((current, _))) => {
            let _ = writeln!(o, "  plan");
            for (i, s) in plan.stages.iter().enumerate() {
                let marker = if i == current { ">" } else { " " };
                let row = format!("   {marker} {}", present::stage_row(i, s));
                let _ = writeln!(o, "{}", row.trim_end());
            }
            if let Some(clock) = present::stage_clock(r, now) {
                let _ = writeln!(o, "  in stage     {} ({})", clock.in_stage, clock.countdown);
            }
        }
        _ => {
            let _ = writeln!(o, "  plan         none (advance adopts the default plan)");
        }
    }
    let _ = writeln!(
        o,
        "  canary users ({}): {}",
        r.canary_users.len(),
        present::user_preview(&r.canary_users)
    );
    let _ = writeln!(
        o,
        "  excluded     ({}): {}",
        r.excluded_users.len(),
        present::user_preview(&r.excluded_users)
    );
    o
}
