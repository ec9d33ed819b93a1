#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reclaim_tests::fuzz::json_candidates(data));
