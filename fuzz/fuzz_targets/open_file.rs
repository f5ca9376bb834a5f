#![no_main]
//! `open_file` fuzz target; the body is in `fuzz/harness/` (shared with the
//! regression tests in `hdf5-lite/tests/fuzz_regressions.rs`).
use libfuzzer_sys::fuzz_target;

thread_local! {
    static RT: tokio::runtime::Runtime = kerchunk_nos_fuzz::hdf5::runtime();
}

fuzz_target!(|data: &[u8]| {
    RT.with(|rt| {
        let _ = kerchunk_nos_fuzz::hdf5::open_file(rt, data);
    })
});
