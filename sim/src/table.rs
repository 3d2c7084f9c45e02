//! Renders a trace as a readable table: time, event, classification, actions, key states.

use relent::machine::{EventSummary, TraceEntry};
use relent::{Action, KeyState, SleepReason};
use std::fmt::Write;

/// The trace as aligned text, one line per step.
pub fn render(trace: &[TraceEntry]) -> String {
    let rows: Vec<[String; 5]> = trace.iter().map(row).collect();
    let headers = ["time", "event", "classified", "actions", "keys"];
    let mut widths = headers.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[String]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<width$}  ", width = widths[i]);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut out, &headers.map(String::from));
    for r in &rows {
        line(&mut out, r);
    }
    out
}

fn row(e: &TraceEntry) -> [String; 5] {
    let event = match &e.event {
        EventSummary::Response { status } => format!("http {status}"),
        EventSummary::TransportError { kind } => format!("transport {kind:?}").to_lowercase(),
        EventSummary::PoolChanged(change) => {
            format!("pool {}", serde_json::to_string(change).unwrap_or_default())
        }
        other => other.name().to_string(),
    };
    let seen = e.seen.as_ref().map_or(String::new(), |s| {
        let mut text = s.reason.to_string();
        if let Some(ms) = s.wait_ms {
            let _ = write!(text, " wait {}", relent::Millis(ms));
        }
        text
    });
    let actions = e
        .actions
        .iter()
        .map(describe)
        .collect::<Vec<_>>()
        .join("; ");
    let keys = e
        .keys
        .iter()
        .map(|k| {
            let state = match k.state {
                KeyState::Ready => "ready".to_string(),
                KeyState::CoolingDown(t) => format!("cooling<{t}"),
                KeyState::Exhausted(t) => format!("exhausted<{t}"),
                KeyState::Revoked => "revoked".to_string(),
                KeyState::Removed => "removed".to_string(),
            };
            format!("{}={state}", k.label)
        })
        .collect::<Vec<_>>()
        .join(" ");
    [e.at.to_string(), event, seen, actions, keys]
}

/// A run's trace as a table, then its outcome, message and any violations.
pub fn render_report(report: &crate::RunReport) -> String {
    let mut out = render(&report.trace);
    let _ = writeln!(
        out,
        "outcome: {}  attempts: {}  virtual time: {}",
        report.outcome.name(),
        report.attempts,
        relent::Millis(report.virtual_elapsed_ms)
    );
    if let Some(message) = &report.message {
        let _ = writeln!(out, "message: {message}");
    }
    for v in &report.violations {
        let _ = writeln!(
            out,
            "VIOLATION of invariant {} at {}: {}",
            v.invariant,
            relent::Millis(v.at_ms),
            v.detail
        );
    }
    out
}

/// One action in a few words.
pub fn describe(a: &Action) -> String {
    match a {
        Action::Send(s) => format!(
            "send #{} t{} {}{}",
            s.attempt,
            s.target,
            s.key,
            if s.fresh_connection { " fresh" } else { "" }
        ),
        Action::Sleep { until, reason } => {
            let why = match reason {
                SleepReason::Backoff { after } => format!("backoff after {after}"),
                SleepReason::ServerHint { after, source } => {
                    format!("server hint ({source:?}) after {after}")
                }
                SleepReason::AllKeysCooling => "all keys cooling".to_string(),
                SleepReason::RetryBudget { after } => format!("retry budget after {after}"),
                other => other.name().to_string(),
            };
            format!("sleep until {until} ({why})")
        }
        Action::Rotate { from, to, why } => match from {
            Some(from) => format!(
                "rotate t{}/{} -> t{}/{} ({why})",
                from.target, from.key, to.target, to.key
            ),
            None => format!("rotate (no key) -> t{}/{} ({why})", to.target, to.key),
        },
        Action::Succeeded { via, attempts } => {
            format!("succeeded via t{}/{} after {attempts}", via.target, via.key)
        }
        Action::Abort(abort) => format!("abort {}", abort.reason),
    }
}
