//! Users' own families: a schedule template, parameters drawn per seed, and an optional
//! sweep, loaded from a JSON file (format in `docs/cli.md`, examples in `sim/families/`).

use super::families::Family;
use crate::schedule::Schedule;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use serde_json::Value;

/// A family file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FamilyFile {
    /// The family's name.
    pub name: String,
    /// What it is.
    #[serde(default)]
    pub about: String,
    /// Worlds per family (the command line's `--seeds` when absent).
    #[serde(default)]
    pub seeds: Option<u64>,
    /// A schedule in the format of `docs/schedule-format.md`; its `seed` is replaced by each
    /// world's seed.
    pub template: Value,
    /// Values drawn per seed and written into the template.
    #[serde(default)]
    pub params: Vec<Param>,
    /// One family per value, written into the template before the per-seed parameters.
    #[serde(default)]
    pub sweep: Option<Sweep>,
}

/// A value drawn per seed.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    /// Where in the template, as a JSON pointer (`/faults/0/until_ms`).
    pub path: String,
    /// An integer drawn uniformly from `[min, max]`.
    #[serde(default)]
    pub range: Option<[u64; 2]>,
    /// One of these values, drawn uniformly.
    #[serde(default)]
    pub choices: Option<Vec<Value>>,
}

/// A parameter swept over values, one family per value.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// Where in the template, as a JSON pointer.
    pub path: String,
    /// The values.
    pub values: Vec<Value>,
}

fn set(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let slot = doc
        .pointer_mut(path)
        .ok_or_else(|| format!("the template has nothing at {path}"))?;
    *slot = value;
    Ok(())
}

fn label(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl FamilyFile {
    /// Parses a family file.
    pub fn parse(text: &str) -> Result<FamilyFile, String> {
        let file: FamilyFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        for p in &file.params {
            match (&p.range, &p.choices) {
                (Some([min, max]), None) if min <= max => {}
                (None, Some(c)) if !c.is_empty() => {}
                _ => {
                    return Err(format!(
                        "parameter {} needs either a range [min, max] or non-empty choices",
                        p.path
                    ))
                }
            }
        }
        // Every world must build: every sweep point with every choice of every parameter
        // (ranges are integers and always fit where one does).
        let points: Vec<Value> = match &file.sweep {
            None => vec![file.template.clone()],
            Some(sweep) => sweep
                .values
                .iter()
                .map(|v| {
                    let mut doc = file.template.clone();
                    set(&mut doc, &sweep.path, v.clone()).map(|()| doc)
                })
                .collect::<Result<_, String>>()?,
        };
        for point in &points {
            Self::world(point, &file.params, 0)?;
            for p in &file.params {
                for choice in p.choices.iter().flatten() {
                    let mut doc = point.clone();
                    set(&mut doc, &p.path, choice.clone())?;
                    serde_json::from_value::<Schedule>(doc)
                        .map_err(|e| format!("{} = {choice}: {e}", p.path))?;
                }
            }
        }
        Ok(file)
    }

    fn world(template: &Value, params: &[Param], seed: u64) -> Result<Schedule, String> {
        let mut doc = template.clone();
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xf11e_0000_0000_0000);
        for p in params {
            let value = match (&p.range, &p.choices) {
                (Some([min, max]), _) => Value::from(min + rng.next_u64() % (max - min + 1)),
                (None, Some(choices)) => {
                    choices[(rng.next_u64() % choices.len() as u64) as usize].clone()
                }
                _ => unreachable!("checked in parse"),
            };
            set(&mut doc, &p.path, value)?;
        }
        let mut schedule: Schedule = serde_json::from_value(doc).map_err(|e| e.to_string())?;
        schedule.seed = seed;
        Ok(schedule)
    }

    /// The families this file describes: one, or one per sweep value.
    pub fn families(&self) -> Result<Vec<Family>, String> {
        let points: Vec<(String, Value)> = match &self.sweep {
            None => vec![(self.name.clone(), self.template.clone())],
            Some(sweep) => sweep
                .values
                .iter()
                .map(|v| {
                    let mut doc = self.template.clone();
                    set(&mut doc, &sweep.path, v.clone())?;
                    Ok((format!("{}-{}", self.name, label(v)), doc))
                })
                .collect::<Result<_, String>>()?,
        };
        points
            .into_iter()
            .map(|(name, template)| {
                let params = self.params.clone();
                // Fail now, not in the middle of a run.
                Self::world(&template, &params, 0)?;
                Ok(Family::new(name, self.about.clone(), move |seed| {
                    Self::world(&template, &params, seed).expect("checked when loaded")
                }))
            })
            .collect()
    }
}
