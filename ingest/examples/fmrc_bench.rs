//! Cost of one `update_model_run` against the length of the history
//! (issue 17). Not a test: prints a table. Run by `bench/fmrc_bench.sh`.
//!
//! For each history length (default 1, 10, 100 days of dbofs, 4 cycles a
//! day, f001-f006: 24 synthetic references a day, no NetCDF files, time
//! values inlined, `FMRC_BENCH_VARS` 4-d variables each) one store is
//! prepared: the references and their aggregates are created by `rebuild`
//! and the store's state is kept. A *round* then delivers the next cycle's
//! six forecast hours one by one, updating after each (what
//! `update_model_run` does), and puts the store back to the kept state.
//! Rounds of the history lengths are interleaved (`FMRC_BENCH_ROUNDS`,
//! default 8, each starting with another length), so a change of machine
//! load hits every length alike; each length gets `6 x rounds` samples,
//! reported as median and p25-p75. Wall time is split into the time spent
//! inside the store's calls (through a counting wrapper that also counts
//! requests) and the rest (compute). `FMRC_BENCH_FULL_ROUNDS` (default 1)
//! rounds measure the previous algorithm (`Mode::Full`: list, GET every
//! member, combine every member) the same way.
//!
//! `FMRC_BENCH_STORE=local`: a local-directory store instead of the
//! default in-memory store with S3's conditional-write semantics.
//!
//! `FMRC_BENCH_CLI=<path of kerchunk-nos>`: what issue 17 measured, the
//! command `kerchunk-nos update_model_run MESSAGE --dest file://DIR` run as
//! a process per update on the local-directory store (wall time of the
//! process: start, reading the store, the update, writing; no request
//! counts). The from-scratch rounds are skipped.

#[path = "../tests/support/synthetic.rs"]
mod synthetic;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ingest::config::{Config, Pipeline};
use ingest::fmrc_update::Mode;
use ingest::steps::{self, BestMode};
use ingest::store::{LocalStore, ObjectStore, PutCondition, StoreUrl};
use synthetic::{Counting, Counts, Member, Memory, members};

const BEST: &str = "nos/nos.dbofs.fields.best.nc.zarr";

