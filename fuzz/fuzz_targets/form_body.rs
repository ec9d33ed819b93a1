#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reclaim_tests::fuzz::form_body(data));
