//! The commands that change a rollout: `create` and every action (advance, pause, users, ...).

use super::{CmdResult, Env, Failure};
use crate::cli::{CreateArgs, HashingArg};
use crate::domain::actions::{self, Action, NewRollout};
use crate::domain::freeze::{Freeze, Frozen, active_window};
use crate::domain::rollout::{Hashing, Plan, Status};
use crate::domain::text::escape_keeping_lines;
use crate::ops;
use crate::present;

pub(super) async fn act(env: &Env, id: &str, action: Action) -> CmdResult {
    let store = env.open_store()?;
    let plan = env.default_plan();
    let ctx = env.context(&plan, env.now().await);
    let done = ops::perform(store.as_ref(), &env.actuators(), id, &action, ctx)
        .await
        .inspect_err(|e| {
            tracing::warn!(rollout = id, error = %e, "action refused or failed");
        })?;
    tracing::info!(rollout = id, actor = %env.actor, summary = %done.transition.summary, revision = %done.stored.revision, "action applied");
    let after = done.stored.parse();
    env.announce(
        after.as_ref().ok(),
        std::slice::from_ref(&done.transition.event),
        &[],
        done.transition.event.at,
    )
    .await;
    match after {
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
        Some(arg) => Plan::preset(arg.preset()),
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
        on_breach: args.on_breach.map(crate::cli::OnBreachArg::policy),
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

/// `freeze --reason R [--pause-all]`: sets the store's freeze flag; every cockpit, driver
/// and command then refuses to advance or widen until `unfreeze`.
pub(super) async fn freeze(env: &Env, reason: &str, pause_all: bool) -> CmdResult {
    let reason = crate::domain::text::validate_line(
        "the freeze reason",
        reason,
        crate::domain::text::MAX_REASON_CHARS,
    )
    .map_err(|e| Failure::invalid(format!("--reason: {e}")))?;
    if reason.is_empty() {
        return Err(Failure::invalid(
            "--reason must say why (it is shown on every screen)",
        ));
    }
    let store = env.open_store()?;
    if let Some(current) = store.freeze().await? {
        return Err(Failure::failed(format!(
            "already {}; `rollout-tui unfreeze` first to set another reason",
            Frozen::Flag(current).describe()
        )));
    }
    let flag = Freeze {
        by: env.actor.clone(),
        at: env.now().await,
        reason: reason.to_string(),
    };
    store.set_freeze(Some(&flag)).await?;
    tracing::warn!(actor = %env.actor, reason = %flag.reason, "froze every rollout");
    let frozen = crate::notify::Condition::Frozen {
        by: flag.by.clone(),
        reason: flag.reason.clone(),
        since: flag.at,
    };
    env.announce(None, &[], &[frozen], flag.at).await;
    say!(
        "{}: nothing advances or widens until `rollout-tui unfreeze`; rollback and pause still work",
        Frozen::Flag(flag.clone()).describe()
    );
    if !pause_all {
        return Ok(());
    }
    let plan = env.default_plan();
    let mut failed = 0;
    let traffic = env.actuators();
    for stored in store.list().await? {
        let running = stored
            .parse()
            .is_ok_and(|r| matches!(r.status, Status::Canary | Status::Progressive));
        if !running {
            continue;
        }
        // Paused at the moment of the freeze, on its clock.
        let ctx = env.context(&plan, flag.at);
        let pause = Action::Pause {
            reason: Some(format!("freeze: {}", flag.reason)),
        };
        match ops::perform_on(store.as_ref(), &traffic, &stored, &pause, ctx, None).await {
            Ok(done) => say!("{}: {}", stored.id, done.transition.summary),
            Err(e) => {
                failed += 1;
                say!("{}: NOT paused: {e}", stored.id);
            }
        }
    }
    if failed > 0 {
        return Err(Failure::failed(format!(
            "frozen, but {failed} running rollout(s) could not be paused (see above); run `freeze` again is not needed, pause them with `rollout-tui pause ID`"
        )));
    }
    Ok(())
}

/// `unfreeze`: lifts the store's freeze flag (config windows stay in force).
pub(super) async fn unfreeze(env: &Env) -> CmdResult {
    let store = env.open_store()?;
    let Some(current) = store.freeze().await? else {
        return Err(Failure::failed("not frozen; nothing to do"));
    };
    store.set_freeze(None).await?;
    tracing::warn!(actor = %env.actor, was = %current.reason, "unfroze");
    say!(
        "unfrozen (was {}); rollouts may advance again",
        Frozen::Flag(current).describe()
    );
    if let Some(window) = active_window(&env.config.freeze.windows, env.now().await) {
        say!("but {}: {}", window.describe(), window.remedy());
    }
    Ok(())
}

pub(super) async fn sync_traffic(env: &Env, id: &str) -> CmdResult {
    let store = env.open_store()?;
    let plan = env.default_plan();
    let ctx = env.context(&plan, env.now().await);
    let said = ops::sync_traffic(store.as_ref(), &env.actuators(), id, ctx)
        .await
        .inspect_err(|e| tracing::warn!(rollout = id, error = %e, "sync-traffic failed"))?;
    tracing::info!(rollout = id, actor = %env.actor, said = %said, "traffic re-applied");
    say!("{id}: {}", crate::domain::text::escape(&said));
    Ok(())
}
