//! The scoreboard as text tables and as an SVG chart.

use super::{FamilyReport, Row, Scoreboard};
use relent::Millis;
use std::fmt::Write;

/// One table per family, policies as rows, the best value of each column marked `*`
/// (the oracle is a bound and is never marked).
pub fn render_table(board: &Scoreboard) -> String {
    let mut out = String::new();
    for f in &board.families {
        let _ = writeln!(out, "## {} — {}", f.family, f.about);
        let many = f.rows.iter().any(|r| r.peak_amplification.is_some());
        let contenders: Vec<&Row> = f.rows.iter().filter(|r| r.policy != "oracle").collect();
        let best = |key: &dyn Fn(&Row) -> Option<f64>, higher: bool| -> Option<f64> {
            let values = contenders.iter().filter_map(|r| key(r));
            if higher {
                values.fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))))
            } else {
                values.fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.min(v))))
            }
        };
        type Column<'a> = (
            &'a str,
            Box<dyn Fn(&Row) -> Option<f64>>,
            bool,
            fn(f64) -> String,
        );
        let mut columns: Vec<Column> = vec![
            (
                "success ≤120s",
                Box::new(|r: &Row| Some(r.success_rate())),
                true,
                |v| format!("{:.1}%", 100.0 * v),
            ),
            (
                "success, no deadline",
                Box::new(|r: &Row| Some(r.success_rate_no_deadline())),
                true,
                |v| format!("{:.1}%", 100.0 * v),
            ),
            (
                "calls/call",
                Box::new(|r: &Row| Some(r.upstream_per_call)),
                false,
                |v| format!("{v:.2}"),
            ),
            (
                "wasted/call",
                Box::new(|r: &Row| Some(r.wasted_per_call)),
                false,
                |v| format!("{v:.2}"),
            ),
            (
                "p50",
                Box::new(|r: &Row| Some(r.p50_ms as f64)),
                false,
                |v| Millis(v as u64).to_string(),
            ),
            (
                "p99",
                Box::new(|r: &Row| Some(r.p99_ms as f64)),
                false,
                |v| Millis(v as u64).to_string(),
            ),
        ];
        if many {
            columns.push((
                "peak amplification",
                Box::new(|r: &Row| r.peak_amplification),
                false,
                |v| format!("{v:.2}x"),
            ));
            columns.push((
                "steady amplification",
                Box::new(|r: &Row| r.steady_amplification),
                false,
                |v| format!("{v:.2}x"),
            ));
            if f.rows.iter().any(|r| r.recovery_ms.is_some()) || f.family == "metastable" {
                columns.push((
                    "recovery to 95 %",
                    Box::new(|r: &Row| r.recovery_ms.map(|v| v as f64)),
                    false,
                    |v| Millis(v as u64).to_string(),
                ));
            }
        } else {
            columns.push((
                "time to error",
                Box::new(|r: &Row| r.time_to_error_ms.map(|v| v as f64)),
                false,
                |v| Millis(v as u64).to_string(),
            ));
        }
        let bests: Vec<Option<f64>> = columns
            .iter()
            .map(|(_, key, higher, _)| best(key.as_ref(), *higher))
            .collect();
        let _ = write!(out, "| policy |");
        for (name, ..) in &columns {
            let _ = write!(out, " {name} |");
        }
        let _ = write!(out, "\n|---|");
        for _ in &columns {
            let _ = write!(out, "---:|");
        }
        out.push('\n');
        for r in &f.rows {
            let _ = write!(out, "| {} |", r.policy);
            for ((name, key, _, fmt), b) in columns.iter().zip(&bests) {
                let cell = match key(r) {
                    Some(v) => {
                        let mark = r.policy != "oracle" && b.is_some_and(|b| (b - v).abs() < 1e-9);
                        format!("{}{}", fmt(v), if mark { " *" } else { "" })
                    }
                    None if many && name.starts_with("recovery") => "never".to_string(),
                    None => "–".to_string(),
                };
                let _ = write!(out, " {cell} |");
            }
            out.push('\n');
        }
        if f.relent_meets_bar {
            let _ = writeln!(out, "\nrelent meets the bar.\n");
        } else {
            let _ = writeln!(out, "\nrelent misses the bar: {}.\n", f.notes.join("; "));
        }
    }
    out
}

