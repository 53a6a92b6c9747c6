//! The wall end to end: the real binary's `watch` on an SQLite store with the traffic
//! simulator, in tmux. Data that stops coming turns a PASS into STALE, without colour
//! (`NO_COLOR`) a failing rollout still differs from a passing one in words and shapes, and
//! a Cloud Run split changed by hand is flagged while the wall writes nothing to Cloud Run.

#[path = "support/cloud_run_standin.rs"]
mod cloud_run_standin;
#[path = "support/http_fake.rs"]
mod http_fake;
#[path = "support/tmux.rs"]
mod tmux;

use cloud_run_standin::{CloudRunStandin, Target, create_web};
use tmux::{Tmux, WAIT, sh_quote};

/// The simulator as the metrics source, sampled once an hour: after the first sample
/// nothing new arrives, so the data ages while the test watches. The rollouts have just
/// entered their stage, which has no evidence of its own yet: the gates judge the simulator's
/// window, whose traffic is already there. The healthy canary fails no request: with stable's
/// own error rate the window's 95 % test would call it worse in about one draw in twenty,
/// and the draw depends on the wall clock.
fn write_config(t: &Tmux, extra: &str) -> String {
    let path = t.path("config.toml");
    std::fs::write(
        &path,
        format!(
            "[gates]\njudgment = \"window\"\n[metrics]\nkind = \"simulator\"\nrefresh = \"1h\"\n\
             [metrics.simulator.canary]\nerror_rate = 0.0\n{extra}"
        ),
    )
    .expect("write config");
    sh_quote(&path.display().to_string())
}

