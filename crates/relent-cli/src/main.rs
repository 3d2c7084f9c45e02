//! `relent`: classify provider errors, run scenarios and the simulator.

#[macro_use]
mod out;

mod classify_cmd;
mod scenario_cmd;
mod scoreboard_cmd;
mod sim_cmd;
mod stub_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// relent: the retry and failover core for LLM API calls.
#[derive(Parser)]
#[command(name = "relent", version, about)]
struct Cli {
    /// With no command, relent runs its main job: the simulator (20 000 seeded worlds checked
    /// against the invariant catalog) and then the scoreboard (500 worlds per family).
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run built-in scenarios through the machine and print their traces.
    Scenario(scenario_cmd::Args),
    /// Classify one provider response (or many with --jsonl).
    Classify(classify_cmd::Args),
    /// Deterministic simulation: many seeded fault worlds checked against the invariants.
    Sim(sim_cmd::Args),
    /// relent against the published retry policies of other systems, on the same worlds.
    Scoreboard(scoreboard_cmd::Args),
    /// A local stub provider over HTTP that answers from a schedule file.
    Stub(stub_cmd::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => main_job(),
        Some(command) => run(command),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("relent: {}", scrub(&message));
            ExitCode::from(2)
        }
    }
}

/// `message` with every line that holds a secret redacted: error messages quote the input
/// they refuse (an unknown provider name, a field's bad value), and the input may hold a key.
/// Lines without one are kept as they are.
pub(crate) fn scrub(message: &str) -> String {
    use relent::classify::redact;
    message
        .split('\n')
        .map(|line| {
            if redact::contains_secret(line) {
                redact::redact(line)
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The simulator, then the scoreboard, with built-in defaults.
fn main_job() -> Result<ExitCode, String> {
    use clap::Parser as _;
    let sim = sim_cmd::Args::try_parse_from(["sim"]).map_err(|e| e.to_string())?;
    let sim_code = sim_cmd::run_cmd(sim)?;
    outln!();
    let board = scoreboard_cmd::Args::try_parse_from(["scoreboard"]).map_err(|e| e.to_string())?;
    let board_code = scoreboard_cmd::run_cmd(board)?;
    Ok(if sim_code == ExitCode::SUCCESS {
        board_code
    } else {
        sim_code
    })
}

fn run(command: Command) -> Result<ExitCode, String> {
    match command {
        Command::Scenario(args) => scenario_cmd::run(args),
        Command::Classify(args) => classify_cmd::run(args),
        Command::Sim(args) => sim_cmd::run_cmd(args),
        Command::Scoreboard(args) => scoreboard_cmd::run_cmd(args),
        Command::Stub(args) => stub_cmd::run(args),
    }
}

/// The simulator allocates a few dozen small blocks per world; mimalloc serves them in a
/// fraction of glibc's time (build with `--no-default-features` for the system allocator).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
