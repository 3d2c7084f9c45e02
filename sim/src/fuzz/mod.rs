//! Fuzzing entry points, shared by the cargo-fuzz targets in `fuzz/` and by the ordinary
//! tests that replay the committed corpora (`sim/tests/fuzz_corpora.rs`), so CI needs no
//! nightly toolchain and no cargo-fuzz.
//!
//! Each entry takes raw bytes, decodes them with `arbitrary`, runs relent, and panics on any
//! broken property; a panic is what the fuzzer reports as a crash. One module per target:
//!
//! * [`classify`]: arbitrary responses into the classifier;
//! * [`hints`]: arbitrary text into every wait-hint parser;
//! * [`machine`]: arbitrary event sequences into one machine, checked by the simulator's
//!   one invariant checker ([`crate::invariants`]);
//! * [`redact`]: generated secrets planted in provider bodies, searched for in what the
//!   classifier returns, without asking the redactor;
//! * [`world`]: arbitrary fault worlds through the simulator's runner.

pub mod classify;
pub mod hints;
pub mod machine;
pub mod redact;
pub mod world;

pub use classify::fuzz_classify;
pub use hints::fuzz_hints;
pub use machine::{drive_machine, fuzz_machine, Op, RESPONSES};
pub use redact::fuzz_redact;
pub use world::fuzz_world;
