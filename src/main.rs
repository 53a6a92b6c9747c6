use std::process::ExitCode;

use clap::Parser;
use rollout_tui::cli::Cli;
use rollout_tui::commands;

fn main() -> ExitCode {
    if let Err(e) = color_eyre::install() {
        eprintln!("warning: could not install error reporting: {e}");
    }
    quiet_on_broken_pipe();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!(
                "error: {}",
                rollout_tui::domain::text::escape_keeping_lines(&failure.message)
            );
            ExitCode::from(failure.code)
        }
    }
}

/// `status | head` closes the pipe early; Rust ignores SIGPIPE, so the next `println!`
/// panics. That is the reader's choice, not a crash: end quietly, as the output's reader
/// asked. Every other panic goes to the hooks installed before (color-eyre; ratatui's
/// restores the terminal first).
fn quiet_on_broken_pipe() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        previous(info);
    }));
}
