//! Benchmark helper for `bench/combine_bench.sh` (a benchmark, not a test):
//!
//!     COMBINE_BENCH_NC=file.nc COMBINE_BENCH_OUT=dir \
//!     cargo run --release -p kerchunk --example combine_bench
//!
//! Translates one ROMS file, clones its references N times (default 144)
//! with shifted `ocean_time` values (inline, chunk 1) and per-clone URLs,
//! writes the JSONs to `$COMBINE_BENCH_OUT/in/` (for MultiZarrToZarr on
//! the same inputs) and times, best of 7: parsing them (parallel, and on
//! one thread), `combine`, and parse + combine + serialise end to end
//! (what `kerchunk-nos combine` does after reading the files). Writes our
//! output to `ours.json` (default mode) and `ours_stack.json` (MZZ's
//! stacking of static arrays) for the script's comparison with MZZ.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use kerchunk::combine::{CombineOptions, StaticVars, combine, parse_inputs};
use kerchunk::{Ref, RefSet, TranslateOptions};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn best<T>(runs: usize, mut f: impl FnMut() -> Res<T>) -> Res<(f64, T)> {
    let mut best = f64::MAX;
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let v = f()?;
        best = best.min(t.elapsed().as_secs_f64());
        last = Some(v);
    }
    Ok((best, last.ok_or("no runs")?))
}

fn main() -> Res<()> {
    let nc = PathBuf::from(std::env::var("COMBINE_BENCH_NC")?);
    let out = PathBuf::from(std::env::var("COMBINE_BENCH_OUT")?);
    let n: usize = std::env::var("COMBINE_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(144);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let source: Arc<dyn hdf5_lite::RangeSource> = Arc::new(hdf5_lite::FileSource::new(&nc));
    let (file, _) = rt.block_on(hdf5_lite::open(
        source.clone(),
        &hdf5_lite::Options::default(),
    ))?;
    let base = rt
        .block_on(kerchunk::translate(
            &file,
            source.as_ref(),
            &TranslateOptions::new("file:///bench/base.nc"),
        ))?
        .refs;
    let in_dir = out.join("in");
    let _ = std::fs::remove_dir_all(&in_dir);
    std::fs::create_dir_all(&in_dir)?;
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
        std::fs::write(in_dir.join(format!("{i:03}.json")), &text)?;
        texts.push((format!("{i:03}.json"), text));
    }
    let in_bytes: usize = texts.iter().map(|(_, t)| t.len()).sum();
    let opts = CombineOptions::roms();

    let (parse_s, inputs) = best(7, || Ok(parse_inputs(&texts)?))?;
    let (parse_1t_s, _) = best(3, || {
        texts
            .iter()
            .map(|(n, t)| Ok((n.clone(), RefSet::from_json(t)?)))
            .collect::<Res<Vec<_>>>()
    })?;
    // the reader must give back exactly what was written
    for ((_, text), (name, set)) in texts.iter().zip(&inputs) {
        if set.to_json() != *text {
            return Err(format!("{name}: read + write is not the identity").into());
        }
    }
    let vars = base.refs.keys().filter(|k| k.ends_with("/.zarray")).count();
    let keys: usize = inputs.iter().map(|(_, s)| s.len()).sum();
    let (combine_s, c) = best(7, || Ok(combine(&inputs, &opts)?))?;
    let (write_s, json) = best(7, || Ok(c.to_json()))?;
    let (full_s, _) = best(7, || {
        let parsed = parse_inputs(&texts)?;
        Ok(combine(&parsed, &opts)?.to_json())
    })?;
    std::fs::write(out.join("ours.json"), &json)?;
    let mut stack = opts.clone();
    stack.static_vars = StaticVars::Stack;
    let (stack_s, cs) = best(7, || Ok(combine(&inputs, &stack)?))?;
    std::fs::write(out.join("ours_stack.json"), cs.to_json())?;
    println!(
        "RESULT inputs={n} vars={vars} input_keys={keys} in_mb={:.1} out_keys={} out_mb={:.2} stack_out_keys={} parse_s={parse_s:.4} parse_1thread_s={parse_1t_s:.4} combine_s={combine_s:.4} write_s={write_s:.4} parse_combine_write_s={full_s:.4} stack_combine_s={stack_s:.4} threads={}",
        in_bytes as f64 / 1e6,
        c.len(),
        json.len() as f64 / 1e6,
        cs.len(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    Ok(())
}