/// A store's state to go back to after a round.
enum Snapshot {
    Memory(Arc<Memory>, BTreeMap<String, (Bytes, String)>),
    /// The files there were, and the content of every one of them a round
    /// may rewrite (aggregates and indexes: everything but the references).
    Local {
        root: PathBuf,
        files: HashSet<PathBuf>,
        saved: Vec<(PathBuf, Vec<u8>)>,
    },
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The `kerchunk-nos` binary of `FMRC_BENCH_CLI`, if set.
fn cli_bin() -> Option<PathBuf> {
    std::env::var_os("FMRC_BENCH_CLI").map(PathBuf::from)
}

/// An S3 event naming `key` in the local store `dir` (bucket = its name).
fn s3_event(dir: &Path, key: &str) -> String {
    let bucket = dir.file_name().and_then(|n| n.to_str()).unwrap_or("dest");
    format!(
        r#"{{"Records":[{{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put","eventTime":"2023-01-01T00:00:00.000Z","s3":{{"bucket":{{"name":"{bucket}"}},"object":{{"key":"{key}","size":1}}}}}}]}}"#
    )
}

struct Setup {
    days: u32,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
    p: Pipeline,
    store: Arc<dyn ObjectStore>,
    snapshot: Snapshot,
    next: Vec<Member>,
    best_bytes: usize,
}

#[derive(Default)]
struct Samples {
    wall: Vec<f64>,
    store: Vec<f64>,
    compute: Vec<f64>,
    reqs: Vec<(u64, String)>,
}

async fn setup(days: u32, nvars: usize) -> Setup {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("dest");
    let p = Pipeline::new(Config {
        dest_override: Some(StoreUrl::Local { dir: dir.clone() }),
        ..Config::default()
    });
    let local = std::env::var("FMRC_BENCH_STORE").as_deref() == Ok("local") || cli_bin().is_some();
    let mem = Arc::new(Memory::default());
    let store: Arc<dyn ObjectStore> = if local {
        std::fs::create_dir_all(&dir).expect("dir");
        Arc::new(LocalStore::new(&dir).expect("store"))
    } else {
        mem.clone()
    };
    let history = members(0, days, 6, false, nvars);
    for m in &history {
        store
            .put(&m.key, Bytes::from(m.json.clone()), PutCondition::None)
            .await
            .expect("put");
    }
    ingest::rebuild::run(&p, &*store, "nos")
        .await
        .expect("rebuild");
    let snapshot = if local {
        let refs: HashSet<PathBuf> = history.iter().map(|m| dir.join(&m.key)).collect();
        let mut all = Vec::new();
        files(&dir, &mut all);
        let saved = all
            .iter()
            .filter(|f| !refs.contains(*f))
            .map(|f| (f.clone(), std::fs::read(f).expect("read")))
            .collect();
        Snapshot::Local {
            root: dir.clone(),
            files: all.into_iter().collect(),
            saved,
        }
    } else {
        Snapshot::Memory(mem.clone(), mem.snapshot())
    };
    let best_bytes = store.get(BEST).await.expect("best").0.len();
    let next = members(days, 1, 6, false, nvars);
    let c0 = next[0].cycle;
    let next = next.into_iter().filter(|m| m.cycle == c0).collect();
    Setup {
        days,
        dir,
        _tmp: tmp,
        p,
        store,
        snapshot,
        next,
        best_bytes,
    }
}

impl Setup {
    /// The next cycle's six updates, then back to the kept state.
    async fn round(&self, mode: Mode, out: &mut Samples) {
        let counts = Arc::new(Counts::default());
        let counting = Counting {
            inner: self.store.clone(),
            counts: counts.clone(),
        };
        for m in &self.next {
            self.store
                .put(&m.key, Bytes::from(m.json.clone()), PutCondition::None)
                .await
                .expect("put");
            counts.reset();
            if let Some(bin) = cli_bin() {
                let t = Instant::now();
                let st = std::process::Command::new(&bin)
                    .arg("update_model_run")
                    .arg(s3_event(&self.dir, &m.key))
                    .arg("--dest")
                    .arg(format!("file://{}", self.dir.display()))
                    .output()
                    .expect("run kerchunk-nos");
                let wall = t.elapsed().as_secs_f64() * 1000.0;
                assert!(
                    st.status.success(),
                    "{} update_model_run: {}\n{}",
                    bin.display(),
                    st.status,
                    String::from_utf8_lossy(&st.stderr)
                );
                // Both aggregates written (the report names them).
                let report = String::from_utf8_lossy(&st.stdout);
                assert!(
                    report.contains(BEST.rsplit('/').next().unwrap_or(BEST)),
                    "{report}"
                );
                out.wall.push(wall);
                continue;
            }
            let t = Instant::now();
            let done =
                steps::aggregates(&self.p, &counting, &m.key, true, BestMode::IfMember, mode)
                    .await
                    .expect("update");
            let wall = t.elapsed().as_secs_f64() * 1000.0;
            assert_eq!(done.written.len(), 2, "{done:?}");
            let store = counts.store_ms();
            out.wall.push(wall);
            out.store.push(store);
            out.compute.push(wall - store);
            out.reqs.push((counts.total(), counts.summary()));
        }
        match &self.snapshot {
            Snapshot::Memory(mem, snap) => mem.restore(snap.clone()),
            Snapshot::Local {
                root,
                files: before,
                saved,
            } => {
                let mut now = Vec::new();
                files(root, &mut now);
                for f in now.iter().filter(|f| !before.contains(*f)) {
                    std::fs::remove_file(f).expect("remove");
                }
                for (f, body) in saved {
                    if std::fs::read(f).ok().as_ref() != Some(body) {
                        std::fs::write(f, body).expect("restore");
                    }
                }
            }
        }
    }
}

/// The `q` quantile (nearest rank) of `v`.
fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let i = ((s.len().saturating_sub(1)) as f64 * q).round() as usize;
    s.get(i).copied().unwrap_or(f64::NAN)
}

