//! Paged-aggregation files: once the superblock extension's file space info
//! says "paged, 4096", every later read covers whole pages.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hdf5_lite::source::BoxFuture;
use hdf5_lite::{MemorySource, Options, RangeSource, SourceError};

/// A memory source that records every range it is asked for, per call.
struct Recording {
    inner: MemorySource,
    calls: Mutex<Vec<Vec<Range<u64>>>>,
}

impl RangeSource for Recording {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn get_ranges<'a>(
        &'a self,
        ranges: &'a [Range<u64>],
    ) -> BoxFuture<'a, Result<Vec<Bytes>, SourceError>> {
        if let Ok(mut c) = self.calls.lock() {
            c.push(ranges.to_vec());
        }
        self.inner.get_ranges(ranges)
    }
    fn size(&self) -> BoxFuture<'_, Result<u64, SourceError>> {
        self.inner.size()
    }
}

fn walk(path: &str, opts: &Options) -> (hdf5_lite::File, Vec<Vec<Range<u64>>>) {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/files")
        .join(path);
    let data = std::fs::read(&p).expect("fixture");
    let rec = Arc::new(Recording {
        inner: MemorySource::new(path, data),
        calls: Mutex::new(Vec::new()),
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let (f, _) = rt
        .block_on(hdf5_lite::open(rec.clone(), opts))
        .expect("opens");
    let calls = rec.calls.lock().expect("lock").clone();
    (f, calls)
}

fn small_reads() -> Options {
    Options {
        head_size: 1024,
        probe_size: 256,
        coalesce_gap: 0,
        // No speculative reads around structures: the reads seen are the
        // structures' own, widened to pages or not.
        header_lookbehind: 0,
        lookbehind: 0,
        ..Options::default()
    }
}

#[test]
fn reads_after_the_extension_are_whole_pages() {
    let (paged, calls) = walk("sb3_paged_file_space.h5", &small_reads());
    // Wave 1 is the head, which holds the superblock extension here; every
    // read after it must be whole pages.
    let later: Vec<&Range<u64>> = calls.iter().skip(1).flatten().collect();
    assert!(
        !later.is_empty(),
        "the walk should need more than the head: {calls:?}"
    );
    let size = std::fs::metadata(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/files/sb3_paged_file_space.h5"),
    )
    .expect("fixture")
    .len();
    for r in later {
        assert_eq!(r.start % 4096, 0, "{r:?} does not start on a page");
        assert!(
            r.end % 4096 == 0 || r.end == size,
            "{r:?} does not end on a page"
        );
    }
    // Same model as a walk with default options.
    let (default, _) = walk("sb3_paged_file_space.h5", &Options::default());
    assert_eq!(format!("{:?}", paged.root), format!("{:?}", default.root));
}

#[test]
fn unpaged_files_are_not_widened() {
    let (_, calls) = walk("sb3_datasets_all_types.h5", &small_reads());
    let widened = calls
        .iter()
        .skip(1)
        .flatten()
        .any(|r| r.end - r.start >= 4096 && r.start % 4096 == 0);
    assert!(
        !widened,
        "reads of an unpaged file were widened to pages: {calls:?}"
    );
}
