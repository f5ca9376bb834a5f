//! Incremental FMRC aggregates (issue 17) on local-directory stores, with
//! synthetic references (no NetCDF files, time values inlined):
//! * arrival in shuffled order with duplicates, one update per arrival,
//!   gives byte for byte what `rebuild` (the from-scratch path `backfill`
//!   also uses) writes for the same references, index included, with and
//!   without nowcasts (best-series replacements);
//! * the same with updates racing on threads;
//! * the store requests of an update do not grow with the history, and
//!   nothing is listed;
//! * a missing or corrupt member index is rebuilt from a listing.

#[path = "support/synthetic.rs"]
mod synthetic;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use ingest::config::{Config, Pipeline};
use ingest::store::{LocalStore, ObjectStore, PutCondition, StoreUrl};
use synthetic::{Counting, Counts, Member, members, shuffle};

struct Env {
    tmp: tempfile::TempDir,
    p: Arc<Pipeline>,
    store: Arc<dyn ObjectStore>,
}

fn env(nowcasts: bool) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dest");
    let config = Config {
        dest_override: Some(StoreUrl::Local { dir: dir.clone() }),
        include_nowcasts: nowcasts,
        ..Config::default()
    };
    Env {
        p: Arc::new(Pipeline::new(config)),
        store: Arc::new(LocalStore::new(&dir).unwrap()),
        tmp,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

async fn put(store: &dyn ObjectStore, m: &Member) {
    store
        .put(&m.key, Bytes::from(m.json.clone()), PutCondition::None)
        .await
        .unwrap();
}

/// Everything in the store that is not a member reference: aggregates and
/// member indexes.
async fn outputs(store: &dyn ObjectStore, refs: &[Member]) -> BTreeMap<String, Bytes> {
    let mut out = BTreeMap::new();
    for o in store.list("").await.unwrap() {
        if refs.iter().any(|m| m.key == o.key) {
            continue;
        }
        out.insert(o.key.clone(), store.get(&o.key).await.unwrap().0);
    }
    out
}

/// The outputs `rebuild` writes for `refs` in a fresh store.
async fn from_scratch(nowcasts: bool, refs: &[Member]) -> BTreeMap<String, Bytes> {
    let e = env(nowcasts);
    for m in refs {
        put(&*e.store, m).await;
    }
    let report = ingest::rebuild::run(&e.p, &*e.store, "nos").await.unwrap();
    assert!(!report.aggregates.is_empty());
    outputs(&*e.store, refs).await
}

fn arrivals(all: &[Member], seed: u64) -> Vec<Member> {
    let mut order = all.to_vec();
    shuffle(&mut order, seed);
    // Every 7th delivery is repeated later (at-least-once queues).
    let dups: Vec<Member> = order.iter().step_by(7).cloned().collect();
    for (i, d) in dups.into_iter().enumerate() {
        let at = (i * 13 + 5) % order.len();
        order.insert(at, d);
    }
    order
}

fn names(m: &BTreeMap<String, Bytes>) -> Vec<&str> {
    m.keys().map(String::as_str).collect()
}

#[test]
fn shuffled_arrival_with_duplicates_equals_rebuild() {
    for nowcasts in [false, true] {
        let all = members(0, 2, 9, true, 2);
        let e = env(nowcasts);
        rt().block_on(async {
            for m in arrivals(&all, 0x9e37_79b9 + nowcasts as u64) {
                put(&*e.store, &m).await;
                ingest::steps::update_for_ref(&e.p, &*e.store, &m.key)
                    .await
                    .unwrap();
            }
            let got = outputs(&*e.store, &all).await;
            let want = from_scratch(nowcasts, &all).await;
            assert_eq!(names(&got), names(&want), "nowcasts {nowcasts}");
            for (k, v) in &want {
                assert!(
                    got[k] == *v,
                    "{k} differs from the rebuild (nowcasts {nowcasts})"
                );
            }
            // 8 model runs, the best series, the index.
            assert_eq!(got.len(), 10, "{:?}", names(&got));
            // And `rebuild` over the incremental history changes nothing.
            let report = ingest::rebuild::run(&e.p, &*e.store, "nos").await.unwrap();
            assert!(report.aggregates.is_empty(), "{report:?}");
        });
    }
}

#[test]
fn concurrent_updates_on_threads_lose_no_member() {
    let all = members(0, 1, 9, true, 2);
    let e = Arc::new(env(true));
    rt().block_on(async {
        let order = arrivals(&all, 7);
        let mut tasks = Vec::new();
        for part in order.chunks(order.len().div_ceil(6)) {
            let (e, part) = (e.clone(), part.to_vec());
            tasks.push(tokio::spawn(async move {
                for m in part {
                    put(&*e.store, &m).await;
                    // Exit 3 after `max_rebuilds` refused writes is retried
                    // by the queue; so here.
                    let mut tries = 0;
                    loop {
                        match ingest::steps::update_for_ref(&e.p, &*e.store, &m.key).await {
                            Ok(_) => break,
                            Err(err) if err.is_transient() && tries < 20 => tries += 1,
                            Err(err) => panic!("{}: {err}", m.key),
                        }
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let got = outputs(&*e.store, &all).await;
        let want = from_scratch(true, &all).await;
        assert_eq!(names(&got), names(&want));
        for (k, v) in &want {
            assert!(got[k] == *v, "{k} differs from the rebuild");
        }
    });
}

/// Store requests of updating the next cycle's six forecast hours, one by
/// one, after `days` days of history: per update and in total.
fn next_cycle_requests(days: u32) -> (Vec<(u64, u64, u64, u64)>, u64) {
    let history = members(0, days, 6, false, 2);
    let next = members(days, 1, 6, false, 2);
    let e = env(false);
    rt().block_on(async {
        for m in &history {
            put(&*e.store, m).await;
        }
        ingest::rebuild::run(&e.p, &*e.store, "nos").await.unwrap();
        let counts = Arc::new(Counts::default());
        let counting = Counting {
            inner: e.store.clone(),
            counts: counts.clone(),
        };
        let mut per = Vec::new();
        for m in next.iter().filter(|m| m.cycle == next[0].cycle) {
            put(&*e.store, m).await;
            counts.reset();
            let out = ingest::steps::update_for_ref(&e.p, &counting, &m.key)
                .await
                .unwrap();
            assert_eq!(out.written.len(), 2, "{out:?}");
            per.push((
                counts.get.load(Ordering::SeqCst),
                counts.put.load(Ordering::SeqCst),
                counts.list.load(Ordering::SeqCst),
                counts.head.load(Ordering::SeqCst) + counts.range.load(Ordering::SeqCst),
            ));
        }
        let total = per.iter().map(|(g, p, l, h)| g + p + l + h).sum();
        (per, total)
    })
}

#[test]
fn update_requests_do_not_grow_with_history() {
    let (one, t1) = next_cycle_requests(1);
    let (four, t4) = next_cycle_requests(4);
    assert_eq!(one, four, "requests per update depend on the history");
    assert_eq!(t1, t4);
    for (i, (get, put, list, other)) in one.iter().enumerate() {
        // GET model run, best series, index, the new reference; PUT index,
        // model run, best series. No listing, no source read.
        assert_eq!((*get, *put, *list, *other), (4, 3, 0, 0), "update {i}");
    }
}

#[test]
fn missing_or_corrupt_index_is_rebuilt_from_a_listing() {
    let all = members(0, 1, 6, false, 1);
    let e = env(false);
    rt().block_on(async {
        let (first, rest) = all.split_at(all.len() - 2);
        for m in first {
            put(&*e.store, m).await;
            ingest::steps::update_for_ref(&e.p, &*e.store, &m.key)
                .await
                .unwrap();
        }
        let index = "nos/fmrc-index/dbofs.fields.legacy.json";
        // Gone: the next update lists the references once and recreates it.
        std::fs::remove_file(e.tmp.path().join("dest").join(index)).unwrap();
        put(&*e.store, &rest[0]).await;
        ingest::steps::update_for_ref(&e.p, &*e.store, &rest[0].key)
            .await
            .unwrap();
        // Corrupt: the same.
        e.store
            .put(
                index,
                Bytes::from_static(b"{\"members\":"),
                PutCondition::None,
            )
            .await
            .unwrap();
        put(&*e.store, &rest[1]).await;
        ingest::steps::update_for_ref(&e.p, &*e.store, &rest[1].key)
            .await
            .unwrap();
        let got = outputs(&*e.store, &all).await;
        let want = from_scratch(false, &all).await;
        assert_eq!(names(&got), names(&want));
        for (k, v) in &want {
            assert!(got[k] == *v, "{k} differs from the rebuild");
        }
    });
}
