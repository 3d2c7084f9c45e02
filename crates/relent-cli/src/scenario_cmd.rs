//! `relent scenario [NAME] [--json]`.

use relent_sim::{scenarios, table, RunOptions};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The scenario to run; all of them when absent. `--list` shows the names.
    name: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// List the scenarios and what each shows.
    #[arg(long)]
    list: bool,
    /// Print the scenario's schedule (the JSON format `relent sim run` reads) instead of
    /// running it.
    #[arg(long, requires = "name")]
    schedule: bool,
}

pub fn run(args: Args) -> Result<ExitCode, String> {
    let all = scenarios::all();
    if args.list {
        for s in &all {
            outln!("{:<30} {}", s.name, s.about);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let chosen: Vec<_> = match &args.name {
        Some(name) => {
            let found = scenarios::find(name).ok_or_else(|| {
                let names: Vec<_> = all.iter().map(|s| s.name).collect();
                format!(
                    "no scenario named {name:?}; choose one of: {}",
                    names.join(", ")
                )
            })?;
            vec![found]
        }
        None => all,
    };
    if args.schedule {
        for s in &chosen {
            outln!(
                "{}",
                serde_json::to_string_pretty(&s.schedule).map_err(|e| e.to_string())?
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut violations = 0;
    let mut json = Vec::new();
    for s in &chosen {
        let report = relent_sim::run(
            &s.schedule,
            RunOptions {
                keep_trace: true,
                deep_secret_scan: true,
                raw_responses: true,
            },
        );
        violations += report.violations.len();
        if args.json {
            json.push(serde_json::json!({"scenario": s.name, "about": s.about, "report": report}));
            continue;
        }
        outln!("== {} ==\n{}\n", s.name, s.about);
        out!("{}", table::render_report(&report));
        outln!();
    }
    if args.json {
        let text = if chosen.len() == 1 {
            serde_json::to_string_pretty(&json[0])
        } else {
            serde_json::to_string_pretty(&json)
        };
        outln!("{}", text.map_err(|e| e.to_string())?);
    }
    Ok(if violations == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
