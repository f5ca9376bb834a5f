//! Warm runs: a sibling's layout (hdf5_lite::layout_cache) changes which
//! bytes are fetched when, never the reference set. The cold reference set
//! of each file is the oracle (itself checked against kerchunk and h5py by
//! the fixture tests); the warm one must be byte-identical to it, for a
//! true sibling's layout, a foreign file's layout and garbage layouts.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hdf5_lite::layout_cache::LayoutCache;
use hdf5_lite::{FileSource, Options, RangeSource, Stats};
use kerchunk::TranslateOptions;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/layout-siblings")
        .join(name)
}

const F002: &str = "dbofs.t06z.20250601.fields.f002.nc";
const F003: &str = "dbofs.t06z.20250601.fields.f003.nc";

/// `refs` as the CLI runs it: walk with data prefetch, translate from the
/// prefetched source. Returns the JSON, the whole run's counters (walk plus
/// what translate still fetched) and the ranges to remember.
fn refs(path: &Path, predicted: Vec<Range<u64>>) -> (String, Stats, Vec<Range<u64>>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let src: Arc<dyn RangeSource> = Arc::new(FileSource::new(path));
        let opts = Options {
            prefetch_below: 500,
            predicted,
            ..Default::default()
        };
        let (file, mut st, pre) = hdf5_lite::open_prefetched(src, &opts).await.unwrap();
        let t = kerchunk::translate(&file, &*pre, &TranslateOptions::new("file://x".to_string()))
            .await
            .unwrap();
        let m = pre.miss_stats();
        st.waves += m.waves;
        st.requests += m.requests;
        (t.to_json(), st, pre.layout_ranges())
    })
}

#[test]
fn a_sibling_layout_gives_the_same_refs_in_one_wave() {
    let (_, cold_a, layout) = refs(&data(F002), vec![]);
    let (cold, cold_st, _) = refs(&data(F003), vec![]);
    let (warm, warm_st, _) = refs(&data(F003), layout);
    assert_eq!(warm, cold, "warm refs differ from cold refs");
    assert!(
        cold_a.waves > 1 && cold_st.waves > 1,
        "cold runs: {cold_st:?}"
    );
    assert_eq!(warm_st.waves, 1, "warm run: {warm_st:?}");
}

#[test]
fn foreign_and_garbage_layouts_change_nothing() {
    let (cold, _, _) = refs(&data(F003), vec![]);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/files");
    let (_, _, foreign) = refs(&root.join("netcdf4_features.nc"), vec![]);
    #[allow(clippy::reversed_empty_ranges)]
    let garbage = vec![
        0..1,
        5..3, // reversed
        1 << 40..(1 << 40) + 4096,
        u64::MAX - 10..u64::MAX,
        100..200,
        150..170,
        300_000..400_000,
    ];
    for (what, layout) in [("foreign", foreign), ("garbage", garbage)] {
        let (warm, st, _) = refs(&data(F003), layout);
        assert_eq!(warm, cold, "{what} layout changed the refs");
        assert!(st.waves >= 1);
    }
}