fn spread(v: &[f64]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    format!(
        "{:.1} ({:.1}-{:.1})",
        quantile(v, 0.5),
        quantile(v, 0.25),
        quantile(v, 0.75)
    )
}

/// Requests per update: one value, or the range over the samples.
fn reqs(v: &[(u64, String)]) -> String {
    let mut r = v.to_vec();
    r.sort();
    r.dedup();
    match (r.first(), r.last()) {
        (Some(a), Some(b)) if a == b => format!("{} ({})", a.0, a.1),
        (Some(a), Some(b)) => format!("{}-{} ({} .. {})", a.0, b.0, a.1, b.1),
        _ => String::new(),
    }
}

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let days: Vec<u32> = std::env::var("FMRC_BENCH_DAYS")
        .unwrap_or_else(|_| "1,10,100".into())
        .split(',')
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    let nvars = env_num("FMRC_BENCH_VARS", 40);
    let rounds = env_num("FMRC_BENCH_ROUNDS", 8);
    let full_rounds = if cli_bin().is_some() {
        0
    } else {
        env_num("FMRC_BENCH_FULL_ROUNDS", 1)
    };
    let mut setups = Vec::new();
    for &d in &days {
        let t = Instant::now();
        setups.push(setup(d, nvars).await);
        eprintln!("{d} days prepared in {:.1} s", t.elapsed().as_secs_f64());
    }
    let mut inc: Vec<Samples> = setups.iter().map(|_| Samples::default()).collect();
    let mut full: Vec<Samples> = setups.iter().map(|_| Samples::default()).collect();
    let n = setups.len();
    for (mode, rounds, out) in [
        (Mode::Incremental, rounds, &mut inc),
        (Mode::Full, full_rounds, &mut full),
    ] {
        for r in 0..rounds {
            for j in 0..n {
                let i = (r + j) % n;
                setups[i].round(mode, &mut out[i]).await;
            }
            eprintln!("{mode:?} round {} of {rounds} done", r + 1);
        }
    }
    println!(
        "{} rounds x 6 updates per history length (incremental), {} (from scratch); median (p25-p75), ms{}",
        rounds,
        full_rounds,
        match cli_bin() {
            Some(b) => format!(
                "; CLI process per update ({} update_model_run --dest file://...)",
                b.display()
            ),
            None => String::new(),
        }
    );
    println!(
        "| history | references | best series JSON | incremental: wall | in store | compute | store requests per update | from scratch (previous algorithm): wall | store requests |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for ((s, a), b) in setups.iter().zip(&inc).zip(&full) {
        println!(
            "| {} days | {} | {:.2} MB | {} | {} | {} | {} | {} | {} |",
            s.days,
            s.days as usize * 24,
            s.best_bytes as f64 / 1e6,
            spread(&a.wall),
            spread(&a.store),
            spread(&a.compute),
            reqs(&a.reqs),
            if b.wall.is_empty() {
                "-".into()
            } else {
                spread(&b.wall)
            },
            reqs(&b.reqs),
        );
    }
    if let (Some(a), Some(b)) = (inc.first(), inc.get(1))
        && cli_bin().is_some()
    {
        println!(
            "\nCLI, {} days / {} day (medians): wall {:.2}x",
            setups[1].days,
            setups[0].days,
            quantile(&b.wall, 0.5) / quantile(&a.wall, 0.5)
        );
    } else if let (Some(a), Some(b)) = (inc.first(), inc.get(1)) {
        let r = |f: fn(&Samples) -> &Vec<f64>| quantile(f(b), 0.5) / quantile(f(a), 0.5);
        println!(
            "\nincremental, {} days / {} day (medians): wall {:.2}x, compute {:.2}x, store {:.2}x",
            setups[1].days,
            setups[0].days,
            r(|s| &s.wall),
            r(|s| &s.compute),
            r(|s| &s.store)
        );
    }
}
