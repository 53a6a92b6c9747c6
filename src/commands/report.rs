//! `report`: a rollout's life as a picture (`--out FILE.svg|png`) or as text.

use super::{CmdResult, Env, Failure, parsed};
use crate::cli::ReportArgs;
use crate::report::{self, Period, chart};

pub(super) async fn report(env: &Env, args: ReportArgs) -> CmdResult {
    let time = |flag: &str, text: &Option<String>| {
        text.as_deref()
            .map(report::parse_time)
            .transpose()
            .map_err(|e| Failure::invalid(format!("{flag}: {e}")))
    };
    let period = Period {
        from: time("--from", &args.from)?,
        to: time("--to", &args.to)?,
    };
    if let (Some(from), Some(to)) = (period.from, period.to)
        && from >= to
    {
        return Err(Failure::invalid("--from must be before --to"));
    }
    if let Some(out) = &args.out {
        chart::Format::of(out).map_err(Failure::invalid)?;
        chart::check_size(args.width, args.height).map_err(Failure::invalid)?;
    }
    let store = env.open_store_read_only()?;
    let rollout = parsed(store.as_ref(), &args.id).await?;
    let events = store.list_events(&args.id, report::MAX_EVENTS).await?;
    let (source, clock) = env.source_and_clock().await?;
    let made = report::gather(
        rollout,
        events,
        source,
        &env.config.gates,
        period,
        clock.now(),
    )
    .await
    .map_err(Failure::invalid)?;
    for w in &made.warnings {
        eprintln!(
            "{}",
            crate::domain::text::escape(&format!(
                "warning: {w}; the report shows those minutes as gaps"
            ))
        );
    }
    match &args.out {
        None => {
            for line in made.summary_lines() {
                say!("{line}");
            }
        }
        Some(out) => {
            chart::write(&made, out, args.width, args.height).map_err(Failure::failed)?;
            say!("wrote the report of {} to {}", args.id, out.display());
        }
    }
    Ok(())
}
