#![no_main]
//! cargo-fuzz target `hints`: see `relent_sim::fuzzing::fuzz_hints`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| relent_sim::fuzzing::fuzz_hints(data));
