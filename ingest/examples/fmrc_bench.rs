//! Cost of one `update_model_run` against the length of the history
//! (issue 17). Not a test: prints a table. Run by `bench/fmrc_bench.sh`.
//!
//! For each history length (default 1, 10, 100 days of dbofs, 4 cycles a
//! day, f001-f006: 24 synthetic references a day, no NetCDF files, time
//! values inlined, `FMRC_BENCH_VARS` 4-d variables each), in a fresh local
//! store: the references and their aggregates are created by `rebuild`,
//! then the next cycle's six forecast hours arrive one by one and each is
//! updated, incrementally (what `update_model_run` does) and, on a copy,
//! from scratch (`Mode::Full`: list, GET every member, combine every
//! member, which is what every update did before). Wall time per update
//! (median of the six) and store requests per update (through a counting
//! wrapper). `FMRC_BENCH_STORE=local`: a local-directory store (which
//! hashes every object it reads and writes) instead of the default
//! in-memory store with S3's conditional-write semantics.

#[path = "../tests/support/synthetic.rs"]
mod synthetic;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ingest::config::{Config, Pipeline};
use ingest::fmrc_update::Mode;
use ingest::steps::{self, BestMode};
use ingest::store::{LocalStore, ObjectStore, PutCondition, StoreUrl};
use synthetic::{Counting, Counts, Memory, members};

struct Row {
    days: u32,
    refs: usize,
    best_bytes: usize,
    inc_ms: f64,
    inc_req: String,
    full_ms: f64,
    full_req: String,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn measure(days: u32, nvars: usize, mode: Mode) -> (f64, String, usize) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("dest");
    let p = Pipeline::new(Config {
        dest_override: Some(StoreUrl::Local { dir: dir.clone() }),
        ..Config::default()
    });
    let store: Arc<dyn ObjectStore> = if std::env::var("FMRC_BENCH_STORE").as_deref() == Ok("local")
    {
        Arc::new(LocalStore::new(&dir).expect("store"))
    } else {
        Arc::new(Memory::default())
    };
    for m in members(0, days, 6, false, nvars) {
        store
            .put(&m.key, Bytes::from(m.json), PutCondition::None)
            .await
            .expect("put");
    }
    ingest::rebuild::run(&p, &*store, "nos")
        .await
        .expect("rebuild");
    let counts = Arc::new(Counts::default());
    let counting = Counting {
        inner: store.clone(),
        counts: counts.clone(),
    };
    let next = members(days, 1, 6, false, nvars);
    let mut walls = Vec::new();
    let mut reqs = Vec::new();
    for m in next.iter().filter(|m| m.cycle == next[0].cycle) {
        store
            .put(&m.key, Bytes::from(m.json.clone()), PutCondition::None)
            .await
            .expect("put");
        counts.reset();
        let t = Instant::now();
        let out = steps::aggregates(&p, &counting, &m.key, true, BestMode::IfMember, mode)
            .await
            .expect("update");
        walls.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(out.written.len(), 2, "{out:?}");
        reqs.push((counts.total(), counts.summary()));
    }
    let best = store
        .get("nos/nos.dbofs.fields.best.nc.zarr")
        .await
        .expect("best")
        .0
        .len();
    // Requests per update: one value, or the range over the six.
    reqs.sort();
    reqs.dedup();
    let req = match (reqs.first(), reqs.last()) {
        (Some(a), Some(b)) if a == b => format!("{} ({})", a.0, a.1),
        (Some(a), Some(b)) => format!("{}-{} ({} .. {})", a.0, b.0, a.1, b.1),
        _ => String::new(),
    };
    (median(&mut walls), req, best)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let days: Vec<u32> = std::env::var("FMRC_BENCH_DAYS")
        .unwrap_or_else(|_| "1,10,100".into())
        .split(',')
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    let nvars: usize = std::env::var("FMRC_BENCH_VARS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let mut rows = Vec::new();
    for &d in &days {
        let (inc_ms, inc_req, best_bytes) = measure(d, nvars, Mode::Incremental).await;
        let (full_ms, full_req, _) = measure(d, nvars, Mode::Full).await;
        eprintln!("{d} days: incremental {inc_ms:.1} ms, from scratch {full_ms:.1} ms");
        rows.push(Row {
            days: d,
            refs: d as usize * 24,
            best_bytes,
            inc_ms,
            inc_req,
            full_ms,
            full_req,
        });
    }
    println!(
        "| history | references | best series JSON | update, incremental: wall (median of 6) | store requests per update | from scratch (previous algorithm): wall | store requests |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} days | {} | {:.2} MB | {:.1} ms | {} | {:.1} ms | {} |",
            r.days,
            r.refs,
            r.best_bytes as f64 / 1e6,
            r.inc_ms,
            r.inc_req,
            r.full_ms,
            r.full_req
        );
    }
    if let (Some(a), Some(b)) = (rows.first(), rows.get(1)) {
        println!(
            "\nincremental: {} days / {} day = {:.2}x; from scratch: {:.2}x",
            b.days,
            a.days,
            b.inc_ms / a.inc_ms,
            b.full_ms / a.full_ms
        );
    }
}
