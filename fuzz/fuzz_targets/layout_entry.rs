#![no_main]
//! `layout_entry` fuzz target; the body is in `fuzz/harness/` (shared with
//! the regression tests in `hdf5-lite/tests/fuzz_regressions.rs`).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kerchunk_nos_fuzz::hdf5::layout_entry(data));
