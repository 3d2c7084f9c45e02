//! `relent stub --schedule FILE [--port P]`: a local provider that answers from a schedule.

use relent_sim::stub::Stub;
use relent_sim::Schedule;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The schedule (JSON; see docs/schedule-format.md).
    #[arg(long)]
    schedule: PathBuf,
    /// The port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
}

pub fn run(args: Args) -> Result<ExitCode, String> {
    let text = std::fs::read_to_string(&args.schedule)
        .map_err(|e| format!("cannot read {}: {e}", args.schedule.display()))?;
    let schedule: Schedule = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{} is not a valid schedule: {e} (see docs/schedule-format.md)",
            args.schedule.display()
        )
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let stub = Stub::start(
            schedule,
            std::net::SocketAddr::from(([127, 0, 0, 1], args.port)),
        )
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
        outln!("relent stub listening on {}", stub.base_url());
        outln!(
            "  POST {0}/v1/chat/completions (Authorization: Bearer stub-<key id>)",
            stub.base_url()
        );
        outln!(
            "  POST {0}/v1/messages (x-api-key: stub-<key id>)",
            stub.base_url()
        );
        outln!("press Ctrl-C to stop");
        tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
        outln!("served {} requests", stub.seen().len());
        Ok(ExitCode::SUCCESS)
    })
}
