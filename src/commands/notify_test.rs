//! `notify-test`: one test message to every `[[notify]]` target, each answered OK or with
//! its error (the URL masked), so a wrong or revoked webhook is found before a halt needs it.

use super::{CmdResult, Env, Failure};
use crate::notify::deliver::{self, Retry};
use crate::notify::{Notice, config};

pub(super) async fn notify_test(env: &Env) -> CmdResult {
    let targets = config::targets(&env.config.notify).map_err(Failure::invalid)?;
    if targets.is_empty() {
        return Err(Failure::invalid(
            "no notification targets are configured: add a [[notify]] entry (kind, url, events) to the config file; config.example.toml shows one",
        ));
    }
    let client = deliver::client().map_err(Failure::failed)?;
    let notice = Notice::test(&env.actor, chrono::Utc::now());
    // One retry: a receiver that blips is not reported as broken, one that is down is
    // reported in seconds.
    let retry = Retry {
        attempts: 2,
        ..Retry::default()
    };
    let results = futures::future::join_all(targets.iter().map(|t| {
        let body = deliver::body(t, &notice);
        let client = &client;
        async move { deliver::post_with_retry(client, t, &body, retry).await }
    }))
    .await;
    let mut failed = 0;
    for (target, (_, outcome)) in targets.iter().zip(results) {
        match outcome {
            Ok(()) => say!("{}: OK", target.label()),
            Err(e) => {
                failed += 1;
                say!("{}: FAILED: {}", target.label(), e.text());
            }
        }
    }
    if failed > 0 {
        return Err(Failure::failed(format!(
            "{failed} of {} notification targets failed",
            targets.len()
        )));
    }
    Ok(())
}
