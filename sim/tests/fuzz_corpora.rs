//! Replays every committed fuzz corpus file (`fuzz/corpus/<target>/`) and every crash
//! regression (`sim/tests/regressions/<target>/`) through the same entry functions the
//! cargo-fuzz targets call, so CI checks them with a stable toolchain and no cargo-fuzz.

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str, entry: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for dir in [
        root.join("../fuzz/corpus").join(target),
        root.join("tests/regressions").join(target),
    ] {
        for file in files(&dir) {
            let data = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| entry(&data));
            assert!(
                outcome.is_ok(),
                "{target}: {} fails; reproduce with `cargo fuzz run -s none {target} {}`",
                file.display(),
                file.display()
            );
            count += 1;
        }
    }
    count
}

#[test]
fn classify_corpus() {
    assert!(
        replay("classify", relent_sim::fuzz::fuzz_classify) > 0,
        "no classify corpus committed"
    );
}

#[test]
fn hints_corpus() {
    assert!(
        replay("hints", relent_sim::fuzz::fuzz_hints) > 0,
        "no hints corpus committed"
    );
}

#[test]
fn machine_corpus() {
    assert!(
        replay("machine", relent_sim::fuzz::fuzz_machine) > 0,
        "no machine corpus committed"
    );
}

#[test]
fn world_corpus() {
    assert!(
        replay("world", relent_sim::fuzz::fuzz_world) > 0,
        "no world corpus committed"
    );
}

#[test]
fn redact_corpus() {
    assert!(
        replay("redact", relent_sim::fuzz::fuzz_redact) > 0,
        "no redact corpus committed"
    );
}
