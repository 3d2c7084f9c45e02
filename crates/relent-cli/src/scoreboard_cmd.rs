//! `relent scoreboard`: relent against the published retry policies of other systems.

use relent_sim::scoreboard::{render_svg, render_table, run};
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
}

pub fn run_cmd(args: Args) -> Result<ExitCode, String> {
    if args.seeds == 0 {
        return Err("--seeds must be at least 1".into());
    }
    let board = run(args.seeds);
    if let Some(path) = &args.svg {
        std::fs::write(path, render_svg(&board))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&board).map_err(|e| e.to_string())?
        );
    } else {
        println!("# relent scoreboard: {} worlds per family\n", board.seeds);
        print!("{}", render_table(&board));
        let missed: Vec<&str> = board
            .families
            .iter()
            .filter(|f| !f.relent_meets_bar)
            .map(|f| f.family)
            .collect();
        if missed.is_empty() {
            println!("relent meets the bar in every family.");
        } else {
            println!(
                "relent misses the bar in: {} (see docs/SCOREBOARD.md for why).",
                missed.join(", ")
            );
        }
        if let Some(path) = &args.svg {
            println!("chart written to {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
