//! `relent`: classify provider errors, run scenarios and the simulator.

mod classify_cmd;
mod scenario_cmd;
mod scoreboard_cmd;
mod sim_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// relent: the retry and failover core for LLM API calls.
#[derive(Parser)]
#[command(name = "relent", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scenario(args) => scenario_cmd::run(args),
        Command::Classify(args) => classify_cmd::run(args),
        Command::Sim(args) => sim_cmd::run_cmd(args),
        Command::Scoreboard(args) => scoreboard_cmd::run_cmd(args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("relent: {message}");
            ExitCode::from(2)
        }
    }
}
