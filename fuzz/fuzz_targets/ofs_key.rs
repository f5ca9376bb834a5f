#![no_main]
//! `ofs_key` fuzz target; the body is in `fuzz/harness/` (shared with the
//! regression tests in `ingest/tests/fuzz_regressions.rs`).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerchunk_nos_fuzz::ingest::ofs_key(data));