/// A rollout at 5 % of the canary plan, so its canary gets traffic.
fn create_at_five(t: &Tmux, id: &str) {
    for args in [
        vec![
            "create",
            id,
            "--version",
            "1.0.1",
            "--canary-user",
            "alec@getaifactory.com",
        ],
        vec!["advance", id],
    ] {
        let out = t.cli(&args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_wall_whose_data_stops_says_stale_instead_of_pass() {
    let Some(t) = Tmux::start("wall_stale", 80, 24) else {
        return;
    };
    create_at_five(&t, "current");
    let config = write_config(&t, "");
    t.launch("", &format!("--config {config} watch --stale-after 10s"));
    let (_, fresh) = t.wait_until("a fresh PASS", WAIT, |s| s.contains("✔ PASS"));
    let (screen, stale) = t.wait_until("STALE over the old verdict", WAIT, |s| {
        s.contains("⧖ STALE (was PASS, <1m old)")
    });
    println!("watch: PASS after {fresh:?}, then STALE after {stale:?} more");
    assert!(!screen.contains("✔ PASS"), "{screen}");
    assert!(screen.contains("1 rollout: 1 STALE"), "{screen}");
    assert!(screen.contains("STALE: data"), "the top bar too:\n{screen}");
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(WAIT), 0);
}

/// SGR parameters that set a colour (foreground or background, 8, 16, 256 or RGB).
fn colour_params(styled: &str) -> Vec<String> {
    let mut found = Vec::new();
    for seq in styled.split("\x1b[").skip(1) {
        let Some(end) = seq.find('m') else { continue };
        let params = &seq[..end];
        if !params.chars().all(|c| c.is_ascii_digit() || c == ';') {
            continue;
        }
        for p in params.split(';').filter_map(|p| p.parse::<u16>().ok()) {
            if matches!(p, 30..=37 | 38 | 40..=47 | 48 | 90..=97 | 100..=107) {
                found.push(params.to_string());
            }
        }
    }
    found
}

/// Whether `needle` is drawn in reverse video on the styled screen (None if absent):
/// follows the SGR sequences before it on its line.
fn reversed_at(styled: &str, needle: &str) -> Option<bool> {
    let line = styled.lines().find(|l| l.contains(needle))?;
    let before = &line[..line.find(needle)?];
    let mut reversed = false;
    for seq in before.split("\x1b[").skip(1) {
        let Some(end) = seq.find('m') else { continue };
        let params = &seq[..end];
        if params.is_empty() {
            reversed = false;
        }
        for p in params.split(';').filter_map(|p| p.parse::<u16>().ok()) {
            match p {
                0 | 27 => reversed = false,
                7 => reversed = true,
                _ => {}
            }
        }
    }
    Some(reversed)
}

#[test]
fn without_colour_the_wall_tells_fail_from_pass_in_words() {
    let Some(t) = Tmux::start("wall_no_color", 80, 24) else {
        return;
    };
    create_at_five(&t, "current");
    create_at_five(&t, "checkout");
    // checkout's canary fails a third of its requests.
    let config = write_config(
        &t,
        "[metrics.rollouts.checkout.simulator.canary]\nerror_rate = 0.3\n",
    );
    t.launch("NO_COLOR=1", &format!("--config {config} watch"));
    let (screen, took) = t.wait_for_all(
        &["✖ FAIL", "✔ PASS", "2 rollouts: 1 FAIL (checkout), 1 PASS"],
        WAIT,
    );
    println!("watch with NO_COLOR: both verdicts after {took:?}");
    // The shapes differ too: a thick border round the failure, a rounded one round the pass.
    assert!(screen.contains("┏ checkout ━"), "{screen}");
    assert!(screen.contains("╭ current ─"), "{screen}");
    let styled = t.capture_styled();
    assert_eq!(
        colour_params(&styled),
        Vec::<String>::new(),
        "NO_COLOR: no colour at all"
    );
    assert_eq!(reversed_at(&styled, "✖ FAIL"), Some(true), "{styled}");
    assert_eq!(reversed_at(&styled, "✔ PASS"), Some(false), "{styled}");
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(WAIT), 0);
}

#[test]
fn a_split_changed_by_hand_is_flagged_and_the_wall_sets_none() {
    let Some(t) = Tmux::start("wall_drift", 80, 24) else {
        return;
    };
    let standin = CloudRunStandin::start("svc-1", &["svc-1", "svc-2"]);
    let config = t.path("config.toml");
    std::fs::write(&config, standin.screen_config()).unwrap();
    let config = config.display().to_string();
    for args in [&create_web("svc-2")[..], &["advance", "web"]] {
        let mut all = vec!["--config", config.as_str()];
        all.extend_from_slice(args);
        let out = t.cli(&all);
        assert!(out.status.success(), "{all:?}: {out:?}");
    }
    let writes_before = standin.with(|s| s.applied.len());
    let requests_before = standin.requests().len();

    t.launch("", &format!("--config {} watch", sh_quote(&config)));
    t.wait_for("1 rollout:", WAIT);
    // The wall reads the split it shows: the document's, so nothing to flag yet.
    let started = std::time::Instant::now();
    while standin.requests().len() == requests_before {
        assert!(started.elapsed() < WAIT, "the wall never read the split");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!t.capture().contains("DRIFT"), "{}", t.capture());

    standin.set_split(vec![
        Target::revision("svc-1", 50),
        Target::revision("svc-2", 50),
    ]);
    let screen = t.wait_for_all(
        &["· DRIFT: web", "DRIFT: Cloud Run serves svc-1 50 %"],
        WAIT,
    );
    println!("watch flagged drift after {:?}", screen.1);
    // Read, never set: no update reached Cloud Run, and every request the wall made is a GET.
    assert_eq!(standin.with(|s| s.applied.len()), writes_before);
    let methods: Vec<String> = standin.requests()[requests_before..]
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert!(methods.iter().all(|m| m == "GET"), "{methods:?}");
    assert_eq!(standin.serving().len(), 2);

    standin.set_split(vec![
        Target::revision("svc-1", 95),
        Target::revision("svc-2", 5),
    ]);
    t.wait_gone("DRIFT", WAIT);
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(WAIT), 0);
}
