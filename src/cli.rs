//! Command-line definitions (clap). Behaviour lives in `commands`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "rollout-tui", version, about = "A terminal cockpit for progressive rollouts", long_about = None)]
pub struct Cli {
    /// Config file (default: ROLLOUT_TUI_CONFIG, else the platform config directory's config.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of the embedded store and logs (default: ROLLOUT_TUI_DATA_DIR, config, platform data dir).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Name recorded in the audit log (default: config `actor`, else $USER@host).
    #[arg(long, global = true, env = "ROLLOUT_TUI_ACTOR", value_name = "NAME")]
    pub actor: Option<String>,
    /// Cockpit and demo: turn auto-progression on for this rollout at start (repeatable).
    #[arg(long = "auto", global = true, value_name = "ID")]
    pub auto: Vec<String>,
    /// Cockpit, demo and watch: draw with ASCII only (boxes, sparklines, symbols). Automatic
    /// when the locale (LC_ALL, else LC_CTYPE, else LANG) is not UTF-8 or TERM is linux,
    /// vt100 or dumb. Colours follow NO_COLOR, TERM (256color) and COLORTERM (truecolor).
    #[arg(long, global = true)]
    pub ascii: bool,
    /// Without a command: the full-screen cockpit on the configured store and metrics.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanArg {
    Canary,
    Tiers,
    Cohorts,
}

