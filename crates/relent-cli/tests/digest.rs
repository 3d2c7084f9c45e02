//! Determinism across processes (invariant 7): the same seeds, run by two separate `relent`
//! processes with different thread counts, print the same digest of every step of every
//! world; a different seed range prints a different one, so the comparison can fail.

use std::process::Command;

fn digest(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_relent"))
        .args(["sim", "--json", "--determinism-every", "0"])
        .args(args)
        .output()
        .expect("relent runs");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "relent sim --json printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let digest = summary["digest"].as_str().expect("a digest").to_string();
    assert_eq!(digest.len(), 16, "{digest}");
    digest
}

#[test]
fn two_processes_agree_on_the_digest_of_the_same_seeds() {
    let one = digest(&["--seeds", "3000", "--jobs", "1"]);
    let two = digest(&["--seeds", "3000", "--jobs", "2"]);
    assert_eq!(
        one, two,
        "the same seeds gave different steps in another process"
    );
    let other = digest(&["--seeds", "3000", "--start", "1", "--jobs", "1"]);
    assert_ne!(one, other, "the digest does not depend on the worlds run");
}
