#![no_main]
//! `netcdf3` fuzz target; the body is in `fuzz/harness/netcdf3.rs` (shared
//! with the regression replay in `hdf5-lite/tests/netcdf3_fuzz_regressions.rs`).
use libfuzzer_sys::fuzz_target;

thread_local! {
    static RT: tokio::runtime::Runtime = kerchunk_nos_fuzz::netcdf3::runtime();
}

fuzz_target!(|data: &[u8]| {
    RT.with(|rt| {
        let _ = kerchunk_nos_fuzz::netcdf3::netcdf3(rt, data);
    })
});