const COLORS: [&str; 10] = [
    "#d62728", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#7f7f7f", "#bcbd22",
];

/// Two panels of grouped bars per family: success rate at 120 s, and wasted sends per call.
pub fn render_svg(board: &Scoreboard) -> String {
    let families: Vec<&FamilyReport> = board.families.iter().collect();
    let policies: Vec<&str> = families
        .first()
        .map(|f| f.rows.iter().map(|r| r.policy).collect())
        .unwrap_or_default();
    let group = 14.0 * policies.len() as f64 + 20.0;
    let width = 80.0 + group * families.len() as f64 + 20.0;
    let panel = 220.0;
    let height = 2.0 * panel + 230.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let max_wasted = families
        .iter()
        .flat_map(|f| &f.rows)
        .map(|r| r.wasted_per_call)
        .fold(1.0, f64::max)
        .ceil();
    type Panel<'a> = (&'a str, f64, Box<dyn Fn(&Row) -> f64>);
    let panels: [Panel; 2] = [
        (
            "success within 120 s",
            1.0,
            Box::new(|r: &Row| r.success_rate()),
        ),
        (
            "wasted sends per logical call",
            max_wasted,
            Box::new(|r: &Row| r.wasted_per_call),
        ),
    ];
    for (p, (title, max, value)) in panels.iter().enumerate() {
        let top = 30.0 + p as f64 * (panel + 40.0);
        let _ = writeln!(
            s,
            r#"<text x="10" y="{:.0}" font-size="13" font-weight="bold">{title}</text>"#,
            top - 10.0
        );
        let _ = writeln!(
            s,
            r#"<line x1="70" y1="{:.0}" x2="{:.0}" y2="{:.0}" stroke="black"/>"#,
            top + panel,
            width - 10.0,
            top + panel
        );
        for tick in 0..=4 {
            let y = top + panel - panel * tick as f64 / 4.0;
            let label = if p == 0 {
                format!("{}%", tick * 25)
            } else {
                format!("{:.1}", max * tick as f64 / 4.0)
            };
            let _ = writeln!(
                s,
                r##"<text x="64" y="{:.0}" text-anchor="end">{label}</text><line x1="70" y1="{y:.0}" x2="{:.0}" y2="{y:.0}" stroke="#ddd"/>"##,
                y + 4.0,
                width - 10.0
            );
        }
        for (i, f) in families.iter().enumerate() {
            let x0 = 80.0 + group * i as f64;
            for (j, r) in f.rows.iter().enumerate() {
                let h = panel * (value(r) / max).clamp(0.0, 1.0);
                let _ = writeln!(
                    s,
                    r#"<rect x="{:.1}" y="{:.1}" width="12" height="{h:.1}" fill="{}"><title>{} {}: {:.3}</title></rect>"#,
                    x0 + 14.0 * j as f64,
                    top + panel - h,
                    COLORS[j % COLORS.len()],
                    f.family,
                    r.policy,
                    value(r)
                );
            }
            if p == 1 {
                let _ = writeln!(
                    s,
                    r#"<text transform="translate({:.0},{:.0}) rotate(35)">{}</text>"#,
                    x0,
                    top + panel + 14.0,
                    f.family
                );
            }
        }
    }
    let legend_y = height - 24.0;
    for (j, name) in policies.iter().enumerate() {
        let x = 20.0 + 115.0 * j as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{x:.0}" y="{:.0}" width="12" height="12" fill="{}"/><text x="{:.0}" y="{:.0}">{name}</text>"#,
            legend_y - 10.0,
            COLORS[j % COLORS.len()],
            x + 16.0,
            legend_y
        );
    }
    s.push_str("</svg>\n");
    s
}
