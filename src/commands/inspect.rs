//! The commands that look into one rollout: where a user is assigned, its user lists,
//! its audit log.

use serde_json::{Value, json};

use super::{CmdResult, Env, Failure, get_existing, parsed, print_json};
use crate::domain::assign;
use crate::domain::event::Event;
use crate::present::{self, escape};

pub(super) async fn assign_user(env: &Env, id: &str, user: &str, as_json: bool) -> CmdResult {
    let store = env.open_store_read_only()?;
    let r = parsed(store.as_ref(), id).await?;
    let a = assign::assign(&r, user).map_err(|e| Failure::invalid(e.to_string()))?;
    let side = serde_json::to_value(a.side).unwrap_or(Value::Null);
    if as_json {
        let threshold = match a.reason {
            assign::Reason::Bucket { threshold, .. } => Some(threshold),
            _ => None,
        };
        print_json(&json!({
            "side": side,
            "reason": a.reason.explain(),
            "bucket": a.bucket(),
            "threshold": threshold,
            "percentage": r.percentage.as_f64(),
            "hashing": r.hashing.as_str(),
        }))?;
    } else {
        say!(
            "{}: {} ({})",
            escape(user.trim()),
            side.as_str().unwrap_or("?"),
            a.reason.explain()
        );
        // The detail the cockpit's `w` dialog shows: what decided it, and how.
        for line in present::assignment_lines(&r, user.trim(), &a)
            .iter()
            .skip(1)
        {
            say!("  {line}");
        }
    }
    Ok(())
}

pub(super) async fn list_users(env: &Env, id: &str, excluded: bool, as_json: bool) -> CmdResult {
    let store = env.open_store_read_only()?;
    let r = parsed(store.as_ref(), id).await?;
    let users = if excluded {
        &r.excluded_users
    } else {
        &r.canary_users
    };
    if as_json {
        print_json(&json!({ "users": users }))?;
    } else {
        for u in users {
            say!("{}", escape(u));
        }
    }
    Ok(())
}

fn event_line(e: &Event) -> String {
    format!(
        "{}  {:<13} {}  {}",
        e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        e.kind.as_str(),
        escape(&e.actor),
        present::event_text(e)
    )
}

pub(super) async fn events(env: &Env, id: &str, limit: usize, as_json: bool) -> CmdResult {
    let store = env.open_store_read_only()?;
    get_existing(store.as_ref(), id).await?;
    let list = store.list_events(id, limit).await?;
    if as_json {
        print_json(&json!({ "events": list }))?;
    } else if list.is_empty() {
        say!("no events for '{id}'");
    } else {
        for e in &list {
            say!("{}", event_line(e));
        }
    }
    Ok(())
}
