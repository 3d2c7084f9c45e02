//! `relent sim`: run many seeded worlds, replay one seed, or run one schedule file.

use relent_sim::swarm::{run_seeds, Summary};
use relent_sim::{generate::generate, run, shrink, table, RunOptions, RunReport, Schedule};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Parser)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// How many seeded worlds to run.
    #[arg(long, default_value_t = 20_000)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Worker threads (default: every core).
    #[arg(long)]
    jobs: Option<usize>,
    /// Run every Nth seed twice and compare traces (0: never).
    #[arg(long, default_value_t = 16)]
    determinism_every: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Replay one seed and print its whole trace.
    Replay {
        /// The seed.
        #[arg(long)]
        seed: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Also print the generated schedule as JSON.
        #[arg(long)]
        schedule: bool,
    },
    /// Run one hand-written schedule file.
    Run {
        /// The schedule (JSON; see docs/schedule-format.md).
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run_cmd(args: Args) -> Result<ExitCode, String> {
    match args.command {
        Some(Command::Replay {
            seed,
            json,
            schedule,
        }) => {
            let world = generate(seed);
            if schedule {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&world).map_err(|e| e.to_string())?
                );
            }
            Ok(show(&world, json))
        }
        Some(Command::Run { file, json }) => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let world: Schedule = serde_json::from_str(&text).map_err(|e| {
                format!(
                    "{} is not a valid schedule: {e} (see docs/schedule-format.md)",
                    file.display()
                )
            })?;
            Ok(show(&world, json))
        }
        None => swarm(args),
    }
}

fn show(world: &Schedule, json: bool) -> ExitCode {
    let report = run(
        world,
        RunOptions {
            keep_trace: true,
            deep_secret_scan: true,
            raw_responses: true,
        },
    );
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&as_json(&report)).unwrap_or_default()
        );
    } else {
        out!("{}", table::render_report(&report));
    }
    if report.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn as_json(r: &RunReport) -> serde_json::Value {
    let (outcome, reason) = match &r.outcome {
        relent_sim::Outcome::Succeeded => ("succeeded", None),
        relent_sim::Outcome::Aborted(reason) => ("aborted", Some(reason.name().to_string())),
        relent_sim::Outcome::Livelock => ("livelock", None),
        relent_sim::Outcome::Invalid(e) => ("invalid", Some(e.clone())),
    };
    serde_json::json!({
        "outcome": outcome,
        "reason": reason,
        "message": r.message,
        "attempts": r.attempts,
        "sends_per_key": r.sends_per_key,
        "virtual_elapsed_ms": r.virtual_elapsed_ms,
        "violations": r.violations,
        "trace": r.trace,
    })
}

fn swarm(args: Args) -> Result<ExitCode, String> {
    if args.seeds == 0 {
        return Err("--seeds must be at least 1".into());
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let bar = (std::io::stderr().is_terminal() && !args.json).then(|| {
        let bar = indicatif::ProgressBar::new(args.seeds);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} worlds  {per_sec}  eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let progress = |n: u64| {
        if let Some(bar) = &bar {
            bar.set_position(n);
        }
    };
    let summary = run_seeds(
        args.start,
        args.seeds,
        jobs,
        args.determinism_every,
        &progress,
    );
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let shrunk = shrink_first(&summary);
    if args.json {
        let mut value = serde_json::to_value(&summary).map_err(|e| e.to_string())?;
        value["worlds_per_second"] =
            serde_json::json!(summary.worlds as f64 / summary.seconds.max(1e-9));
        value["jobs"] = serde_json::json!(jobs);
        if let Some(path) = &shrunk {
            value["shrunk_schedule"] = serde_json::json!(path);
        }
        outln!(
            "{}",
            serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?
        );
    } else {
        print_summary(&summary, jobs, shrunk.as_deref());
    }
    let ok = summary.failing_seeds == 0 && summary.missing_marks.is_empty();
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Shrinks the first failing seed and writes the minimal schedule next to the working
/// directory; returns its path.
fn shrink_first(summary: &Summary) -> Option<String> {
    let failure = summary.failures.first()?;
    let invariant = failure.violations.first()?.invariant;
    let (small, _) = shrink::shrink(&generate(failure.seed), invariant);
    let path = format!("relent-shrunk-seed-{}.json", failure.seed);
    std::fs::write(&path, serde_json::to_string_pretty(&small).ok()?).ok()?;
    Some(path)
}

fn print_summary(s: &Summary, jobs: usize, shrunk: Option<&str>) {
    outln!(
        "relent sim: {} worlds in {:.2}s on {jobs} thread(s), {:.0} worlds/s",
        s.worlds,
        s.seconds,
        s.worlds as f64 / s.seconds.max(1e-9)
    );
    outln!("violations: {} failing seed(s)", s.failing_seeds);
    for f in s.failures.iter().take(10) {
        for v in &f.violations {
            outln!(
                "  seed {}: invariant {} at {}: {}",
                f.seed,
                v.invariant,
                relent::Millis(v.at_ms),
                v.detail
            );
        }
        outln!("    reproduce: {}", f.reproduce);
    }
    if let Some(path) = shrunk {
        outln!("  shrunk schedule written to {path}; replay it with: relent sim run {path}");
    }
    outln!(
        "single-dead-key worlds checked: {}; determinism checked on {} seeds; digest {:016x}",
        s.single_dead_key_worlds,
        s.determinism_checked,
        s.digest
    );
    outln!(
        "marks reached: {}/{}",
        s.marks.len(),
        relent_sim::marks::Marks::required().len()
    );
    if !s.missing_marks.is_empty() {
        outln!(
            "  MISSING marks (the schedules are too weak): {}",
            s.missing_marks.join(", ")
        );
    }
    outln!("outcomes:");
    for (name, n) in &s.outcomes {
        outln!(
            "  {name:<40} {n:>9}  {:>5.1}%",
            100.0 * *n as f64 / s.worlds.max(1) as f64
        );
    }
    outln!("attempts per call:");
    for (a, n) in &s.attempts {
        outln!("  {a:>3} {n:>9}");
    }
    let [p50, p90, p99, max] = s.virtual_ms;
    outln!(
        "virtual time to outcome: p50 {}  p90 {}  p99 {}  max {}",
        relent::Millis(p50),
        relent::Millis(p90),
        relent::Millis(p99),
        relent::Millis(max)
    );
}