#[test]
fn the_cache_directory_round_trips_and_survives_corruption() {
    let dir = std::env::temp_dir().join(format!("knos-layout-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cache = LayoutCache::new(&dir);
    let a = data(F002).display().to_string();
    let b = data(F003).display().to_string();
    assert!(cache.predict(&b).is_empty(), "empty cache predicts nothing");
    let (_, _, layout) = refs(&data(F002), vec![]);
    cache.remember(&a, 304_268, &layout);
    assert_eq!(cache.predict(&b), layout, "the sibling's layout is found");
    let (cold, _, _) = refs(&data(F003), vec![]);
    // Corrupt every entry in place: ignored, the run is cold and identical.
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap();
        std::fs::write(e.path(), text.replace(' ', "x")).unwrap();
    }
    assert!(cache.predict(&b).is_empty(), "a corrupt entry is ignored");
    let (warm, _, _) = refs(&data(F003), cache.predict(&b));
    assert_eq!(warm, cold);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Hour `h` of the compressed series (deflate+shuffle copies of small dbofs
/// f001-f003).
fn zdata(h: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/layout-siblings-zlib")
        .join(format!("dbofs.t06z.20250601.fields.{h}.nc"))
}

/// Total bytes of a layout.
fn bytes_of(layout: &[Range<u64>]) -> u64 {
    layout.iter().map(|r| r.end - r.start).sum()
}

/// A compressed series (deflate+shuffle copies of small dbofs f001-f003,
/// made with netCDF4-python like `bench/bench.py`'s zlib copies): chunk
/// sizes differ between siblings, so chunk indexes and chunks sit at other
/// addresses in each file and a prediction is partly wrong. Each file is
/// indexed warm from the layout its predecessor stored, as a series is in
/// production, twice round. What a run stores must be what that file used,
/// not the prediction plus what it used (which grew with every file that
/// moved, until it passed the cache's size cap), and every warm output must
/// be the cold one.
#[test]
fn a_compressed_series_keeps_its_layout_bounded() {
    let (_, _, mut layout) = refs(&zdata("f001"), vec![]);
    #[allow(clippy::single_range_in_vec_init)] // one range: the whole file
    let whole_file = |h: &str| {
        let n = std::fs::metadata(zdata(h)).unwrap().len();
        vec![0..n]
    };
    // The last prediction is the whole file: all of it is fetched in the
    // first wave, and none of it that was not used may be stored.
    let chain = ["f002", "f003", "f001", "f002", "f003", "f001"];
    for (n, h) in chain.into_iter().enumerate() {
        if n + 1 == chain.len() {
            layout = whole_file(h);
        }
        let (cold, _, cold_layout) = refs(&zdata(h), vec![]);
        let (warm, _, warm_layout) = refs(&zdata(h), layout);
        assert_eq!(warm, cold, "{h}: warm refs differ from cold refs");
        // About what this file used, whatever it was given (within 1%: a
        // probe is served as far as the cached bytes reach).
        let (w, c) = (bytes_of(&warm_layout), bytes_of(&cold_layout));
        assert!(
            w <= c * 101 / 100,
            "{h}: stored layout of {w} bytes, {c} cold"
        );
        layout = warm_layout;
    }
}

/// The same compressed series in its steady state, as the cache keeps it:
/// f001 cold, f002 warm from f001's entry (which records how far f002's
/// structures moved: the series' drift), f003 warm from f002's entry,
/// widened by that drift. Sizes differ by ~100 bytes between these files, so
/// the unwidened prediction misses what moved and the walk fetches it in
/// later waves; widened, everything is in the first wave. Every warm output
/// is the cold one.
#[test]
fn a_compressed_series_is_predicted_within_its_drift() {
    use hdf5_lite::layout_cache::Entry;
    let (_, cold1, r1) = refs(&zdata("f001"), vec![]);
    let e1 = Entry::after(None, cold1.file_size, r1);
    assert_eq!(e1.drift, 0, "a cold run has seen nothing move");
    let (_, warm2, r2) = refs(&zdata("f002"), e1.first_wave(None));
    let e2 = Entry::after(Some(&e1), warm2.file_size, r2);
    assert!(
        e2.drift > 0 && e2.drift < 4096,
        "f002 moved against f001 by a little: drift {}",
        e2.drift
    );
    let (cold3, cold_st, _) = refs(&zdata("f003"), vec![]);
    let (unwidened, unwidened_st, _) = refs(&zdata("f003"), e2.ranges.clone());
    let (widened, widened_st, _) = refs(&zdata("f003"), e2.first_wave(None));
    assert_eq!(unwidened, cold3, "warm refs differ from cold refs");
    assert_eq!(widened, cold3, "widened warm refs differ from cold refs");
    eprintln!(
        "f003: cold {} waves, unwidened {} ({} B), widened {} ({} B), drift {}",
        cold_st.waves,
        unwidened_st.waves,
        unwidened_st.bytes_fetched,
        widened_st.waves,
        widened_st.bytes_fetched,
        e2.drift
    );
    assert!(unwidened_st.waves > 1, "{unwidened_st:?}");
    assert_eq!(widened_st.waves, 1, "{widened_st:?}");
    // The widening costs bytes in proportion to the drift, not the file.
    assert!(
        widened_st.bytes_fetched
            <= unwidened_st.bytes_fetched + 2 * e2.margin(None) * e2.ranges.len() as u64,
        "{widened_st:?} vs {unwidened_st:?}"
    );
}

/// `refs --layout-cache DIR` over the compressed series, as the CLI runs it
/// (predict from the directory, walk, remember): the directory's entry
/// learns the series' drift from f002 and f003 is then warm in one wave,
/// with the cold references.
#[test]
fn the_cache_directory_learns_a_compressed_series_drift() {
    let dir = std::env::temp_dir().join(format!("knos-layout-drift-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cache = LayoutCache::new(&dir);
    let name = |h: &str| zdata(h).display().to_string();
    for h in ["f001", "f002"] {
        let (_, st, used) = refs(&zdata(h), cache.predict(&name(h)));
        cache.remember(&name(h), st.file_size, &used);
    }
    let entry = cache.load(&name("f003")).expect("an entry");
    assert!(entry.drift > 0, "f002 moved against f001: {entry:?}");
    let (cold, _, _) = refs(&zdata("f003"), vec![]);
    let (warm, st, _) = refs(&zdata("f003"), cache.predict(&name("f003")));
    assert_eq!(warm, cold, "warm refs differ from cold refs");
    assert_eq!(st.waves, 1, "{st:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
