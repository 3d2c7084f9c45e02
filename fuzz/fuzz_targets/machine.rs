#![no_main]
//! cargo-fuzz target `machine`: see `relent_sim::fuzz::fuzz_machine`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| relent_sim::fuzz::fuzz_machine(data));
