#![no_main]
//! cargo-fuzz target `hints`: see `relent_sim::fuzz::fuzz_hints`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| relent_sim::fuzz::fuzz_hints(data));