impl PlanArg {
    pub fn preset(self) -> crate::domain::rollout::PlanPreset {
        use crate::domain::rollout::PlanPreset;
        match self {
            PlanArg::Canary => PlanPreset::Canary,
            PlanArg::Tiers => PlanPreset::Tiers,
            PlanArg::Cohorts => PlanPreset::Cohorts,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HashingArg {
    #[value(name = "fractional-v1")]
    FractionalV1,
    #[value(name = "unleash-v1")]
    UnleashV1,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The cockpit on a demo store (seeded sample rollouts) with simulated traffic.
    Demo {
        /// Simulated seconds per real second (overrides [metrics.simulator] time_compression):
        /// `--speed 60` passes a 10-minute stage in 10 s, to watch auto-progression (`A`).
        #[arg(long, value_name = "FACTOR")]
        speed: Option<f64>,
    },
    /// A read-only wall screen: every rollout's status and health, rotating.
    Watch {
        /// Seconds each rollout is shown when they do not all fit on screen.
        #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
        rotate: u64,
        /// Flag data older than this as STALE (default: the gates' max_staleness).
        #[arg(long, value_name = "DURATION")]
        stale_after: Option<String>,
    },
    /// Create a rollout in its plan's first stage.
    Create(CreateArgs),
    /// Record new revisions; a new canary revision restarts the plan at its first stage.
    SetRevisions {
        id: String,
        #[arg(long, value_name = "REVISION")]
        stable: Option<String>,
        #[arg(long, value_name = "REVISION")]
        canary: Option<String>,
    },
    /// Show every rollout, or one in detail.
    Status {
        id: Option<String>,
        /// Machine-readable: {"rollouts": [...]} with the document fields plus id.
        #[arg(long)]
        json: bool,
    },
    /// Set an exact percentage (0..=100, at most two decimals).
    SetPercent {
        id: String,
        /// Percentage, e.g. 5, 25 or 0.5.
        #[arg(allow_negative_numbers = true)]
        percent: String,
    },
    /// Manage canary users (or, with --excluded, users who always stay on stable).
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Move to the next stage of the plan (from the last stage: complete).
    Advance { id: String },
    /// Pause a running rollout.
    Pause {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume a paused rollout.
    Resume { id: String },
    /// Send everyone back to stable.
    Rollback {
        id: String,
        /// Why (required; recorded in the document and the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Set the service's traffic split to what the rollout document says (`[actuator]`):
    /// after a write that left them apart, or a split changed outside rollout-tui.
    SyncTraffic { id: String },
    /// Stop every rollout from advancing or widening, by anyone (rollback and pause still work).
    Freeze {
        /// Why (required; shown on every screen and in `status`).
        #[arg(long)]
        reason: String,
        /// Also pause every running rollout (one audit event each).
        #[arg(long)]
        pause_all: bool,
    },
    /// Lift the freeze set with `freeze`.
    Unfreeze,
    /// Go straight to 100 % and complete, skipping the remaining stages.
    Promote {
        id: String,
        /// Required: promotion skips the health gates and remaining stages.
        #[arg(long)]
        force: bool,
    },
    /// Which side a user lands on, and why.
    Assign {
        id: String,
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// The audit log of a rollout, newest first.
    Events {
        id: String,
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Validate the configuration and show what is in effect.
    CheckConfig,
    /// Send a test message to every configured [[notify]] target and say how each went.
    NotifyTest,
    /// One rollout's life for the retrospective: a picture (SVG or PNG by --out's extension)
    /// of its percentage, stages, health and audit events, or without --out its summary.
    Report(ReportArgs),
    /// Replay recorded traffic through the gates and auto-progression, minute by minute, and
    /// say when the driver would have advanced, asked, halted or rolled back, and why.
    Backtest(BacktestArgs),
    /// Run a plan and gates many times on simulated traffic with an injected regression and
    /// print how often and how early it is caught, false halts, and the time to 100 %.
    Simulate(SimulateArgs),
}

#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// The rollout whose metrics history to replay (its revisions, over --from/--to).
    #[arg(required_unless_present = "trace", conflicts_with = "trace")]
    pub id: Option<String>,
    /// Replay a recorded trace (JSON Lines, see the README's Backtest section) instead.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Start (RFC 3339, or 'YYYY-MM-DD HH:MM' UTC); default the rollout's start / the trace's first minute.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// End; default the rollout's end (or now) / the trace's last minute.
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Replay this plan instead of the rollout's (or the trace header's, or defaults.plan).
    #[arg(long, value_enum)]
    pub plan: Option<PlanArg>,
    /// Gate thresholds from this TOML file's [gates] table instead of the config's.
    #[arg(long, value_name = "FILE")]
    pub gates: Option<PathBuf>,
    /// How the replayed operator answers auto-progression's questions: yes (at once),
    /// careful (yes, except "keep waiting" when asked because the evidence stayed short or
    /// looks worse), no.
    #[arg(long, value_enum, default_value_t = AsksArg::Yes, conflicts_with = "decline_asks")]
    pub asks: AsksArg,
    /// Same as --asks no: the operator says no to every confirmation.
    #[arg(long)]
    pub decline_asks: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Also draw the replayed rollout over the recorded traffic to FILE (.svg or .png).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Requests per second to the whole service.
    #[arg(long, default_value_t = 100.0, value_name = "N")]
    pub rps: f64,
    /// Error rate of stable and of a healthy canary, in percent (0.2 = 0.2 %).
    #[arg(long, default_value = "0.2", value_name = "PERCENT")]
    pub base_error_rate: String,
    /// The canary's fault: none, errors+N (N percentage points more errors), latency*K
    /// (every latency K times longer) or no-traffic.
    #[arg(long, default_value = "none", value_name = "KIND")]
    pub regression: String,
    /// How many rollouts to simulate.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub runs: u32,
    /// Seed of the first run (each run has its own, derived from it).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The plan to run (default: defaults.plan).
    #[arg(long, value_enum)]
    pub plan: Option<PlanArg>,
    /// Gate thresholds from this TOML file's [gates] table instead of the config's.
    #[arg(long, value_name = "FILE")]
    pub gates: Option<PathBuf>,
    /// "Caught before" counts detections made below this percentage.
    #[arg(long, default_value = "25", value_name = "PERCENT")]
    pub before: String,
    /// How the simulated operator answers auto-progression's questions: yes (at once),
    /// careful (yes, except "keep waiting" when asked because the evidence stayed short or
    /// looks worse), no.
    #[arg(long, value_enum, default_value_t = AsksArg::Yes)]
    pub asks: AsksArg,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    pub id: String,
    /// Write the picture to FILE (.svg or .png); without it the summary is printed.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Start of the period (RFC 3339, or 'YYYY-MM-DD HH:MM' UTC); default the rollout's start.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// End of the period; default its end (completion or rollback), or now while it runs.
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Picture width in pixels.
    #[arg(long, value_name = "PX", default_value_t = crate::report::chart::DEFAULT_WIDTH)]
    pub width: u32,
    /// Picture height in pixels.
    #[arg(long, value_name = "PX", default_value_t = crate::report::chart::DEFAULT_HEIGHT)]
    pub height: u32,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    pub id: String,
    /// The version being rolled out (the canary's).
    #[arg(long)]
    pub version: String,
    /// The version on stable, for display.
    #[arg(long)]
    pub stable_version: Option<String>,
    /// Stage plan (default: config defaults.plan).
    #[arg(long, value_enum)]
    pub plan: Option<PlanArg>,
    /// Bucket algorithm (default: config defaults.hashing).
    #[arg(long, value_enum)]
    pub hashing: Option<HashingArg>,
    #[arg(long, value_name = "REVISION")]
    pub stable_revision: Option<String>,
    #[arg(long, value_name = "REVISION")]
    pub canary_revision: Option<String>,
    /// A canary user to start with (repeatable).
    #[arg(long = "canary-user", value_name = "KEY")]
    pub canary_users: Vec<String>,
    /// What a sustained breach does to this rollout: pause (in place), retreat (to the
    /// canary users at 0 %, paused) or rollback (default: config policy.on_breach).
    #[arg(long, value_enum)]
    pub on_breach: Option<OnBreachArg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AsksArg {
    Yes,
    Careful,
    No,
}

impl AsksArg {
    pub fn asks(self) -> crate::whatif::replay::Asks {
        use crate::whatif::replay::Asks;
        match self {
            AsksArg::Yes => Asks::Accept,
            AsksArg::Careful => Asks::Careful,
            AsksArg::No => Asks::Decline,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnBreachArg {
    Pause,
    Retreat,
    Rollback,
}

impl OnBreachArg {
    pub fn policy(self) -> crate::domain::progression::HaltPolicy {
        use crate::domain::progression::HaltPolicy;
        match self {
            OnBreachArg::Pause => HaltPolicy::Pause,
            OnBreachArg::Retreat => HaltPolicy::Retreat,
            OnBreachArg::Rollback => HaltPolicy::Rollback,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add users to the canary list (or the excluded list).
    Add {
        id: String,
        #[arg(required = true)]
        keys: Vec<String>,
        #[arg(long)]
        excluded: bool,
    },
    /// Remove users from the canary list (or the excluded list).
    Remove {
        id: String,
        #[arg(required = true)]
        keys: Vec<String>,
        #[arg(long)]
        excluded: bool,
    },
    /// List the canary users (or the excluded users).
    List {
        id: String,
        #[arg(long)]
        excluded: bool,
        #[arg(long)]
        json: bool,
    },
}
