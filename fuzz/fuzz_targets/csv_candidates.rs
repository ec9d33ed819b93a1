#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reclaim_tests::fuzz::csv_candidates(data));
