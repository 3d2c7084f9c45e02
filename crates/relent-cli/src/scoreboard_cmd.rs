//! `relent scoreboard`: relent against the published retry policies of other systems.

use relent::Policy;
use relent_sim::scoreboard::file::FamilyFile;
use relent_sim::scoreboard::{families, fleet, render_svg, render_table, run_with};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Parser)]
pub struct Args {
    /// Worlds per family.
    #[arg(long, default_value_t = 500)]
    seeds: u64,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Also write an SVG chart to this file.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Run the family described in this file (JSON, format in docs/cli.md) instead of the
    /// built-in families; repeatable.
    #[arg(long = "family", value_name = "FILE")]
    family: Vec<PathBuf>,
    /// Run relent with this policy (JSON, or TOML with tables and scalar values) instead of
    /// each world's own.
    #[arg(long = "policy", value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Run the fleet family instead: processes sharing keys, with no store, with the fleet
    /// store, and with the store down mid-run (docs/SCOREBOARD.md, "Fleets").
    #[arg(long, conflicts_with_all = ["family", "policy", "svg"])]
    fleet: bool,
}

fn read(path: &PathBuf) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// A policy file: JSON when it starts with `{`, else the TOML subset `Policy` needs.
fn load_policy(path: &PathBuf) -> Result<Policy, String> {
    let text = read(path)?;
    let value = if text.trim_start().starts_with('{') {
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
    } else {
        toml_subset(&text).map_err(|e| format!("{}: {e}", path.display()))?
    };
    let policy: Policy =
        serde_json::from_value(value).map_err(|e| format!("{}: {e}", path.display()))?;
    policy
        .validate()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(policy)
}

/// Reads `[table]` headers and `key = value` lines (integers, booleans, quoted strings,
/// floats) into JSON; `#` starts a comment. Enough for every field of `Policy`.
fn toml_subset(text: &str) -> Result<serde_json::Value, String> {
    use serde_json::{Map, Value};
    let mut root = Map::new();
    let mut table: Option<String> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = match raw.find('#') {
            Some(i) if !raw[..i].contains('"') => &raw[..i],
            _ => raw,
        }
        .trim();
        if line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim().to_string();
            root.entry(name.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            table = Some(name);
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: expected `key = value`", n + 1))?;
        let (key, value) = (key.trim().to_string(), value.trim());
        let value = if let Some(s) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Value::String(s.to_string())
        } else if value == "true" || value == "false" {
            Value::Bool(value == "true")
        } else if let Ok(i) = value.replace('_', "").parse::<u64>() {
            Value::from(i)
        } else if let Ok(f) = value.parse::<f64>() {
            Value::from(f)
        } else {
            return Err(format!("line {}: cannot read the value `{value}`", n + 1));
        };
        let map = match &table {
            None => &mut root,
            Some(t) => root
                .get_mut(t)
                .and_then(Value::as_object_mut)
                .expect("the table was inserted"),
        };
        map.insert(key, value);
    }
    Ok(Value::Object(root))
}

pub fn run_cmd(args: Args) -> Result<ExitCode, String> {
    if args.seeds == 0 {
        return Err("--seeds must be at least 1".into());
    }
    if args.fleet {
        let report = fleet::run_fleet(args.seeds);
        if args.json {
            outln!(
                "{}",
                serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
            );
        } else {
            out!("{}", fleet::render_fleet_table(&report));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let policy = args.policy.as_ref().map(load_policy).transpose()?;
    let board = if args.family.is_empty() {
        run_with(&families::all(), args.seeds, policy.as_ref())
    } else {
        let mut reports = Vec::new();
        for path in &args.family {
            let file =
                FamilyFile::parse(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))?;
            let seeds = file.seeds.unwrap_or(args.seeds);
            for family in file.families()? {
                reports.push(relent_sim::scoreboard::run_family(
                    &family,
                    seeds,
                    policy.as_ref(),
                ));
            }
        }
        relent_sim::scoreboard::Scoreboard {
            seeds: args.seeds,
            families: reports,
        }
    };
    if let Some(path) = &args.svg {
        std::fs::write(path, render_svg(&board))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&board).map_err(|e| e.to_string())?
        );
    } else {
        outln!("# relent scoreboard: {} worlds per family\n", board.seeds);
        out!("{}", render_table(&board));
        let missed: Vec<&str> = board
            .families
            .iter()
            .filter(|f| !f.relent_meets_bar)
            .map(|f| f.family.as_str())
            .collect();
        if missed.is_empty() {
            outln!("relent meets the bar in every family.");
        } else {
            outln!(
                "relent misses the bar in: {} (see docs/SCOREBOARD.md for why).",
                missed.join(", ")
            );
        }
        if let Some(path) = &args.svg {
            outln!("chart written to {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::toml_subset;

    #[test]
    fn toml_subset_reads_a_policy() {
        let value = toml_subset(
            "max_attempts = 4 # fewer\ndeadline_ms = 90_000\n[backoff]\njitter = \"full\"\nbase_ms = 250\n",
        )
        .unwrap();
        assert_eq!(value["max_attempts"], 4);
        assert_eq!(value["deadline_ms"], 90_000);
        assert_eq!(value["backoff"]["jitter"], "full");
        assert_eq!(value["backoff"]["base_ms"], 250);
        assert!(toml_subset("max_attempts 4").is_err());
    }
}
