//! The commands that change a rollout: `create` and every action (advance, pause, users, ...).

use super::{CmdResult, Env, Failure};
use crate::cli::{CreateArgs, HashingArg, PlanArg};
use crate::domain::actions::{self, Action, Context, NewRollout};
use crate::domain::rollout::{Hashing, Plan, PlanPreset};
use crate::domain::text::escape_keeping_lines;
use crate::ops;
use crate::present;

pub(super) async fn act(env: &Env, id: &str, action: Action) -> CmdResult {
    let store = env.open_store()?;
    let plan = env.default_plan();
    let ctx = Context {
        actor: &env.actor,
        now: env.now().await,
        default_plan: &plan,
        freeze_windows: &[],
    };
    let done = ops::perform(store.as_ref(), id, &action, ctx)
        .await
        .inspect_err(|e| {
            tracing::warn!(rollout = id, error = %e, "action refused or failed");
        })?;
    tracing::info!(rollout = id, actor = %env.actor, summary = %done.transition.summary, revision = %done.stored.revision, "action applied");
    match done.stored.parse() {
        Ok(after) => say!(
            "{}: {} (now {} at {}, revision {})",
            id,
            done.transition.summary,
            present::status_label(after.status),
            after.percentage,
            done.stored.revision
        ),
        // Only a rollback is written to a malformed document; it stays malformed.
        Err(e) => {
            say!(
                "{}: {} (revision {})",
                id,
                done.transition.summary,
                done.stored.revision
            );
            eprintln!(
                "{}",
                escape_keeping_lines(&format!(
                    "warning: {e}; fix the document before changing it further"
                ))
            );
        }
    }
    if done.retries > 0 {
        say!("note: the rollout changed meanwhile; re-checked and applied on the current document");
    }
    Ok(())
}

pub(super) async fn create(env: &Env, args: CreateArgs) -> CmdResult {
    let plan = match args.plan {
        None => env.default_plan(),
        Some(PlanArg::Canary) => Plan::preset(PlanPreset::Canary),
        Some(PlanArg::Tiers) => Plan::preset(PlanPreset::Tiers),
        Some(PlanArg::Cohorts) => Plan::preset(PlanPreset::Cohorts),
    };
    let hashing = match args.hashing {
        None => env.config.default_hashing().map_err(Failure::invalid)?,
        Some(HashingArg::FractionalV1) => Hashing::FractionalV1,
        Some(HashingArg::UnleashV1) => Hashing::UnleashV1,
    };
    let new = NewRollout {
        id: args.id.clone(),
        version: args.version,
        stable_version: args.stable_version,
        plan,
        hashing,
        stable_revision: args.stable_revision,
        canary_revision: args.canary_revision,
        canary_users: args.canary_users,
    };
    let (fields, event) = actions::create(&new, &env.actor, env.now().await)
        .map_err(|e| Failure::invalid(e.to_string()))?;
    let store = env.open_store()?;
    let stored = store.create(&args.id, &fields, &event).await?;
    let r = stored.parse().map_err(|e| Failure::failed(e.to_string()))?;
    let (i, stage) = r.stage().expect("a created rollout has a plan");
    let total = r.plan.as_ref().map(|p| p.stages.len());
    say!(
        "{}: created version {} in {}, status {}",
        r.id,
        r.version,
        present::stage_position(i, total, &stage.name, r.percentage),
        present::status_label(r.status)
    );
    Ok(())
}
