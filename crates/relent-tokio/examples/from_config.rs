//! A client from a configuration file, and one typed chat request shaped for whichever
//! target answers (OpenAI-compatible or Anthropic Messages).
//!
//! ```text
//! export OPENAI_API_KEY=… AZURE_OPENAI_API_KEY=… ANTHROPIC_API_KEY=…
//! cargo run -p relent-tokio --example from_config -- crates/relent-tokio/examples/relent.toml "Say hi"
//! ```
//!
//! Every configuration mistake (a missing variable, a secret with a trailing newline, an
//! unparseable URL) is reported before anything is sent.

use relent_tokio::{CallOptions, ChatRequest, Client, Message, Request};
use std::time::Duration;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| "crates/relent-tokio/examples/relent.toml".into());
    let prompt = args
        .next()
        .unwrap_or_else(|| "Say hi in five words.".into());
    let client = match Client::from_config_file(&path) {
        Ok(client) => client,
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(2);
        }
    };
    let mut chat = ChatRequest::new(vec![
        Message::new("system", "You answer briefly."),
        Message::new("user", prompt),
    ]);
    chat.max_tokens = Some(200);
    let options = CallOptions::new()
        .deadline(Duration::from_secs(60))
        .metadata("example", "from_config");
    match client.send(Request::chat(chat), options).await {
        Ok(done) => println!(
            "{} (target {}, {} attempts)",
            done.text().unwrap_or_default(),
            done.via.target,
            done.attempts
        ),
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(1);
        }
    }
}
