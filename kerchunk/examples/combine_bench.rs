//! Benchmark helper for `bench/combine_bench.sh` (a benchmark, not a test):
//!
//!     COMBINE_BENCH_NC=file.nc COMBINE_BENCH_OUT=dir \
//!     cargo run --release -p kerchunk --example combine_bench
//!
//! Translates one ROMS file, clones its references 144 times with shifted
//! `ocean_time` values (inline, chunk 1) and per-clone URLs, writes the 144
//! JSONs to `$COMBINE_BENCH_OUT/in/` (for MultiZarrToZarr on the same
//! inputs) and times `combine` (best of 5) and parse + combine + serialise.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use kerchunk::combine::{CombineOptions, combine};
use kerchunk::{Ref, RefSet, TranslateOptions};

fn main() {
    let nc = PathBuf::from(std::env::var("COMBINE_BENCH_NC").expect("COMBINE_BENCH_NC"));
    let out = PathBuf::from(std::env::var("COMBINE_BENCH_OUT").expect("COMBINE_BENCH_OUT"));
    let n: usize = std::env::var("COMBINE_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(144);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let source: Arc<dyn hdf5_lite::RangeSource> = Arc::new(hdf5_lite::FileSource::new(&nc));
    let (file, _) = rt
        .block_on(hdf5_lite::open(
            source.clone(),
            &hdf5_lite::Options::default(),
        ))
        .unwrap();
    let base = rt
        .block_on(kerchunk::translate(
            &file,
            source.as_ref(),
            &TranslateOptions::new("file:///bench/base.nc"),
        ))
        .unwrap()
        .refs;
    let in_dir = out.join("in");
    let _ = std::fs::remove_dir_all(&in_dir);
    std::fs::create_dir_all(&in_dir).unwrap();
    let mut inputs = Vec::new();
    let mut texts = Vec::new();
    let t0 = 228_571_200.0f64; // 2023-03-30 in seconds since 2016-01-01
    for i in 0..n {
        let url = format!("file:///bench/nos.dbofs.fields.f{:03}.nc", i + 1);
        let mut s = RefSet::new();
        for (k, r) in &base.refs {
            let r = match r {
                Ref::Range { offset, length, .. } => Ref::Range {
                    url: url.clone(),
                    offset: *offset,
                    length: *length,
                },
                other => other.clone(),
            };
            s.insert(k.clone(), r);
        }
        s.insert(
            "ocean_time/.zarray",
            Ref::Text(r#"{"chunks":[1],"compressor":null,"dtype":"<f8","fill_value":null,"filters":null,"order":"C","shape":[1],"zarr_format":2}"#.into()),
        );
        s.insert(
            "ocean_time/0",
            Ref::Binary((t0 + 3600.0 * i as f64).to_le_bytes().to_vec()),
        );
        let text = s.to_json();
        std::fs::write(in_dir.join(format!("{i:03}.json")), &text).unwrap();
        texts.push(text);
        inputs.push((format!("{i:03}.json"), s));
    }
    let vars = base.refs.keys().filter(|k| k.ends_with("/.zarray")).count();
    let keys: usize = inputs.iter().map(|(_, s)| s.len()).sum();
    let opts = CombineOptions::roms();
    let mut best = f64::MAX;
    let mut nkeys = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let c = combine(&inputs, &opts).unwrap();
        best = best.min(t.elapsed().as_secs_f64());
        nkeys = c.len();
    }
    let mut best_full = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let parsed: Vec<(String, RefSet)> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| (i.to_string(), RefSet::from_json(t).unwrap()))
            .collect();
        let c = combine(&parsed, &opts).unwrap();
        let json = c.to_json();
        best_full = best_full.min(t.elapsed().as_secs_f64());
        std::fs::write(out.join("ours.json"), json).unwrap();
    }
    let mut stack = opts.clone();
    stack.static_vars = kerchunk::combine::StaticVars::Stack;
    let t = Instant::now();
    let cs = combine(&inputs, &stack).unwrap();
    let stack_s = t.elapsed().as_secs_f64();
    println!(
        "RESULT inputs={n} vars={vars} input_keys={keys} out_keys={nkeys} combine_s={best:.4} parse_combine_write_s={best_full:.4} stack_mode_s={stack_s:.4} stack_out_keys={}",
        cs.len()
    );
}
