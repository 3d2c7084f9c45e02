#![no_main]
//! cargo-fuzz target `world`: see `relent_sim::fuzzing::fuzz_world`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| relent_sim::fuzzing::fuzz_world(data));
