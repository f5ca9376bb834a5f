//! Broken input never panics or hangs: every fixture truncated at every
//! 1/64 of its length and with 1000 random byte flips must give `Ok` or a
//! clear `Err` naming the file. The sweep is deterministic (fixed seeds).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use hdf5_lite::source::BoxFuture;
use hdf5_lite::{MemorySource, Options, RangeSource, SourceError};

fn fixture_files() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/files");
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("fixtures/files is readable") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(p.extension().and_then(|x| x.to_str()), Some("h5" | "nc")) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Options tight enough that a hostile file cannot make a test slow.
fn options() -> Options {
    Options {
        max_metadata_bytes: 32 * 1024 * 1024,
        max_waves: 500,
        max_objects: 100_000,
        max_chunks_per_dataset: 1_000_000,
        ..Options::default()
    }
}

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A fixture with at most one bit flipped, served without copying the file:
/// only a range covering the flipped byte is copied (and patched). Cases
/// cost what the walker reads, not a copy of the whole file each.
struct Flipped {
    file: MemorySource,
    flip: Option<(u64, u8)>,
}

impl RangeSource for Flipped {
    fn name(&self) -> &str {
        self.file.name()
    }
    fn get_ranges<'a>(
        &'a self,
        ranges: &'a [Range<u64>],
    ) -> BoxFuture<'a, Result<Vec<Bytes>, SourceError>> {
        Box::pin(async move {
            let mut out = self.file.get_ranges(ranges).await?;
            if let Some((at, bit)) = self.flip {
                for (r, b) in ranges.iter().zip(out.iter_mut()) {
                    if let Some(i) = at.checked_sub(r.start).filter(|&i| i < b.len() as u64) {
                        let mut patched = b.to_vec();
                        patched[i as usize] ^= bit;
                        *b = Bytes::from(patched);
                    }
                }
            }
            Ok(out)
        })
    }
    fn size(&self) -> BoxFuture<'_, Result<u64, SourceError>> {
        self.file.size()
    }
}

/// Open `data` with `flip` applied; returns a description of a panic, if
/// any.
fn try_open(
    rt: &tokio::runtime::Runtime,
    name: &str,
    data: Bytes,
    flip: Option<(u64, u8)>,
) -> Option<String> {
    let src: Arc<dyn RangeSource> = Arc::new(Flipped {
        file: MemorySource::new(name, data),
        flip,
    });
    let opts = options();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(hdf5_lite::open(src, &opts))
    }));
    match result {
        Err(p) => Some(
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into()),
        ),
        Ok(Err(e)) if !e.to_string().contains(name) => {
            Some(format!("error does not name the file: {e}"))
        }
        Ok(_) => None,
    }
}

fn sweep(path: &Path, flips: usize) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let data = Bytes::from(std::fs::read(path).expect("read fixture"));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("fixture")
        .to_string();
    let mut failures = Vec::new();
    for k in 0..64 {
        let cut = data.len() * k / 64;
        if let Some(p) = try_open(&rt, &name, data.slice(..cut), None) {
            failures.push(format!("{name} truncated to {cut}: {p}"));
        }
    }
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ data.len() as u64);
    for _ in 0..flips {
        // Flip bytes in the first 64 KiB most of the time: that is where the
        // metadata of small files lives, so flips hit parsers, not raw data.
        let span = if rng.next().is_multiple_of(4) {
            data.len()
        } else {
            data.len().min(65536)
        };
        let at = (rng.next() as usize) % span.max(1);
        let bit = 1u8 << (rng.next() % 8);
        let flip = (at < data.len()).then_some((at as u64, bit));
        if let Some(p) = try_open(&rt, &name, data.clone(), flip) {
            failures.push(format!("{name} with bit {bit:#x} flipped at {at}: {p}"));
        }
    }
    failures
}

#[test]
fn truncations_and_bit_flips_never_panic() {
    let files = fixture_files();
    assert!(
        files.len() >= 30,
        "expected the fixture set, found {} files",
        files.len()
    );
    // Silence the default hook: panics are collected and reported below.
    std::panic::set_hook(Box::new(|_| {}));
    // The files are independent: sweep them on every core (each thread its
    // own runtime), so this test does not dominate a warm test run.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut failures: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(f) = files.get(i) else { break };
                        out.extend(sweep(f, 1000));
                    }
                    out
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("sweep thread"))
            .collect()
    });
    failures.sort();
    let _ = std::panic::take_hook();
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn corrupt_input_errors_name_file_and_structure() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/files/hdfgroup/btree_idx_1_6.h5");
    let mut data = std::fs::read(&path).expect("fixture");
    // Break the first v1 B-tree node's signature: the file must still be
    // reported by name, with the structure and its address.
    let at = data
        .windows(4)
        .position(|w| w == b"TREE")
        .expect("a TREE node");
    data[at] = b'X';
    let src: Arc<dyn RangeSource> = Arc::new(MemorySource::new("broken.h5", data));
    let result = rt.block_on(hdf5_lite::open(src, &options()));
    let msg = match result {
        Err(e) => e.to_string(),
        Ok((f, _)) => {
            // Chunk-index damage is reported per dataset.
            let errs: Vec<String> = f
                .root
                .datasets
                .iter()
                .filter_map(|d| d.error.clone())
                .collect();
            errs.join("; ")
        }
    };
    assert!(msg.contains("broken.h5"), "{msg}");
    assert!(msg.contains("B-tree"), "{msg}");
    assert!(
        msg.contains(&format!("{at:#x}")),
        "{msg} should name address {at:#x}"
    );
}
