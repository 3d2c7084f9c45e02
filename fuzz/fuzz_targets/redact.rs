#![no_main]
//! cargo-fuzz target `redact`: see `relent_sim::fuzz::fuzz_redact`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| relent_sim::fuzz::fuzz_redact(data));
