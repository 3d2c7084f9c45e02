#![no_main]
//! cargo-fuzz target `classify`: see `relent_sim::fuzz::fuzz_classify`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| relent_sim::fuzz::fuzz_classify(data));
