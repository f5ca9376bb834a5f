//! Replays `fuzz/regressions/netcdf3/` through the `netcdf3` fuzz harness
//! (`fuzz/harness/netcdf3.rs`, included below) on stable `cargo test`: no
//! panic, every error names the file. The hand-made hostile headers there
//! must fail with an error naming the field at fault.

#[path = "../../fuzz/harness/netcdf3.rs"]
mod harness;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

#[test]
fn netcdf3_regressions_fail_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/netcdf3");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .expect("fuzz/regressions/netcdf3 exists")
        .flatten()
        .map(|e| e.path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 10);
    let rt = harness::runtime();
    // file name -> what the error must say
    let expect = [
        (
            "dimension_count_2_31.nc",
            "truncated in dimension #0 name length",
        ),
        (
            "attribute_values_2_61_cdf5.nc",
            "global attribute 'a' values: 2305843009213693952 values overflow",
        ),
        (
            "numrecs_huge.nc",
            "numrecs: 2147483646 records exceed the limit",
        ),
        (
            "record_dimension_not_first.nc",
            "is not its first dimension",
        ),
        (
            "dimid_out_of_range.nc",
            "variable 'v' dimid #0: 7 is not one of the 1 dimensions",
        ),
        ("two_record_dimensions.nc", "more than one record dimension"),
        ("size_overflow.nc", "variable 'v': size overflows 64 bits"),
        ("streaming_numrecs.nc", "streaming"),
        (
            "cdf5_type_in_classic.nc",
            "variable 'v' type: unknown type 11",
        ),
        (
            "list_tag_wrong.nc",
            "header at 0x8: dimension list: tag 0xb",
        ),
    ];
    for p in &cases {
        let data = std::fs::read(p).expect("read");
        let r = catch_unwind(AssertUnwindSafe(|| harness::netcdf3(&rt, &data)));
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let Ok(result) = r else {
            panic!("{name} panicked")
        };
        if let Some((_, want)) = expect.iter().find(|(n, _)| *n == name) {
            let msg = result.expect_err(name);
            assert!(msg.contains(want), "{name}: {msg}");
        }
    }
}
