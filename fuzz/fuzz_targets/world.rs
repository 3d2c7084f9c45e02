#![no_main]
//! cargo-fuzz target `world`: see `relent_sim::fuzz::fuzz_world`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| relent_sim::fuzz::fuzz_world(data));
