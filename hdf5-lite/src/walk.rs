//! The traversal engine: plan a wave of byte ranges, fetch them in one call,
//! run the pure parsers, repeat. One turn of the loop is one wave; waves grow
//! with the depth of the file's structure (superblock -> root header ->
//! link storage -> child headers -> chunk index levels), not with the number
//! of objects, because every pending structure of every object is fetched
//! in the same wave.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use crate::btree_v1;
use crate::btree_v2;
use crate::error::{Error, FormatError};
use crate::extensible_array as ea;
use crate::fixed_array as fa;
use crate::fractal_heap as fh;
use crate::global_heap;
use crate::local_heap;
use crate::messages::MaybeShared;
use crate::messages::attribute::{AttributeMessage, attribute};
use crate::messages::dataspace::dataspace;
use crate::messages::datatype::datatype;
use crate::messages::file_space;
use crate::messages::fill_value::{fill_value, fill_value_old};
use crate::messages::filter_pipeline::filter_pipeline;
use crate::messages::layout::{ChunkIndex, DataLayout, layout};
use crate::messages::link::{
    AttributeInfo, Link, LinkInfo, LinkTarget, attribute_info, link, link_info, symbol_table,
};
use crate::messages::shared::{SharedRef, shared};
use crate::model::*;
use crate::object_header::{self as oh, RawMessage};
use crate::parse::{Ctx, PResult, StructError};
use crate::source::{RangeSource, SourceError};
use crate::speculate::{self, Speculator};
use crate::superblock::{self, Superblock};
use crate::value;

/// Knobs for one open; defaults suit a NetCDF-4 file on S3.
#[derive(Debug, Clone)]
pub struct Options {
    /// Bytes read speculatively from the start of the file.
    pub head_size: u64,
    /// Bytes read for a structure whose size is unknown until parsed.
    pub probe_size: u64,
    /// Bytes before each object header read in the same request: the
    /// library allocates a dataset's chunk index and dense-attribute heap
    /// blocks next to (often just before) its header, so they are then
    /// already in memory when the header points at them.
    pub header_lookbehind: u64,
    /// Bytes after a fractal heap or v2 B-tree header read in the same
    /// request: the library allocates a dense attribute storage's heap
    /// header, name index header and the index's root node one after the
    /// other. (A structure that already parses from cached bytes is not
    /// fetched at all, so this never costs a request of its own.)
    pub lookahead: u64,
    /// The same for every other structure fetched (heap, B-tree and chunk
    /// index blocks): their children are often allocated just before them.
    pub lookbehind: u64,
    /// Bytes read for a fractal heap header (whose size is known only once
    /// parsed).
    pub heap_probe: u64,
    /// Ranges closer than this are merged into one request.
    pub coalesce_gap: u64,
    /// Merged requests are not grown beyond this size.
    pub max_request: u64,
    /// Stop with [`Error::Limit`] past this many metadata bytes fetched.
    pub max_metadata_bytes: u64,
    /// Stop with [`Error::Limit`] past this many object headers.
    pub max_objects: usize,
    /// Stop with [`Error::Limit`] past this many chunks in one dataset.
    pub max_chunks_per_dataset: u64,
    /// Stop with [`Error::Limit`] past this many waves (a bound on work for
    /// hostile files; real files need fewer than 20).
    pub max_waves: u64,
    /// Also fetch, during the walk, the stored bytes of every chunk (and
    /// contiguous dataset) smaller than this, and of string datasets up to
    /// [`Options::prefetch_budget`], in the wave after the one that
    /// located them. A reference writer that inlines small chunks (kerchunk's
    /// `inline_threshold`) then finds them in [`Prefetched`] instead of
    /// asking for them in extra round trips after the walk. 0 = metadata
    /// only (what `inspect` needs).
    pub prefetch_below: u64,
    /// Upper bound on the bytes fetched for `prefetch_below`; past it the
    /// remaining data is left for the reader to fetch (never an error).
    pub prefetch_budget: u64,
    /// Ranges predicted to hold this file's metadata (a sibling's layout,
    /// [`crate::layout_cache`]), fetched with the head in the first wave.
    /// Only what is fetched changes: every structure is still parsed and
    /// checked from this file's bytes, and what the prediction missed is
    /// fetched as usual. At most [`crate::layout_cache::MAX_PREDICTED_BYTES`]
    /// are used.
    pub predicted: Vec<Range<u64>>,
    /// Upper bound on the bytes fetched for speculative roots
    /// ([`crate::speculate`]): structures below object headers found in
    /// fetched windows, fetched before a link reaches them. Also capped at
    /// 1.5% of the file. 0 = no speculation.
    pub speculative_budget: u64,
}

impl Default for Options {
    /// Chosen by measurement on real-scale OFS files (dbofs 33 MB and a
    /// zlib cbofs ROMS, sfbofs 50 MB and a zlib sfbofs FVCOM;
    /// `examples/walk_stats.rs` with HEAD/PROBE/BEHIND/LB/GAP, waves counted
    /// at a range server by `bench/bench.py`). A round trip costs as much
    /// as ~1.6 MB of transfer at S3-like 20 ms / 80 MB/s, so bytes are
    /// traded for waves: a 64 KiB head holds the root group's link heap and
    /// name index in netCDF-4 files (-1 wave on dbofs); 8 KiB before each
    /// object header block and 2 KiB before other blocks hold most chunk
    /// index and dense-attribute heap blocks, which the library allocates
    /// just before the header (-1 wave on dbofs); 2 KiB probes hold most
    /// headers whole. Together: 5-8 waves instead of 7-9 for `refs`, at
    /// about 1% of the file instead of 0.5%. Larger windows (16 KiB behind,
    /// 4 KiB probes, 128 KiB head) added bytes and saved no further wave.
    fn default() -> Self {
        Options {
            head_size: 64 * 1024,
            probe_size: 2048,
            header_lookbehind: 8 * 1024,
            lookahead: 1024,
            lookbehind: 2048,
            heap_probe: 256,
            coalesce_gap: 2048,
            max_request: 8 * 1024 * 1024,
            max_metadata_bytes: 256 * 1024 * 1024,
            max_objects: 1_000_000,
            max_chunks_per_dataset: 4_000_000,
            max_waves: 10_000,
            prefetch_below: 0,
            prefetch_budget: 16 * 1024 * 1024,
            predicted: Vec::new(),
            speculative_budget: 2 * 1024 * 1024,
        }
    }
}

/// What one open cost, counted at the engine (not in each source).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Requests issued to the source (after coalescing).
    pub requests: u64,
    /// Bytes received from the source.
    pub bytes_fetched: u64,
    /// Sequential rounds of requests: the latency multiplier.
    pub waves: u64,
    /// Size of the file.
    pub file_size: u64,
    /// Bytes of the metadata structures actually parsed (their union), the
    /// floor any reader must fetch; `bytes_fetched / metadata_bytes` is the
    /// engine's read amplification.
    pub metadata_bytes: u64,
}

/// Walk a whole file: every group, dataset, attribute and chunk.
pub async fn open(source: Arc<dyn RangeSource>, options: &Options) -> Result<(File, Stats), Error> {
    let (file, stats, _) = open_prefetched(source, options).await?;
    Ok((file, stats))
}

/// [`open`], also returning a source that serves every byte the walk
/// fetched (metadata and the data of [`Options::prefetch_below`]) from
/// memory and asks `source` only for the rest.
pub async fn open_prefetched(
    source: Arc<dyn RangeSource>,
    options: &Options,
) -> Result<(File, Stats, Arc<Prefetched>), Error> {
    let mut w = Walker::start(source.clone(), options.clone()).await?;
    w.run().await?;
    let file = w.assemble()?;
    w.stats.metadata_bytes = w.metadata_bytes();
    let cache = std::mem::take(&mut w.cache);
    Ok((file, w.stats, Arc::new(Prefetched::new(source, cache))))
}

/// Blocking convenience for tests and tools: open a local file.
pub fn open_path(path: impl AsRef<std::path::Path>) -> Result<File, Error> {
    let source: Arc<dyn RangeSource> = Arc::new(crate::source::FileSource::new(path));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Source {
            file: source.name().to_string(),
            error: SourceError(format!("cannot start runtime: {e}")),
        })?;
    rt.block_on(async { open(source, &Options::default()).await.map(|(f, _)| f) })
}

// ---------------------------------------------------------------------------
// Byte cache
// ---------------------------------------------------------------------------

/// Fetched extents keyed by start; lookups are served from any extent that
/// covers them. A wanted range is trimmed to its uncached part, except that
/// a cached middle is fetched again (one request beats two).
#[derive(Default)]
struct Cache {
    extents: BTreeMap<u64, Bytes>,
}

impl Cache {
    fn get(&self, start: u64, len: u64) -> Option<Bytes> {
        let (s, b) = self.extents.range(..=start).next_back()?;
        let off = (start - s) as usize;
        let end = off.checked_add(len as usize)?;
        (end <= b.len()).then(|| b.slice(off..end))
    }
    /// The cached bytes from `start`, at most `max` of them (fewer where the
    /// extent holding `start` ends sooner).
    fn get_prefix(&self, start: u64, max: u64) -> Option<Bytes> {
        let (s, b) = self.extents.range(..=start).next_back()?;
        let off = usize::try_from(start - s).ok()?;
        let end = (off as u64).saturating_add(max).min(b.len() as u64) as usize;
        (off < end).then(|| b.slice(off..end))
    }
    /// The part of `start..end` not yet cached, trimmed at both ends (a
    /// hole in the middle is fetched whole: one request beats two).
    fn uncovered(&self, start: u64, end: u64) -> Option<Range<u64>> {
        let mut s = start;
        if let Some((es, b)) = self.extents.range(..=s).next_back() {
            s = s.max(es + b.len() as u64);
        }
        let mut e = end;
        if let Some((es, b)) = self.extents.range(..e).next_back()
            && *es > s
            && es + b.len() as u64 >= e
        {
            e = *es;
        }
        (s < e).then_some(s..e)
    }

    /// Insert an extent, merging it with every extent it touches so extents
    /// stay disjoint and a lookup only needs the nearest one below.
    fn insert(&mut self, start: u64, b: Bytes) {
        if b.is_empty() {
            return;
        }
        let end = start + b.len() as u64;
        let touching: Vec<u64> = self
            .extents
            .range(..=end)
            .rev()
            .take_while(|(s, e)| **s + e.len() as u64 >= start)
            .map(|(s, _)| *s)
            .collect();
        if touching.is_empty() {
            self.extents.insert(start, b);
            return;
        }
        let lo = touching.iter().copied().min().unwrap_or(start).min(start);
        let mut hi = end;
        for s in &touching {
            if let Some(e) = self.extents.get(s) {
                hi = hi.max(*s + e.len() as u64);
            }
        }
        let mut buf = vec![0u8; (hi - lo) as usize];
        for s in &touching {
            if let Some(e) = self.extents.remove(s) {
                let o = (*s - lo) as usize;
                buf[o..o + e.len()].copy_from_slice(&e);
            }
        }
        let o = (start - lo) as usize;
        buf[o..o + b.len()].copy_from_slice(&b);
        self.extents.insert(lo, Bytes::from(buf));
    }
}

/// Merge sorted ranges that are closer than `gap`, without growing a merged
/// range past `max` (object_store's `coalesce_ranges` idea).
pub fn coalesce(mut ranges: Vec<Range<u64>>, gap: u64, max: u64) -> Vec<Range<u64>> {
    ranges.sort_by_key(|r| (r.start, r.end));
    let mut out: Vec<Range<u64>> = Vec::new();
    for r in ranges {
        if let Some(last) = out.last_mut()
            && r.start <= last.end.saturating_add(gap)
            && r.end.max(last.end) - last.start <= max
        {
            last.end = last.end.max(r.end);
            continue;
        }
        out.push(r);
    }
    out
}

/// A [`RangeSource`] over the bytes a walk already fetched: ranges it holds
/// are answered from memory, the others (all of one call together) from the
/// underlying source. Counts what it had to fetch, so `--stats` can report
/// the round trips of a whole `refs` run, not only of the walk.
pub struct Prefetched {
    inner: Arc<dyn RangeSource>,
    cache: Cache,
    misses: std::sync::Mutex<(Stats, Vec<Range<u64>>)>,
}

impl Prefetched {
    /// Nothing prefetched: every range goes to `inner` (and is counted).
    pub(crate) fn passthrough(inner: Arc<dyn RangeSource>) -> Self {
        Prefetched::new(inner, Cache::default())
    }

    fn new(inner: Arc<dyn RangeSource>, cache: Cache) -> Self {
        Prefetched {
            inner,
            cache,
            misses: std::sync::Mutex::new((Stats::default(), Vec::new())),
        }
    }

    /// Requests, bytes and waves sent to the underlying source since the
    /// walk ended (coalescing is the underlying source's business).
    pub fn miss_stats(&self) -> Stats {
        self.misses.lock().map(|s| s.0.clone()).unwrap_or_default()
    }

    /// Every range fetched so far, by the walk and since: the layout a
    /// sibling file is predicted to need ([`Options::predicted`]).
    pub fn fetched_ranges(&self) -> Vec<Range<u64>> {
        let mut out: Vec<Range<u64>> = self
            .cache
            .extents
            .iter()
            .map(|(s, b)| *s..*s + b.len() as u64)
            .collect();
        if let Ok(m) = self.misses.lock() {
            out.extend(m.1.iter().cloned());
        }
        coalesce(out, 0, u64::MAX)
    }
}

/// The ranges of the first wave: the head, and a sibling's layout if one is
/// predicted (at most [`crate::layout_cache::MAX_PREDICTED_BYTES`]),
/// coalesced. [`crate::open_any`] fetches exactly these before it knows the
/// format, so the walk's first wave is then served from memory.
pub(crate) fn first_wave(opts: &Options) -> Vec<Range<u64>> {
    let head_len = opts.head_size.max(1024);
    let mut budget = crate::layout_cache::MAX_PREDICTED_BYTES;
    let mut want = vec![0..head_len];
    for r in &opts.predicted {
        let n = r.end.saturating_sub(r.start);
        if n == 0 || n > budget {
            break;
        }
        budget -= n;
        want.push(r.clone());
    }
    coalesce(want, opts.coalesce_gap, opts.max_request)
}

impl RangeSource for Prefetched {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn get_ranges<'a>(
        &'a self,
        ranges: &'a [Range<u64>],
    ) -> crate::source::BoxFuture<'a, Result<Vec<Bytes>, SourceError>> {
        Box::pin(async move {
            let mut out: Vec<Option<Bytes>> = ranges
                .iter()
                .map(|r| {
                    (r.end >= r.start)
                        .then(|| self.cache.get(r.start, r.end - r.start))
                        .flatten()
                })
                .collect();
            let missing: Vec<usize> = (0..ranges.len()).filter(|i| out[*i].is_none()).collect();
            if !missing.is_empty() {
                let want: Vec<Range<u64>> = missing.iter().map(|i| ranges[*i].clone()).collect();
                let got = self.inner.get_ranges(&want).await?;
                if let Ok(mut m) = self.misses.lock() {
                    m.0.waves += 1;
                    m.0.requests += want.len() as u64;
                    m.0.bytes_fetched += got.iter().map(|b| b.len() as u64).sum::<u64>();
                    m.1.extend(want.iter().cloned());
                }
                for (i, b) in missing.into_iter().zip(got) {
                    out[i] = Some(b);
                }
            }
            Ok(out.into_iter().map(Option::unwrap_or_default).collect())
        })
    }

    fn size(&self) -> crate::source::BoxFuture<'_, Result<u64, SourceError>> {
        self.inner.size()
    }
}

// ---------------------------------------------------------------------------
// Jobs and per-structure state
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum JobKind {
    Header,
    Continuation {
        owner: u64,
        cont: oh::Continuation,
    },
    LocalHeap,
    LocalHeapData {
        heap: u64,
    },
    GroupNode {
        heap: u64,
        tree: u64,
    },
    SymbolNode {
        tree: u64,
    },
    HeapHeader,
    HeapDirect {
        heap: u64,
        size: u64,
    },
    HeapIndirect {
        heap: u64,
        nrows: u32,
    },
    BTree2Header,
    BTree2Node {
        tree: u64,
        depth: u16,
        nrec: u64,
    },
    GlobalHeap,
    Blob,
    ChunkNode {
        ds: u64,
    },
    FaHeader {
        ds: u64,
    },
    FaData {
        ds: u64,
    },
    EaHeader {
        ds: u64,
    },
    EaIndex {
        ds: u64,
    },
    EaSecondary {
        ds: u64,
        level: usize,
        first: u64,
    },
    EaData {
        ds: u64,
        first: u64,
        n: u64,
        page_init: Option<Vec<bool>>,
    },
    SharedTable,
    /// Stored data bytes fetched for [`Options::prefetch_below`]: nothing
    /// to parse, the wave's cache keeps them.
    Data,
}

#[derive(Debug, Clone)]
struct Job {
    addr: u64,
    len: u64,
    kind: JobKind,
}

#[derive(Default)]
struct HeaderState {
    version: u8,
    flags: u8,
    messages: Vec<RawMessage>,
    pending: usize,
    seen_blocks: HashSet<u64>,
    parsed_first: bool,
    expanded: bool,
    /// The object's links were resolved and its children requested.
    children_requested: bool,
}

impl HeaderState {
    fn complete(&self) -> bool {
        self.parsed_first && self.pending == 0
    }
}

#[derive(Default)]
struct LocalHeapState {
    data: Option<Bytes>,
}

/// An old-style group's B-tree walk: symbol entries gathered from SNODs.
#[derive(Default)]
struct GroupTreeState {
    pending: usize,
    visited: HashSet<u64>,
    entries: Vec<btree_v1::SymbolEntry>,
    error: Option<FormatError>,
}

#[derive(Default)]
struct FHeapState {
    header: Option<fh::Header>,
    pending: usize,
    visited: HashSet<u64>,
    direct: BTreeMap<u64, Bytes>,
}

#[derive(Default)]
struct BTree2State {
    header: Option<btree_v2::Header>,
    geometry: Option<btree_v2::Geometry>,
    pending: usize,
    visited: HashSet<u64>,
    records: Vec<Bytes>,
}

/// What a dataset's chunk index walk needs to know about the dataset.
#[derive(Debug, Clone)]
struct ChunkGeom {
    chunk: Vec<u64>,
    dims: Vec<u64>,
    /// Chunks per dimension over the maximum extent (the grid fixed and
    /// extensible arrays are indexed by); unlimited dims use the current one.
    grid: Vec<u64>,
    unlimited_dim: Option<usize>,
    element_size: u64,
}

impl ChunkGeom {
    fn chunk_bytes(&self) -> u64 {
        self.chunk
            .iter()
            .fold(self.element_size, |a, c| a.saturating_mul(*c))
    }
    /// Logical element offset of linear chunk index `idx`, following the
    /// library's order: C order over the grid, with the unlimited dimension
    /// (extensible arrays) swizzled to the slowest position.
    fn offset_of(&self, idx: u64) -> Vec<u64> {
        let rank = self.chunk.len();
        let mut order: Vec<usize> = (0..rank).collect();
        if let Some(u) = self.unlimited_dim {
            order.retain(|d| *d != u);
            order.insert(0, u);
        }
        let mut scaled = vec![0u64; rank];
        let mut rem = idx;
        for &d in order.iter().rev() {
            let n = self.grid[d].max(1);
            scaled[d] = rem % n;
            rem /= n;
        }
        scaled
            .iter()
            .zip(&self.chunk)
            .map(|(s, c)| s.saturating_mul(*c))
            .collect()
    }
    fn in_extent(&self, offset: &[u64]) -> bool {
        offset.iter().zip(&self.dims).all(|(o, d)| o < d)
    }
}

#[derive(Default)]
struct ChunkState {
    geom: Option<ChunkGeom>,
    pending: usize,
    visited: HashSet<u64>,
    chunks: Vec<Chunk>,
    error: Option<String>,
    fa: Option<fa::Header>,
    ea: Option<ea::Header>,
}

impl ChunkState {
    fn push_entry(&mut self, idx: u64, entry: &[u8], ctx: &Ctx, client: u8) -> Result<(), String> {
        let Some(g) = &self.geom else { return Ok(()) };
        let (rest, addr) = ctx
            .addr(entry)
            .map_err(|_| "chunk entry too short".to_string())?;
        let Some(address) = addr else { return Ok(()) };
        let (size, filter_mask) = if client == 1 {
            let len_size = rest.len().saturating_sub(4) as u8;
            let (rest, size) = crate::parse::uint(rest, len_size)
                .map_err(|_| "bad chunk size field".to_string())?;
            let (_, mask) = crate::parse::u32_::<_, crate::parse::PErr>(rest)
                .map_err(|_| "bad filter mask".to_string())?;
            (size, mask)
        } else {
            (g.chunk_bytes(), 0)
        };
        let offset = g.offset_of(idx);
        if g.in_extent(&offset) {
            self.chunks.push(Chunk {
                offset,
                address,
                size,
                filter_mask,
            });
        }
        Ok(())
    }
}

/// Shared object header message table: message type -> SOHM heap address.
#[derive(Default)]
struct SharedTable {
    heaps: Vec<(u16, u64)>,
}

struct Walker {
    src: Arc<dyn RangeSource>,
    opts: Options,
    name: String,
    size: u64,
    sb: Superblock,
    ctx: Ctx,
    cache: Cache,
    stats: Stats,
    jobs: Vec<Job>,
    headers: HashMap<u64, HeaderState>,
    local_heaps: HashMap<u64, LocalHeapState>,
    group_trees: HashMap<u64, GroupTreeState>,
    fheaps: HashMap<u64, FHeapState>,
    btrees: HashMap<u64, BTree2State>,
    gheaps: HashMap<u64, global_heap::Collection>,
    blobs: HashMap<(u64, u64), Bytes>,
    chunk_states: HashMap<u64, ChunkState>,
    shared_table: Option<SharedTable>,
    /// Shared resources already asked for: (tag, address, length). The
    /// length is part of the key (not mixed into the address), so two
    /// requests can only be merged when they are the same request.
    requested: HashSet<(u8, u64, u64)>,
    /// Extents of every structure parsed, for `Stats::metadata_bytes`.
    parsed: Vec<(u64, u64)>,
    /// Paged aggregation page size, once the superblock extension says so:
    /// metadata then sits in whole pages, so reads are widened to pages.
    page_size: Option<u64>,
    /// Datasets whose data prefetch has been planned.
    data_planned: HashSet<u64>,
    /// Bytes queued for data prefetch so far.
    prefetch_bytes: u64,
    /// Global heap collections of vlen attributes were requested once the
    /// structure was complete.
    vlen_planned: bool,
    /// Speculative roots: prefetch of what headers found in fetched
    /// windows will need ([`crate::speculate`]).
    spec: Speculator,
}

/// Tags for de-duplicating requests of shared resources.
const R_LHEAP: u8 = 1;
const R_GTREE: u8 = 2;
const R_FHEAP: u8 = 3;
const R_BTREE2: u8 = 4;
const R_GHEAP: u8 = 5;
const R_CHUNKS: u8 = 6;
const R_BLOB: u8 = 7;

impl Walker {
    async fn start(src: Arc<dyn RangeSource>, opts: Options) -> Result<Walker, Error> {
        let name = src.name().to_string();
        let want = first_wave(&opts);
        let first = src.get_ranges(&want).await.map_err(|error| Error::Source {
            file: name.clone(),
            error,
        })?;
        let size = src.size().await.map_err(|error| Error::Source {
            file: name.clone(),
            error,
        })?;
        let mut stats = Stats {
            requests: want.len() as u64,
            bytes_fetched: first.iter().map(|b| b.len() as u64).sum(),
            waves: 1,
            file_size: size,
            metadata_bytes: 0,
        };
        let mut cache = Cache::default();
        for (r, b) in want.iter().zip(first) {
            cache.insert(r.start, b);
        }
        let head = cache.extents.get(&0).cloned().unwrap_or_default();
        let fmt = |structure, address, reason: String| Error::Format {
            file: name.clone(),
            error: FormatError::new(structure, address, reason),
        };
        // The signature may sit past the speculative head (large user block).
        let mut at = superblock::find_signature(&head);
        if at.is_none() {
            for o in superblock::candidate_offsets(size).filter(|o| *o + 8 > head.len() as u64) {
                let b = src
                    .get_ranges(&[o..o + 8])
                    .await
                    .map_err(|error| Error::Source {
                        file: name.clone(),
                        error,
                    })?;
                stats.requests += 1;
                stats.waves += 1;
                if b.first().is_some_and(|b| &b[..] == superblock::SIGNATURE) {
                    at = Some(o);
                    break;
                }
            }
        }
        let Some(at) = at else {
            return Err(fmt(
                "superblock",
                0,
                "no HDF5 signature found: not an HDF5/NetCDF-4 file".into(),
            ));
        };
        let sb_bytes = match cache.get(at, 256.min(size.saturating_sub(at))) {
            Some(b) => b,
            None => {
                let b = src
                    .get_ranges(&[at..at + 256])
                    .await
                    .map_err(|error| Error::Source {
                        file: name.clone(),
                        error,
                    })?
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                stats.requests += 1;
                stats.waves += 1;
                stats.bytes_fetched += b.len() as u64;
                cache.insert(at, b.clone());
                b
            }
        };
        let sb = superblock::parse(&sb_bytes, at).map_err(|e| Error::Format {
            file: name.clone(),
            error: e.into_format("superblock", at, sb_bytes.len()),
        })?;
        let ctx = sb.ctx;
        let mut w = Walker {
            src,
            opts,
            name,
            size,
            sb,
            ctx,
            cache,
            stats,
            jobs: Vec::new(),
            headers: HashMap::new(),
            local_heaps: HashMap::new(),
            group_trees: HashMap::new(),
            fheaps: HashMap::new(),
            btrees: HashMap::new(),
            gheaps: HashMap::new(),
            blobs: HashMap::new(),
            chunk_states: HashMap::new(),
            shared_table: None,
            requested: HashSet::new(),
            parsed: Vec::new(),
            page_size: None,
            data_planned: HashSet::new(),
            prefetch_bytes: 0,
            vlen_planned: false,
            spec: Speculator::default(),
        };
        if w.opts.speculative_budget > 0 {
            for (s, b) in &w.cache.extents {
                w.spec.scan(*s, b);
            }
        }
        let so = ctx.size_of_offsets as u64;
        let sb_size = if w.sb.version >= 2 {
            16 + 4 * so
        } else {
            48 + 6 * so + if w.sb.version == 1 { 4 } else { 0 }
        };
        w.used(at, sb_size);
        let root = w.sb.root_object_header;
        w.request_header(root)?;
        if let Some(ext) = w.sb.extension {
            w.request_header(ext)?;
        }
        Ok(w)
    }

    /// Widen a range to whole pages of a paged-aggregation file (pages are
    /// aligned to the base address), clamped to the file. In such files a
    /// page holds related metadata, so the rest of the page is usually
    /// needed next and costs no extra round trip now.
    fn page_align(&self, r: Range<u64>) -> Range<u64> {
        let Some(ps) = self.page_size else { return r };
        let base = self.ctx.base;
        let rel_start = r.start.saturating_sub(base);
        let rel_end = r.end.saturating_sub(base);
        let start = base + rel_start / ps * ps;
        let end = (base + rel_end.div_ceil(ps).saturating_mul(ps)).min(self.size);
        start.min(r.start)..end.max(r.end)
    }

    /// Record the extent of a structure that parsed.
    fn used(&mut self, addr: u64, len: u64) {
        self.parsed.push((addr, len));
    }

    /// Union length of the parsed extents.
    fn metadata_bytes(&self) -> u64 {
        let mut v = self.parsed.clone();
        v.sort_unstable();
        let (mut total, mut end) = (0u64, 0u64);
        for (s, l) in v {
            let e = s.saturating_add(l);
            if e > end {
                total += e - s.max(end);
                end = e;
            }
        }
        total
    }

    fn format_err(
        &self,
        structure: &'static str,
        address: u64,
        reason: impl Into<String>,
    ) -> Error {
        Error::Format {
            file: self.name.clone(),
            error: FormatError::new(structure, address, reason),
        }
    }

    fn check_addr(&self, structure: &'static str, addr: u64) -> Result<(), Error> {
        if addr >= self.size {
            return Err(self.format_err(
                structure,
                addr,
                format!("address is past the end of the file ({} bytes)", self.size),
            ));
        }
        Ok(())
    }

    fn push(&mut self, addr: u64, len: u64, kind: JobKind) {
        self.jobs.push(Job { addr, len, kind });
    }

    fn request_header(&mut self, addr: u64) -> Result<(), Error> {
        if self.headers.contains_key(&addr) {
            return Ok(());
        }
        self.check_addr("object header", addr)?;
        if self.headers.len() >= self.opts.max_objects {
            return Err(Error::Limit {
                file: self.name.clone(),
                what: format!("more than {} object headers", self.opts.max_objects),
            });
        }
        self.headers.insert(addr, HeaderState::default());
        let probe = self.opts.probe_size;
        self.push(addr, probe, JobKind::Header);
        Ok(())
    }

    fn once(&mut self, addr: u64, tag: u8) -> bool {
        self.requested.insert((tag, addr, 0))
    }

    fn request_local_heap(&mut self, addr: u64) -> Result<(), Error> {
        if self.once(addr, R_LHEAP) {
            self.check_addr("local heap", addr)?;
            self.local_heaps.insert(addr, LocalHeapState::default());
            // Header plus a guess at the data segment that usually follows it.
            let len = local_heap::header_size(&self.ctx) + 512;
            self.push(addr, len, JobKind::LocalHeap);
        }
        Ok(())
    }

    fn request_group_tree(&mut self, tree: u64, heap: u64) -> Result<(), Error> {
        if self.once(tree, R_GTREE) {
            self.check_addr("group B-tree", tree)?;
            let mut st = GroupTreeState {
                pending: 1,
                ..Default::default()
            };
            st.visited.insert(tree);
            self.group_trees.insert(tree, st);
            let probe = self.opts.probe_size;
            self.push(tree, probe, JobKind::GroupNode { heap, tree });
        }
        Ok(())
    }

    fn request_fheap(&mut self, addr: u64) -> Result<(), Error> {
        if self.once(addr, R_FHEAP) {
            self.check_addr("fractal heap header", addr)?;
            self.fheaps.insert(
                addr,
                FHeapState {
                    pending: 1,
                    ..Default::default()
                },
            );
            let probe = self.opts.heap_probe.max(64);
            self.push(addr, probe, JobKind::HeapHeader);
        }
        Ok(())
    }

    fn request_btree2(&mut self, addr: u64) -> Result<(), Error> {
        if self.once(addr, R_BTREE2) {
            self.check_addr("v2 B-tree header", addr)?;
            self.btrees.insert(
                addr,
                BTree2State {
                    pending: 1,
                    ..Default::default()
                },
            );
            self.push(addr, 64, JobKind::BTree2Header);
        }
        Ok(())
    }

    fn request_gheap(&mut self, addr: u64) -> Result<(), Error> {
        if self.once(addr, R_GHEAP) {
            self.check_addr("global heap collection", addr)?;
            self.push(addr, global_heap::MIN_COLLECTION, JobKind::GlobalHeap);
        }
        Ok(())
    }

    fn request_blob(&mut self, addr: u64, len: u64) -> Result<(), Error> {
        if self.requested.insert((R_BLOB, addr, len)) {
            self.check_addr("huge heap object", addr)?;
            self.check_len("huge heap object", addr, len)?;
            self.push(addr, len, JobKind::Blob);
        }
        Ok(())
    }

    fn check_len(&self, structure: &'static str, addr: u64, len: u64) -> Result<(), Error> {
        if len > self.opts.max_metadata_bytes || addr.saturating_add(len) > self.size {
            return Err(self.format_err(
                structure,
                addr,
                format!("size {len} is past the end of the file or the metadata limit"),
            ));
        }
        Ok(())
    }

    // -----------------------------------------------------------------------
    // The wave loop
    // -----------------------------------------------------------------------

    async fn run(&mut self) -> Result<(), Error> {
        loop {
            self.progress()?;
            if self.jobs.is_empty() {
                return Ok(());
            }
            self.wave().await?;
        }
    }

    async fn wave(&mut self) -> Result<(), Error> {
        let jobs = std::mem::take(&mut self.jobs);
        let mut missing = Vec::new();
        // Jobs served by a cached prefix shorter than their probe.
        let mut short_ok = HashSet::new();
        for (n, j) in jobs.iter().enumerate() {
            let len = j.len.min(self.size.saturating_sub(j.addr));
            if len > 0
                && let Some(r) = self.cache.uncovered(j.addr, j.addr + len)
            {
                if self.fits_cached_prefix(j, len) {
                    short_ok.insert(n);
                    continue;
                }
                // Speculation: the bytes just before a structure often hold
                // the next structures it leads to (see the options).
                let behind = match j.kind {
                    JobKind::Data => 0,
                    JobKind::Header | JobKind::Continuation { .. } => self.opts.header_lookbehind,
                    _ => self.opts.lookbehind,
                }
                .min(r.start);
                let ahead = match j.kind {
                    JobKind::HeapHeader | JobKind::BTree2Header => self.opts.lookahead,
                    _ => 0,
                };
                let end = r.end.saturating_add(ahead).min(self.size).max(r.end);
                let r = if behind > 0 || ahead > 0 {
                    self.cache.uncovered(r.start - behind, end).unwrap_or(r)
                } else {
                    r
                };
                missing.push(self.page_align(r));
            }
        }
        if !missing.is_empty() {
            if self.stats.waves >= self.opts.max_waves {
                return Err(Error::Limit {
                    file: self.name.clone(),
                    what: format!("more than {} sequential reads", self.opts.max_waves),
                });
            }
            // Speculation rides along with a wave the walk makes anyway.
            missing.extend(self.speculate());
            let merged = coalesce(missing, self.opts.coalesce_gap, self.opts.max_request);
            let total: u64 = merged.iter().map(|r| r.end - r.start).sum();
            // Prefetched data (at most `prefetch_budget`, planned into
            // `prefetch_bytes` before it is fetched) has its own bound and is
            // not metadata: it is allowed on top of the metadata limit.
            let allowed = self
                .opts
                .max_metadata_bytes
                .saturating_add(self.prefetch_bytes)
                .saturating_add(self.spec.spent);
            if self.stats.bytes_fetched.saturating_add(total) > allowed {
                return Err(Error::Limit {
                    file: self.name.clone(),
                    what: format!(
                        "more than {} bytes of metadata",
                        self.opts.max_metadata_bytes
                    ),
                });
            }
            let got = self
                .src
                .get_ranges(&merged)
                .await
                .map_err(|error| Error::Source {
                    file: self.name.clone(),
                    error,
                })?;
            self.stats.waves += 1;
            self.stats.requests += merged.len() as u64;
            for (r, b) in merged.iter().zip(got) {
                self.stats.bytes_fetched += b.len() as u64;
                if self.opts.speculative_budget > 0 {
                    self.spec.scan(r.start, &b);
                }
                self.cache.insert(r.start, b);
            }
        }
        for (n, j) in jobs.into_iter().enumerate() {
            let len = j.len.min(self.size.saturating_sub(j.addr));
            let bytes = if short_ok.contains(&n) {
                self.cache.get_prefix(j.addr, len)
            } else {
                self.cache.get(j.addr, len)
            };
            self.handle(j, bytes.unwrap_or_default())?;
        }
        Ok(())
    }

    /// A probe (a guess at the size of a structure) that runs past the
    /// cached bytes need not be fetched when the structure already parses
    /// from the cached part: a window often ends just after a header or a
    /// heap header, short of the whole probe. Only a clean parse counts; a
    /// short or bad one is fetched and handled as before.
    fn fits_cached_prefix(&self, j: &Job, len: u64) -> bool {
        let Some(b) = self.cache.get_prefix(j.addr, len) else {
            return false;
        };
        let (ctx, a) = (&self.ctx, j.addr);
        match &j.kind {
            JobKind::Header => oh::parse_header(&b, a, ctx).is_ok(),
            JobKind::HeapHeader => fh::parse_header(&b, a, ctx).is_ok(),
            JobKind::BTree2Header => btree_v2::parse_header(&b, a, ctx).is_ok(),
            JobKind::GroupNode { .. } => btree_v1::parse_group_node(&b, a, ctx).is_ok(),
            JobKind::SymbolNode { .. } => btree_v1::parse_symbol_node(&b, a, ctx).is_ok(),
            JobKind::ChunkNode { ds } => self
                .chunk_states
                .get(ds)
                .and_then(|s| s.geom.as_ref())
                .is_some_and(|g| btree_v1::parse_chunk_node(&b, a, ctx, g.chunk.len()).is_ok()),
            _ => false,
        }
    }

    /// Ranges the speculative roots want fetched with this wave.
    fn speculate(&mut self) -> Vec<Range<u64>> {
        let budget = self
            .opts
            .speculative_budget
            .min((self.size / 64).max(64 * 1024));
        if budget == 0 || self.spec.spent >= budget {
            return Vec::new();
        }
        let knobs = speculate::Knobs {
            size: self.size,
            probe: self.opts.probe_size,
            heap_probe: self.opts.heap_probe,
            header_lookbehind: self.opts.header_lookbehind,
            lookbehind: self.opts.lookbehind,
            lookahead: self.opts.lookahead,
            prefetch_below: self.opts.prefetch_below,
        };
        let cache = &self.cache;
        let get = |a: u64, n: u64| cache.get_prefix(a, n);
        let uncovered = |a: u64, e: u64| cache.uncovered(a, e);
        let wants = self.spec.plan(&self.ctx, &knobs, budget, &get, &uncovered);
        wants.into_iter().map(|r| self.page_align(r)).collect()
    }

    /// Re-queue a job that ran out of bytes, or fail if the file has no more.
    fn retry(
        &mut self,
        job: Job,
        had: usize,
        need: Option<u64>,
        structure: &'static str,
    ) -> Result<(), Error> {
        let avail = self.size.saturating_sub(job.addr);
        let want = match need {
            Some(n) if n > had as u64 => n,
            Some(_) => {
                return Err(self.format_err(
                    structure,
                    job.addr,
                    "structure claims fewer bytes than it holds",
                ));
            }
            None => (job.len.max(64)).saturating_mul(4),
        };
        if had as u64 >= avail || want > avail {
            return Err(self.format_err(
                structure,
                job.addr,
                format!("truncated: needs {want} bytes, file has {avail} from here"),
            ));
        }
        if want > self.opts.max_metadata_bytes {
            return Err(Error::Limit {
                file: self.name.clone(),
                what: format!("{structure} at {:#x} claims {want} bytes", job.addr),
            });
        }
        self.push(job.addr, want.min(avail), job.kind);
        Ok(())
    }

    fn handle(&mut self, job: Job, bytes: Bytes) -> Result<(), Error> {
        let ctx = self.ctx;
        let (so, sl) = (ctx.size_of_offsets as u64, ctx.size_of_lengths as u64);
        let had = bytes.len();
        macro_rules! attempt {
            ($structure:expr, $e:expr) => {
                match $e {
                    Ok(v) => v,
                    Err(StructError::Short { need }) => {
                        return self.retry(job, had, need, $structure)
                    }
                    Err(StructError::Bad(e)) => {
                        return Err(Error::Format {
                            file: self.name.clone(),
                            error: e,
                        })
                    }
                }
            };
        }
        // Chunk index failures belong to one dataset; everything else to the file.
        macro_rules! attempt_ds {
            ($ds:expr, $structure:expr, $e:expr) => {
                match $e {
                    Ok(v) => v,
                    Err(StructError::Short { need }) => {
                        let ds = $ds;
                        let job2 = job.clone();
                        return match self.retry(job2, had, need, $structure) {
                            Ok(()) => Ok(()),
                            Err(e) => {
                                self.fail_chunks(ds, e.to_string());
                                Ok(())
                            }
                        };
                    }
                    Err(StructError::Bad(e)) => {
                        self.fail_chunks($ds, format!("{}: {}", self.name, e));
                        return Ok(());
                    }
                }
            };
        }
        match job.kind.clone() {
            JobKind::Header => {
                let block = attempt!("object header", oh::parse_header(&bytes, job.addr, &ctx));
                self.used(job.addr, block.size);
                let conts = block.continuations.clone();
                let st = self.headers.entry(job.addr).or_default();
                st.version = block.version;
                st.flags = block.flags;
                st.messages.extend(block.messages);
                st.parsed_first = true;
                st.seen_blocks.insert(job.addr);
                self.queue_continuations(job.addr, conts)?;
            }
            JobKind::Continuation { owner, cont } => {
                let (version, flags) = match self.headers.get(&owner) {
                    Some(s) => (s.version, s.flags),
                    None => return Ok(()),
                };
                let block = attempt!(
                    "object header continuation",
                    oh::parse_continuation(&bytes, cont, version, flags, &ctx)
                );
                self.used(cont.address, cont.length);
                let conts = block.continuations.clone();
                if let Some(st) = self.headers.get_mut(&owner) {
                    st.messages.extend(block.messages);
                    st.pending = st.pending.saturating_sub(1);
                }
                self.queue_continuations(owner, conts)?;
            }
            JobKind::LocalHeap => {
                let h = attempt!("local heap", local_heap::parse(&bytes, job.addr, &ctx));
                self.used(job.addr, local_heap::header_size(&ctx));
                self.check_len("local heap data segment", h.data_address, h.data_size)?;
                self.push(
                    h.data_address,
                    h.data_size,
                    JobKind::LocalHeapData { heap: job.addr },
                );
            }
            JobKind::LocalHeapData { heap } => {
                if (bytes.len() as u64) < job.len {
                    return Err(self.format_err("local heap data segment", job.addr, "truncated"));
                }
                self.local_heaps.entry(heap).or_default().data = Some(bytes);
            }
            JobKind::GroupNode { heap, tree } => {
                let node = attempt!(
                    "group B-tree node",
                    btree_v1::parse_group_node(&bytes, job.addr, &ctx)
                );
                self.used(
                    job.addr,
                    8 + 2 * so + node.children.len() as u64 * (sl + so) + sl,
                );
                let mut next = Vec::new();
                if let Some(st) = self.group_trees.get_mut(&tree) {
                    st.pending = st.pending.saturating_sub(1);
                    for (_, child) in &node.children {
                        if !st.visited.insert(*child) {
                            st.error = Some(FormatError::new(
                                "group B-tree node",
                                job.addr,
                                "cycle in B-tree",
                            ));
                            continue;
                        }
                        st.pending += 1;
                        next.push(*child);
                    }
                }
                for child in next {
                    self.check_addr("group B-tree child", child)?;
                    let kind = if node.level > 0 {
                        JobKind::GroupNode { heap, tree }
                    } else {
                        JobKind::SymbolNode { tree }
                    };
                    let probe = self.opts.probe_size.min(2048);
                    self.push(child, probe, kind);
                }
            }
            JobKind::SymbolNode { tree } => {
                let entries = attempt!(
                    "symbol table node",
                    btree_v1::parse_symbol_node(&bytes, job.addr, &ctx)
                );
                self.used(job.addr, 8 + entries.len() as u64 * (2 * so + 24));
                if let Some(st) = self.group_trees.get_mut(&tree) {
                    st.pending = st.pending.saturating_sub(1);
                    st.entries.extend(entries);
                }
            }
            JobKind::HeapHeader => {
                let h = attempt!(
                    "fractal heap header",
                    fh::parse_header(&bytes, job.addr, &ctx)
                );
                self.used(
                    job.addr,
                    30 + 12 * sl
                        + 3 * so
                        + if h.io_filters_len > 0 {
                            sl + 4 + h.io_filters_len as u64
                        } else {
                            0
                        },
                );
                let heap = job.addr;
                if let Some(root) = h.root {
                    self.check_addr("fractal heap root block", root)?;
                    if h.root_rows == 0 {
                        let size = h.filtered_root_size.unwrap_or(h.start_block_size);
                        self.check_len("fractal heap direct block", root, size)?;
                        self.push(root, size, JobKind::HeapDirect { heap, size });
                    } else {
                        let nrows = h.root_rows as u32;
                        let size = fh::indirect_size(&ctx, &h, nrows);
                        self.push(root, size, JobKind::HeapIndirect { heap, nrows });
                    }
                    if let Some(st) = self.fheaps.get_mut(&heap) {
                        st.pending += 1;
                        st.visited.insert(root);
                    }
                }
                if let Some(bt) = h.huge_btree {
                    self.request_btree2(bt)?;
                }
                if let Some(st) = self.fheaps.get_mut(&heap) {
                    st.pending = st.pending.saturating_sub(1);
                    st.header = Some(h);
                }
            }
            JobKind::HeapDirect { heap, size } => {
                let Some(h) = self.fheaps.get(&heap).and_then(|s| s.header.clone()) else {
                    return Ok(());
                };
                let b = attempt!(
                    "fractal heap direct block",
                    fh::parse_direct(&bytes, job.addr, &ctx, &h, size)
                );
                self.used(job.addr, size);
                if let Some(st) = self.fheaps.get_mut(&heap) {
                    st.pending = st.pending.saturating_sub(1);
                    st.direct.insert(b.block_offset, b.data);
                }
            }
            JobKind::HeapIndirect { heap, nrows } => {
                let Some(h) = self.fheaps.get(&heap).and_then(|s| s.header.clone()) else {
                    return Ok(());
                };
                let ib = attempt!(
                    "fractal heap indirect block",
                    fh::parse_indirect(&bytes, job.addr, &ctx, &h, nrows)
                );
                self.used(job.addr, fh::indirect_size(&ctx, &h, nrows));
                let mut next = Vec::new();
                for (row, a) in &ib.direct {
                    let size = h.row_block_size(*row);
                    next.push((*a, size, JobKind::HeapDirect { heap, size }));
                }
                for (row, a) in &ib.indirect {
                    let rows = h.child_indirect_rows(*row);
                    if rows == 0 || rows >= nrows {
                        return Err(self.format_err(
                            "fractal heap indirect block",
                            job.addr,
                            "child indirect block is not smaller",
                        ));
                    }
                    let size = fh::indirect_size(&ctx, &h, rows);
                    next.push((*a, size, JobKind::HeapIndirect { heap, nrows: rows }));
                }
                let Some(st) = self.fheaps.get_mut(&heap) else {
                    return Ok(());
                };
                st.pending = st.pending.saturating_sub(1);
                let mut accepted = Vec::new();
                for (a, size, kind) in next {
                    if !st.visited.insert(a) {
                        return Err(self.format_err(
                            "fractal heap indirect block",
                            job.addr,
                            "cycle: block referenced twice",
                        ));
                    }
                    st.pending += 1;
                    accepted.push((a, size, kind));
                }
                for (a, size, kind) in accepted {
                    self.check_addr("fractal heap block", a)?;
                    self.check_len("fractal heap block", a, size)?;
                    self.push(a, size, kind);
                }
            }
            JobKind::BTree2Header => {
                let h = attempt!(
                    "v2 B-tree header",
                    btree_v2::parse_header(&bytes, job.addr, &ctx)
                );
                self.used(job.addr, 22 + so + sl);
                let tree = job.addr;
                let geo = btree_v2::Geometry::new(&h, &ctx);
                if let (Some(root), true) = (h.root, h.root_records > 0 || h.depth > 0) {
                    self.check_addr("v2 B-tree root", root)?;
                    let len = h.node_size as u64;
                    self.push(
                        root,
                        len,
                        JobKind::BTree2Node {
                            tree,
                            depth: h.depth,
                            nrec: h.root_records as u64,
                        },
                    );
                    if let Some(st) = self.btrees.get_mut(&tree) {
                        st.pending += 1;
                        st.visited.insert(root);
                    }
                }
                if let Some(st) = self.btrees.get_mut(&tree) {
                    st.pending = st.pending.saturating_sub(1);
                    st.header = Some(h);
                    st.geometry = Some(geo);
                }
            }
            JobKind::BTree2Node { tree, depth, nrec } => {
                let Some((h, geo)) = self
                    .btrees
                    .get(&tree)
                    .and_then(|s| Some((s.header.clone()?, s.geometry.clone()?)))
                else {
                    return Ok(());
                };
                let node = attempt!(
                    "v2 B-tree node",
                    btree_v2::parse_node(&bytes, job.addr, &ctx, &h, &geo, depth, nrec)
                );
                self.used(job.addr, h.node_size as u64);
                let Some(st) = self.btrees.get_mut(&tree) else {
                    return Ok(());
                };
                st.pending = st.pending.saturating_sub(1);
                st.records.extend(node.records);
                let mut next = Vec::new();
                for c in node.children {
                    if !st.visited.insert(c.address) {
                        return Err(self.format_err(
                            "v2 B-tree node",
                            job.addr,
                            "cycle: node referenced twice",
                        ));
                    }
                    st.pending += 1;
                    next.push(c);
                }
                for c in next {
                    self.check_addr("v2 B-tree node", c.address)?;
                    self.push(
                        c.address,
                        h.node_size as u64,
                        JobKind::BTree2Node {
                            tree,
                            depth: depth - 1,
                            nrec: c.records,
                        },
                    );
                }
            }
            JobKind::GlobalHeap => {
                let c = attempt!(
                    "global heap collection",
                    global_heap::parse(&bytes, job.addr, &ctx)
                );
                self.used(job.addr, job.len);
                self.gheaps.insert(job.addr, c);
            }
            JobKind::Data => {}
            JobKind::Blob => {
                if (bytes.len() as u64) < job.len {
                    return Err(self.format_err("huge heap object", job.addr, "truncated"));
                }
                self.blobs.insert((job.addr, job.len), bytes);
            }
            JobKind::SharedTable => {
                let t = attempt!(
                    "shared message table",
                    parse_shared_table(&bytes, job.addr, &ctx)
                );
                for (_, heap) in &t.heaps {
                    self.request_fheap(*heap)?;
                }
                self.shared_table = Some(t);
            }
            JobKind::ChunkNode { ds } => {
                let Some(rank) = self
                    .chunk_states
                    .get(&ds)
                    .and_then(|s| s.geom.as_ref())
                    .map(|g| g.chunk.len())
                else {
                    return Ok(());
                };
                let node = attempt_ds!(
                    ds,
                    "chunk B-tree node",
                    btree_v1::parse_chunk_node(&bytes, job.addr, &ctx, rank)
                );
                let key = 8 + 8 * (rank as u64 + 1);
                self.used(
                    job.addr,
                    8 + 2 * so + node.children.len() as u64 * (key + so) + key,
                );
                let probe = self.opts.probe_size;
                let size = self.size;
                let max_chunks = self.opts.max_chunks_per_dataset;
                let Some(st) = self.chunk_states.get_mut(&ds) else {
                    return Ok(());
                };
                if st.error.is_some() {
                    return Ok(());
                }
                st.pending = st.pending.saturating_sub(1);
                let mut next = Vec::new();
                for (key, child) in node.children {
                    if node.level > 0 {
                        if !st.visited.insert(child) || child >= size {
                            st.error = Some(format!(
                                "chunk B-tree node at {:#x}: bad or repeated child {child:#x}",
                                job.addr
                            ));
                            st.pending = 0;
                            return Ok(());
                        }
                        st.pending += 1;
                        next.push(child);
                    } else {
                        let in_extent = st.geom.as_ref().is_some_and(|g| g.in_extent(&key.offset));
                        if in_extent {
                            st.chunks.push(Chunk {
                                offset: key.offset,
                                address: child,
                                size: key.size as u64,
                                filter_mask: key.filter_mask,
                            });
                        }
                    }
                }
                if st.chunks.len() as u64 > max_chunks {
                    st.error = Some(format!("more than {max_chunks} chunks"));
                    st.pending = 0;
                    return Ok(());
                }
                for child in next {
                    self.push(child, probe, JobKind::ChunkNode { ds });
                }
            }
            JobKind::FaHeader { ds } => {
                let h = attempt_ds!(
                    ds,
                    "fixed array header",
                    fa::parse_header(&bytes, job.addr, &ctx)
                );
                self.used(job.addr, 12 + sl + so);
                let size = h.data_block_size(&ctx);
                let data = h.data_block;
                let Some(st) = self.chunk_states.get_mut(&ds) else {
                    return Ok(());
                };
                st.pending = st.pending.saturating_sub(1);
                st.fa = Some(h);
                if let Some(a) = data {
                    if a >= self.size || size > self.opts.max_metadata_bytes {
                        st.error = Some(format!(
                            "fixed array data block at {a:#x} of {size} bytes is out of bounds"
                        ));
                        return Ok(());
                    }
                    st.pending += 1;
                    self.push(a, size, JobKind::FaData { ds });
                }
            }
            JobKind::FaData { ds } => {
                let Some(h) = self.chunk_states.get(&ds).and_then(|s| s.fa.clone()) else {
                    return Ok(());
                };
                let entries = attempt_ds!(
                    ds,
                    "fixed array data block",
                    fa::parse_data_block(&bytes, job.addr, &ctx, &h)
                );
                self.used(job.addr, h.data_block_size(&ctx));
                self.add_entries(ds, 0, entries, h.client);
            }
            JobKind::EaHeader { ds } => {
                let h = attempt_ds!(
                    ds,
                    "extensible array header",
                    ea::parse_header(&bytes, job.addr, &ctx)
                );
                self.used(job.addr, 16 + 6 * sl + so);
                let ib = h.index_block;
                let size = h.index_block_size(&ctx);
                let Some(st) = self.chunk_states.get_mut(&ds) else {
                    return Ok(());
                };
                st.pending = st.pending.saturating_sub(1);
                st.ea = Some(h);
                if let Some(a) = ib {
                    if a >= self.size {
                        st.error = Some(format!(
                            "extensible array index block at {a:#x} is out of bounds"
                        ));
                        return Ok(());
                    }
                    st.pending += 1;
                    self.push(a, size, JobKind::EaIndex { ds });
                }
            }
            JobKind::EaIndex { ds } => {
                let Some(h) = self.chunk_states.get(&ds).and_then(|s| s.ea.clone()) else {
                    return Ok(());
                };
                let ib = attempt_ds!(
                    ds,
                    "extensible array index block",
                    ea::parse_index_block(&bytes, job.addr, &ctx, &h)
                );
                self.used(job.addr, h.index_block_size(&ctx));
                let levels = h.super_blocks();
                let base = h.index_block_elements as u64;
                let direct: Vec<Option<Bytes>> = ib.elements.into_iter().map(Some).collect();
                self.add_entries_keep_pending(ds, 0, direct, h.client);
                // Data blocks hanging off the index block, level by level.
                let mut k = 0usize;
                let mut jobs = Vec::new();
                for info in levels.iter().take(h.index_super_blocks()) {
                    for d in 0..info.data_blocks {
                        if let Some(Some(a)) = ib.data_blocks.get(k) {
                            // Checked: the element index of a hostile
                            // array's block must not wrap.
                            let Some(first) = d
                                .checked_mul(info.data_block_elements)
                                .and_then(|x| x.checked_add(info.start_index))
                                .and_then(|x| x.checked_add(base))
                            else {
                                self.fail_chunks(ds, "extensible array index overflows".into());
                                return Ok(());
                            };
                            jobs.push((
                                *a,
                                h.data_block_size(&ctx, info.data_block_elements),
                                JobKind::EaData {
                                    ds,
                                    first,
                                    n: info.data_block_elements,
                                    page_init: None,
                                },
                            ));
                        }
                        k += 1;
                    }
                }
                for (s, a) in ib.secondary_blocks.iter().enumerate() {
                    let level = h.index_super_blocks() + s;
                    if let (Some(a), Some(info)) = (a, levels.get(level)) {
                        let Some(first) = base.checked_add(info.start_index) else {
                            self.fail_chunks(ds, "extensible array index overflows".into());
                            return Ok(());
                        };
                        jobs.push((
                            *a,
                            ea::secondary_block_size(&ctx, &h, info),
                            JobKind::EaSecondary { ds, level, first },
                        ));
                    }
                }
                self.queue_chunk_jobs(ds, jobs);
            }
            JobKind::EaSecondary { ds, level, first } => {
                let Some(h) = self.chunk_states.get(&ds).and_then(|s| s.ea.clone()) else {
                    return Ok(());
                };
                let levels = h.super_blocks();
                let Some(info) = levels.get(level).copied() else {
                    return Ok(());
                };
                let sb = attempt_ds!(
                    ds,
                    "extensible array secondary block",
                    ea::parse_secondary_block(&bytes, job.addr, &ctx, &h, &info)
                );
                self.used(job.addr, ea::secondary_block_size(&ctx, &h, &info));
                let mut jobs = Vec::new();
                for (d, a) in sb.data_blocks.iter().enumerate() {
                    if let Some(a) = a {
                        let Some(first) = (d as u64)
                            .checked_mul(info.data_block_elements)
                            .and_then(|x| x.checked_add(first))
                        else {
                            self.fail_chunks(ds, "extensible array index overflows".into());
                            return Ok(());
                        };
                        jobs.push((
                            *a,
                            h.data_block_size(&ctx, info.data_block_elements),
                            JobKind::EaData {
                                ds,
                                first,
                                n: info.data_block_elements,
                                page_init: sb.page_init.get(d).cloned(),
                            },
                        ));
                    }
                }
                self.queue_chunk_jobs(ds, jobs);
            }
            JobKind::EaData {
                ds,
                first,
                n,
                page_init,
            } => {
                let Some(h) = self.chunk_states.get(&ds).and_then(|s| s.ea.clone()) else {
                    return Ok(());
                };
                let entries = attempt_ds!(
                    ds,
                    "extensible array data block",
                    ea::parse_data_block(&bytes, job.addr, &ctx, &h, n, page_init.as_deref())
                );
                self.used(job.addr, h.data_block_size(&ctx, n));
                self.add_entries(ds, first, entries, h.client);
            }
        }
        Ok(())
    }

    fn queue_continuations(
        &mut self,
        owner: u64,
        conts: Vec<oh::Continuation>,
    ) -> Result<(), Error> {
        for c in conts {
            self.check_addr("object header continuation", c.address)?;
            self.check_len("object header continuation", c.address, c.length)?;
            let Some(st) = self.headers.get_mut(&owner) else {
                continue;
            };
            if !st.seen_blocks.insert(c.address) {
                return Err(self.format_err(
                    "object header continuation",
                    c.address,
                    "cycle: block referenced twice",
                ));
            }
            st.pending += 1;
            self.push(
                c.address,
                c.length,
                JobKind::Continuation { owner, cont: c },
            );
        }
        Ok(())
    }

    fn fail_chunks(&mut self, ds: u64, reason: String) {
        if let Some(st) = self.chunk_states.get_mut(&ds) {
            if st.error.is_none() {
                st.error = Some(reason);
            }
            st.pending = 0;
        }
    }

    fn queue_chunk_jobs(&mut self, ds: u64, jobs: Vec<(u64, u64, JobKind)>) {
        let size = self.size;
        let max = self.opts.max_metadata_bytes;
        let Some(st) = self.chunk_states.get_mut(&ds) else {
            return;
        };
        st.pending = st.pending.saturating_sub(1);
        let mut ok = Vec::new();
        for (a, len, kind) in jobs {
            if a >= size || len > max || !st.visited.insert(a) {
                st.error = Some(format!(
                    "chunk index block at {a:#x} is out of bounds or repeated"
                ));
                st.pending = 0;
                return;
            }
            st.pending += 1;
            ok.push((a, len, kind));
        }
        for (a, len, kind) in ok {
            self.push(a, len, kind);
        }
    }

    fn add_entries_keep_pending(
        &mut self,
        ds: u64,
        first: u64,
        entries: Vec<Option<Bytes>>,
        client: u8,
    ) {
        let ctx = self.ctx;
        let max = self.opts.max_chunks_per_dataset;
        let Some(st) = self.chunk_states.get_mut(&ds) else {
            return;
        };
        for (k, e) in entries.into_iter().enumerate() {
            let Some(e) = e else { continue };
            let Some(idx) = first.checked_add(k as u64) else {
                st.error = Some("extensible array index overflows".into());
                st.pending = 0;
                return;
            };
            if let Err(reason) = st.push_entry(idx, &e, &ctx, client) {
                st.error = Some(reason);
                st.pending = 0;
                return;
            }
        }
        if st.chunks.len() as u64 > max {
            st.error = Some(format!("more than {max} chunks"));
            st.pending = 0;
        }
    }

    fn add_entries(&mut self, ds: u64, first: u64, entries: Vec<Option<Bytes>>, client: u8) {
        self.add_entries_keep_pending(ds, first, entries, client);
        if let Some(st) = self.chunk_states.get_mut(&ds) {
            st.pending = st.pending.saturating_sub(1);
        }
    }

    // -----------------------------------------------------------------------
    // Planning: what completed structures ask for next
    // -----------------------------------------------------------------------

    fn progress(&mut self) -> Result<(), Error> {
        // Expand every object header that is complete.
        let ready: Vec<u64> = self
            .headers
            .iter()
            .filter(|(_, s)| s.complete() && !s.expanded)
            .map(|(a, _)| *a)
            .collect();
        for addr in ready {
            self.expand(addr)?;
        }
        // Groups whose link storage is complete reveal their children.
        let mut children = Vec::new();
        let pending: Vec<u64> = self
            .headers
            .iter()
            .filter(|(_, h)| h.complete() && !h.children_requested)
            .map(|(a, _)| *a)
            .collect();
        for addr in pending {
            if let Some(links) = self.links_of(addr)? {
                for l in links {
                    if let LinkTarget::Hard(a) = l.target {
                        children.push(a);
                    }
                }
                if let Some(h) = self.headers.get_mut(&addr) {
                    h.children_requested = true;
                }
            }
        }
        for c in children {
            self.request_header(c)?;
        }
        // Vlen attribute values: their global heap collections can be asked
        // for as soon as every attribute is known, alongside the chunk index
        // levels still being walked (not in a wave of their own at the end).
        // Asked again once nothing else is pending, for values that only
        // then became decodable (requests are de-duplicated).
        if self.structure_done() && (!self.vlen_planned || self.jobs.is_empty()) {
            self.vlen_planned = true;
            self.request_vlen_collections()?;
        }
        if self.opts.prefetch_below > 0 {
            self.plan_data()?;
        }
        Ok(())
    }

    /// Queue the data bytes of [`Options::prefetch_below`] for every dataset
    /// whose storage is fully located (a complete header for contiguous
    /// data, a complete chunk index for chunked data). String datasets are
    /// fetched whole (within the budget): reference writers convert them.
    fn plan_data(&mut self) -> Result<(), Error> {
        let ctx = self.ctx;
        let ready: Vec<u64> = self
            .headers
            .iter()
            .filter(|(a, h)| h.complete() && h.expanded && !self.data_planned.contains(a))
            .map(|(a, _)| *a)
            .collect();
        for ds in ready {
            let Some(m) = self.msgs(ds, oh::MSG_LAYOUT).into_iter().next() else {
                self.data_planned.insert(ds);
                continue;
            };
            let Ok(lay) =
                crate::parse::run("data layout message", ds, &m.body, |i| layout(i, &ctx))
            else {
                self.data_planned.insert(ds);
                continue;
            };
            let whole = matches!(
                self.datatype_of(ds, 0),
                Ok(Some(Datatype::String { .. } | Datatype::VlenString { .. }))
            );
            let extents: Vec<(u64, u64)> = match lay {
                DataLayout::Contiguous {
                    address: Some(a),
                    size: Some(n),
                } => vec![(a, n)],
                DataLayout::Chunked {
                    index: ChunkIndex::BTreeV2 { address: Some(bt) },
                    ..
                } => match self.btrees.get(&bt) {
                    Some(t) if t.pending > 0 => continue,
                    _ => self
                        .btree2_chunks(ds, bt, &mut None)
                        .iter()
                        .map(|c| (c.address, c.size))
                        .collect(),
                },
                DataLayout::Chunked { .. } => match self.chunk_states.get(&ds) {
                    Some(st) if st.pending > 0 => continue,
                    Some(st) if st.error.is_none() => {
                        st.chunks.iter().map(|c| (c.address, c.size)).collect()
                    }
                    _ => vec![],
                },
                _ => vec![],
            };
            self.data_planned.insert(ds);
            let total = extents.iter().fold(0u64, |t, (_, n)| t.saturating_add(*n));
            let below = self.opts.prefetch_below;
            // Data never pushes the walk into its metadata limit.
            let budget = self
                .opts
                .prefetch_budget
                .min(self.opts.max_metadata_bytes / 4);
            for (a, n) in extents {
                if n == 0 || !(n < below || whole && total <= budget) {
                    continue;
                }
                let end = a.checked_add(n);
                let next = self.prefetch_bytes.saturating_add(n);
                if end.is_none_or(|e| e > self.size) || next > budget {
                    continue;
                }
                self.prefetch_bytes = next;
                self.push(a, n, JobKind::Data);
            }
        }
        Ok(())
    }

    fn structure_done(&self) -> bool {
        self.headers.values().all(|h| h.complete())
            && self.group_trees.values().all(|t| t.pending == 0)
            && self.fheaps.values().all(|h| h.pending == 0)
            && self.btrees.values().all(|b| b.pending == 0)
    }

    fn msgs(&self, addr: u64, kind: u16) -> Vec<RawMessage> {
        self.headers
            .get(&addr)
            .map(|h| {
                h.messages
                    .iter()
                    .filter(|m| m.kind == kind)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    fn parse_msg<T>(
        &self,
        owner: u64,
        m: &RawMessage,
        structure: &'static str,
        f: impl for<'a> FnOnce(&'a [u8]) -> PResult<'a, T>,
    ) -> Result<T, Error> {
        match crate::parse::run(structure, owner, &m.body, f) {
            Ok(v) => Ok(v),
            Err(e) => Err(Error::Format {
                file: self.name.clone(),
                error: e.into_format(structure, owner, m.body.len()),
            }),
        }
    }

    /// Interpret a complete header and request what its messages point at.
    fn expand(&mut self, addr: u64) -> Result<(), Error> {
        if let Some(h) = self.headers.get_mut(&addr) {
            h.expanded = true;
        }
        let ctx = self.ctx;
        // Shared messages anywhere in the header.
        let shared_msgs: Vec<RawMessage> = self
            .headers
            .get(&addr)
            .map(|h| {
                h.messages
                    .iter()
                    .filter(|m| m.flags & oh::FLAG_SHARED != 0)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for m in shared_msgs {
            let s = self.parse_msg(addr, &m, "shared message", |i| shared(i, &ctx))?;
            if let SharedRef::ObjectHeader(a) = s {
                self.request_header(a)?;
            }
        }
        for m in self.msgs(addr, oh::MSG_ATTRIBUTE) {
            let a = self.parse_msg(addr, &m, "attribute message", |i| attribute(i, &ctx))?;
            if let MaybeShared::Shared(SharedRef::ObjectHeader(t)) = a.datatype {
                self.request_header(t)?;
            }
        }
        for m in self.msgs(addr, oh::MSG_SYMBOL_TABLE) {
            let st = self.parse_msg(addr, &m, "symbol table message", |i| symbol_table(i, &ctx))?;
            self.request_local_heap(st.local_heap)?;
            self.request_group_tree(st.btree, st.local_heap)?;
        }
        for m in self.msgs(addr, oh::MSG_LINK_INFO) {
            let li = self.parse_msg(addr, &m, "link info message", |i| link_info(i, &ctx))?;
            if let (Some(h), Some(b)) = (li.fractal_heap, li.name_index) {
                self.request_fheap(h)?;
                self.request_btree2(b)?;
            }
        }
        for m in self.msgs(addr, oh::MSG_ATTRIBUTE_INFO) {
            let ai = self.parse_msg(addr, &m, "attribute info message", |i| {
                attribute_info(i, &ctx)
            })?;
            if let (Some(h), Some(b)) = (ai.fractal_heap, ai.name_index) {
                self.request_fheap(h)?;
                self.request_btree2(b)?;
            }
        }
        for m in self.msgs(addr, file_space::MSG_FILE_SPACE_INFO) {
            // Only the superblock extension carries it; a version we do not
            // know just means no page-sized reads.
            if let Ok(info) = crate::parse::run("file space info message", addr, &m.body, |i| {
                file_space::file_space_info(i, &ctx)
            }) {
                self.page_size = info.paged();
            }
        }
        for m in self.msgs(addr, oh::MSG_SHARED_MESSAGE_TABLE) {
            let (table, _n) = self.parse_msg(addr, &m, "shared message table message", |i| {
                let (r, _version) = crate::parse::u8_(i)?;
                let (r, a) = ctx.addr_req(r, "shared message table")?;
                let (r, n) = crate::parse::u8_(r)?;
                Ok((r, (a, n)))
            })?;
            if self.once(table, R_FHEAP + 100) {
                self.check_addr("shared message table", table)?;
                self.push(table, 1024, JobKind::SharedTable);
            }
        }
        for m in self.msgs(addr, oh::MSG_EXTERNAL_FILES) {
            // The file names live in a local heap.
            let heap = self.parse_msg(addr, &m, "external data files message", |i| {
                let (r, _) = crate::parse::take(i, 8)?;
                ctx.addr(r)
            })?;
            if let Some(h) = heap {
                self.request_local_heap(h)?;
            }
        }
        if !self.msgs(addr, oh::MSG_LAYOUT).is_empty() {
            self.plan_chunks(addr)?;
        }
        Ok(())
    }

    /// The resolved datatype message of a header (following committed types).
    fn datatype_of(&self, addr: u64, depth: u32) -> Result<Option<Datatype>, Error> {
        if depth > 8 {
            return Err(self.format_err(
                "datatype message",
                addr,
                "committed datatype chain too long",
            ));
        }
        let ctx = self.ctx;
        let Some(m) = self.msgs(addr, oh::MSG_DATATYPE).into_iter().next() else {
            return Ok(None);
        };
        if m.flags & oh::FLAG_SHARED != 0 {
            let s = self.parse_msg(addr, &m, "shared datatype", |i| shared(i, &ctx))?;
            return self.resolve_shared_datatype(addr, s, depth);
        }
        Ok(Some(self.parse_msg(
            addr,
            &m,
            "datatype message",
            datatype,
        )?))
    }

    fn resolve_shared_datatype(
        &self,
        owner: u64,
        s: SharedRef,
        depth: u32,
    ) -> Result<Option<Datatype>, Error> {
        match s {
            SharedRef::ObjectHeader(a) => {
                if !self.headers.get(&a).is_some_and(|h| h.complete()) {
                    return Ok(None);
                }
                match self.datatype_of(a, depth + 1)? {
                    Some(d) => Ok(Some(d)),
                    None => Err(self.format_err(
                        "committed datatype",
                        a,
                        "object has no datatype message",
                    )),
                }
            }
            SharedRef::Heap(id) => {
                let Some(body) = self.shared_heap_message(oh::MSG_DATATYPE, &id)? else {
                    return Ok(None);
                };
                let m = RawMessage {
                    kind: oh::MSG_DATATYPE,
                    flags: 0,
                    creation_order: None,
                    body,
                };
                Ok(Some(self.parse_msg(
                    owner,
                    &m,
                    "shared datatype message",
                    datatype,
                )?))
            }
        }
    }

    /// A message body from the shared-message (SOHM) heap of `kind`.
    fn shared_heap_message(&self, kind: u16, id: &[u8; 8]) -> Result<Option<Bytes>, Error> {
        let Some(t) = &self.shared_table else {
            return Ok(None);
        };
        for (flags, heap) in &t.heaps {
            if flags & (1 << message_type_bit(kind)) != 0 {
                return self.heap_object(*heap, id);
            }
        }
        Err(self.format_err(
            "shared message table",
            0,
            format!("no index holds message type {kind:#x}"),
        ))
    }

    /// The message of `kind` at `addr`, following a SOHM reference.
    fn unshared(&self, addr: u64, m: &RawMessage) -> Result<Option<RawMessage>, Error> {
        if m.flags & oh::FLAG_SHARED == 0 {
            return Ok(Some(m.clone()));
        }
        let ctx = self.ctx;
        let s = self.parse_msg(addr, m, "shared message", |i| shared(i, &ctx))?;
        match s {
            SharedRef::Heap(id) => {
                Ok(self
                    .shared_heap_message(m.kind, &id)?
                    .map(|body| RawMessage {
                        kind: m.kind,
                        flags: 0,
                        creation_order: m.creation_order,
                        body,
                    }))
            }
            SharedRef::ObjectHeader(a) => {
                if !self.headers.get(&a).is_some_and(|h| h.complete()) {
                    return Ok(None);
                }
                Ok(self.msgs(a, m.kind).into_iter().next())
            }
        }
    }

    /// Bytes of a fractal heap object, once the heap is fully read.
    fn heap_object(&self, heap: u64, id: &[u8]) -> Result<Option<Bytes>, Error> {
        let Some(st) = self.fheaps.get(&heap) else {
            return Ok(None);
        };
        if st.pending > 0 {
            return Ok(None);
        }
        let Some(h) = &st.header else { return Ok(None) };
        let hid = fh::parse_id(id, h, &self.ctx)
            .map_err(|e| self.format_err("fractal heap id", heap, e))?;
        match hid {
            fh::HeapId::Tiny(d) => Ok(Some(Bytes::from(d))),
            fh::HeapId::Managed { offset, length } => {
                let Some((start, block)) = st.direct.range(..=offset).next_back() else {
                    return Err(self.format_err(
                        "fractal heap",
                        heap,
                        format!("no direct block holds offset {offset}"),
                    ));
                };
                let s = (offset - start) as usize;
                match s.checked_add(length as usize).and_then(|e| block.get(s..e)) {
                    Some(_) => Ok(Some(block.slice(s..s + length as usize))),
                    None => Err(self.format_err(
                        "fractal heap",
                        heap,
                        format!("object at {offset}+{length} overruns its block"),
                    )),
                }
            }
            fh::HeapId::HugeDirect { address, length } => {
                Ok(self.blobs.get(&(address, length)).cloned())
            }
            fh::HeapId::HugeKey(key) => {
                let Some(bt) = h.huge_btree else {
                    return Err(self.format_err(
                        "fractal heap",
                        heap,
                        "huge object without a huge-object B-tree",
                    ));
                };
                let Some(tree) = self.btrees.get(&bt) else {
                    return Ok(None);
                };
                if tree.pending > 0 {
                    return Ok(None);
                }
                let ctx = self.ctx;
                for r in &tree.records {
                    let rec: PResult<'_, (u64, u64, u64)> = (|| {
                        let (i, a) = ctx.addr_req(r, "huge object")?;
                        let (i, l) = ctx.length(i)?;
                        let (i, k) = ctx.length(i)?;
                        Ok((i, (a, l, k)))
                    })();
                    if let Ok((_, (a, l, k))) = rec
                        && k == key
                    {
                        return Ok(self.blobs.get(&(a, l)).cloned());
                    }
                }
                Err(self.format_err("fractal heap", heap, format!("huge object {key} not found")))
            }
        }
    }

    /// Huge heap objects referenced by ids that need a separate fetch.
    fn request_huge(&mut self, heap: u64, id: &[u8]) -> Result<(), Error> {
        let Some(h) = self.fheaps.get(&heap).and_then(|s| s.header.clone()) else {
            return Ok(());
        };
        let ctx = self.ctx;
        match fh::parse_id(id, &h, &ctx) {
            Ok(fh::HeapId::HugeDirect { address, length }) => self.request_blob(address, length),
            Ok(fh::HeapId::HugeKey(key)) => {
                let Some(tree) = h.huge_btree.and_then(|b| self.btrees.get(&b)) else {
                    return Ok(());
                };
                let mut found = None;
                for r in &tree.records {
                    let rec: PResult<'_, (u64, u64, u64)> = (|| {
                        let (i, a) = ctx.addr_req(r, "huge object")?;
                        let (i, l) = ctx.length(i)?;
                        let (i, k) = ctx.length(i)?;
                        Ok((i, (a, l, k)))
                    })();
                    if let Ok((_, (a, l, k))) = rec
                        && k == key
                    {
                        found = Some((a, l));
                    }
                }
                match found {
                    Some((a, l)) => self.request_blob(a, l),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// Links of a group whose link storage is complete; `None` otherwise
    /// (or when the object is not a group).
    fn links_of(&mut self, addr: u64) -> Result<Option<Vec<Link>>, Error> {
        let Some(h) = self.headers.get(&addr) else {
            return Ok(None);
        };
        if !h.complete() {
            return Ok(None);
        }
        let ctx = self.ctx;
        let mut links = Vec::new();
        let mut is_group = false;
        for m in self.msgs(addr, oh::MSG_LINK) {
            is_group = true;
            links.push(self.parse_msg(addr, &m, "link message", |i| link(i, &ctx))?);
        }
        for m in self.msgs(addr, oh::MSG_LINK_INFO) {
            is_group = true;
            let li: LinkInfo =
                self.parse_msg(addr, &m, "link info message", |i| link_info(i, &ctx))?;
            let (Some(heap), Some(bt)) = (li.fractal_heap, li.name_index) else {
                continue;
            };
            let (Some(hs), Some(ts)) = (self.fheaps.get(&heap), self.btrees.get(&bt)) else {
                return Ok(None);
            };
            if hs.pending > 0 || ts.pending > 0 {
                return Ok(None);
            }
            let records = ts.records.clone();
            for r in records {
                // Type 5 record: name hash (4) + heap id (7).
                let Some(id) = r.get(4..) else {
                    return Err(self.format_err("link name index", bt, "record too short"));
                };
                let Some(body) = self.heap_object(heap, id)? else {
                    self.request_huge(heap, id)?;
                    return Ok(None);
                };
                let m = RawMessage {
                    kind: oh::MSG_LINK,
                    flags: 0,
                    creation_order: None,
                    body,
                };
                links.push(self.parse_msg(heap, &m, "dense link message", |i| link(i, &ctx))?);
            }
        }
        for m in self.msgs(addr, oh::MSG_SYMBOL_TABLE) {
            is_group = true;
            let st = self.parse_msg(addr, &m, "symbol table message", |i| symbol_table(i, &ctx))?;
            let Some(tree) = self.group_trees.get(&st.btree) else {
                return Ok(None);
            };
            if tree.pending > 0 {
                return Ok(None);
            }
            if let Some(e) = &tree.error {
                return Err(Error::Format {
                    file: self.name.clone(),
                    error: e.clone(),
                });
            }
            let Some(data) = self
                .local_heaps
                .get(&st.local_heap)
                .and_then(|h| h.data.clone())
            else {
                return Ok(None);
            };
            for e in &tree.entries {
                let Some(name) = local_heap::string_at(&data, e.name_offset) else {
                    return Err(self.format_err(
                        "local heap",
                        st.local_heap,
                        format!("no name at offset {}", e.name_offset),
                    ));
                };
                let target = match (e.soft_link_offset, e.object_header) {
                    (Some(off), _) => match local_heap::string_at(&data, off as u64) {
                        Some(p) => LinkTarget::Soft(p),
                        None => {
                            return Err(self.format_err(
                                "local heap",
                                st.local_heap,
                                format!("no soft link value at offset {off}"),
                            ));
                        }
                    },
                    (None, Some(a)) => LinkTarget::Hard(a),
                    (None, None) => {
                        return Err(self.format_err(
                            "symbol table node",
                            st.btree,
                            format!("entry {name} has no object header"),
                        ));
                    }
                };
                links.push(Link {
                    name,
                    creation_order: None,
                    target,
                });
            }
        }
        Ok(is_group.then_some(links))
    }

    fn plan_chunks(&mut self, ds: u64) -> Result<(), Error> {
        if !self.once(ds, R_CHUNKS) {
            return Ok(());
        }
        let ctx = self.ctx;
        let Some(m) = self.msgs(ds, oh::MSG_LAYOUT).into_iter().next() else {
            return Ok(());
        };
        let lay = match self.parse_msg(ds, &m, "data layout message", |i| layout(i, &ctx)) {
            Ok(l) => l,
            Err(e) => {
                self.chunk_states.insert(
                    ds,
                    ChunkState {
                        error: Some(e.to_string()),
                        ..Default::default()
                    },
                );
                return Ok(());
            }
        };
        let DataLayout::Chunked {
            dims: chunk,
            element_size,
            index,
            ..
        } = lay
        else {
            return Ok(());
        };
        let space = match self.msgs(ds, oh::MSG_DATASPACE).into_iter().next() {
            Some(m) => self.parse_msg(ds, &m, "dataspace message", |i| dataspace(i, &ctx))?,
            None => {
                return Err(self.format_err(
                    "dataset object header",
                    ds,
                    "chunked dataset without a dataspace",
                ));
            }
        };

        let (dims, max_dims) = match &space {
            Dataspace::Simple { dims, max_dims } => (dims.clone(), max_dims.clone()),
            _ => (vec![], vec![]),
        };
        let mut st = ChunkState::default();
        if dims.len() != chunk.len() || chunk.contains(&0) {
            st.error = Some(format!(
                "{}: chunked layout of rank {} for a dataspace of rank {} (or a zero chunk dim)",
                self.name,
                chunk.len(),
                dims.len()
            ));
            self.chunk_states.insert(ds, st);
            return Ok(());
        }
        let grid: Vec<u64> = max_dims
            .iter()
            .zip(&dims)
            .zip(&chunk)
            .map(|((m, d), c)| m.unwrap_or(*d).max(*d).div_ceil(*c))
            .collect();
        let unlimited_dim = max_dims.iter().position(|m| m.is_none());
        let geom = ChunkGeom {
            chunk,
            dims,
            grid,
            unlimited_dim,
            element_size,
        };
        let probe = self.opts.probe_size;
        let addr_ok = |a: u64| a < self.size;
        match index {
            ChunkIndex::BTreeV1 { address: Some(a) } if addr_ok(a) => {
                st.pending = 1;
                st.visited.insert(a);
                self.push(a, probe, JobKind::ChunkNode { ds });
            }
            ChunkIndex::SingleChunk {
                address: Some(a),
                filtered: f,
            } => {
                let (size, filter_mask) = f.unwrap_or((geom.chunk_bytes(), 0));
                st.chunks.push(Chunk {
                    offset: vec![0; geom.chunk.len()],
                    address: a,
                    size,
                    filter_mask,
                });
            }
            ChunkIndex::Implicit { address: Some(a) } => {
                // Checked: a hostile maximum extent must not wrap the count.
                let n = geom
                    .grid
                    .iter()
                    .try_fold(1u64, |a, g| a.checked_mul(*g))
                    .unwrap_or(u64::MAX);
                if n > self.opts.max_chunks_per_dataset {
                    st.error = Some(format!("implicit index of {n} chunks exceeds the limit"));
                } else {
                    let cb = geom.chunk_bytes();
                    for k in 0..n {
                        let offset = geom.offset_of(k);
                        if geom.in_extent(&offset) {
                            st.chunks.push(Chunk {
                                offset,
                                address: a.saturating_add(k.saturating_mul(cb)),
                                size: cb,
                                filter_mask: 0,
                            });
                        }
                    }
                }
            }
            ChunkIndex::FixedArray {
                address: Some(a), ..
            } if addr_ok(a) => {
                st.pending = 1;
                self.push(a, 64, JobKind::FaHeader { ds });
            }
            ChunkIndex::ExtensibleArray { address: Some(a) } if addr_ok(a) => {
                st.pending = 1;
                self.push(a, 128, JobKind::EaHeader { ds });
            }
            ChunkIndex::BTreeV2 { address: Some(a) } if addr_ok(a) => {
                self.request_btree2(a)?;
            }
            ChunkIndex::BTreeV1 { address: Some(a) }
            | ChunkIndex::FixedArray {
                address: Some(a), ..
            }
            | ChunkIndex::ExtensibleArray { address: Some(a) }
            | ChunkIndex::BTreeV2 { address: Some(a) } => {
                st.error = Some(format!(
                    "chunk index address {a:#x} is past the end of the file"
                ));
            }
            _ => {} // never written: no chunks
        }
        st.geom = Some(geom);
        self.chunk_states.insert(ds, st);
        Ok(())
    }

    /// Fetch the global heap collections that attribute values point into.
    fn request_vlen_collections(&mut self) -> Result<(), Error> {
        let mut need = Vec::new();
        let addrs: Vec<u64> = self.headers.keys().copied().collect();
        for addr in addrs {
            for a in self.attribute_messages(addr)? {
                let Some(dt) = self.attr_datatype(addr, &a)? else {
                    continue;
                };
                if !has_vlen(&dt) {
                    continue;
                }
                let count = a.dataspace.num_elements();
                let gheaps = &self.gheaps;
                let lookup = |id: value::GlobalId| {
                    gheaps
                        .get(&id.0)
                        .and_then(|c| c.objects.get(&(id.1 as u16)).cloned())
                };
                if let Ok(d) = value::decode(&dt, count, &a.data, &self.ctx, &lookup) {
                    need.extend(d.missing);
                }
            }
        }
        need.sort_unstable();
        need.dedup();
        for a in need {
            if !self.gheaps.contains_key(&a) {
                self.request_gheap(a)?;
            }
        }
        Ok(())
    }

    /// Every attribute message of an object: compact ones and dense ones.
    fn attribute_messages(&mut self, addr: u64) -> Result<Vec<AttributeMessage>, Error> {
        let ctx = self.ctx;
        let mut out = Vec::new();
        for m in self.msgs(addr, oh::MSG_ATTRIBUTE) {
            let Some(m) = self.unshared(addr, &m)? else {
                continue;
            };
            out.push(self.parse_msg(addr, &m, "attribute message", |i| attribute(i, &ctx))?);
        }
        for m in self.msgs(addr, oh::MSG_ATTRIBUTE_INFO) {
            let ai: AttributeInfo = self.parse_msg(addr, &m, "attribute info message", |i| {
                attribute_info(i, &ctx)
            })?;
            let (Some(heap), Some(bt)) = (ai.fractal_heap, ai.name_index) else {
                continue;
            };
            let Some(ts) = self.btrees.get(&bt) else {
                continue;
            };
            let records = ts.records.clone();
            for r in records {
                // Type 8 record: heap id (8) + flags (1) + creation order (4) + hash (4).
                let (Some(id), Some(flags)) = (r.get(..8), r.get(8)) else {
                    return Err(self.format_err("attribute name index", bt, "record too short"));
                };
                let Some(body) = self.heap_object(heap, id)? else {
                    self.request_huge(heap, id)?;
                    continue;
                };
                let raw = RawMessage {
                    kind: oh::MSG_ATTRIBUTE,
                    flags: *flags,
                    creation_order: None,
                    body,
                };
                let Some(raw) = self.unshared(addr, &raw)? else {
                    continue;
                };
                out.push(self.parse_msg(heap, &raw, "dense attribute message", |i| {
                    attribute(i, &ctx)
                })?);
            }
        }
        Ok(out)
    }

    fn attr_datatype(&self, owner: u64, a: &AttributeMessage) -> Result<Option<Datatype>, Error> {
        match &a.datatype {
            MaybeShared::Inline(d) => Ok(Some(d.clone())),
            MaybeShared::Shared(s) => self.resolve_shared_datatype(owner, *s, 0),
        }
    }

    // -----------------------------------------------------------------------
    // Assembly: the model
    // -----------------------------------------------------------------------

    fn assemble(&mut self) -> Result<File, Error> {
        let root = self.sb.root_object_header;
        let mut visited = HashMap::new();
        visited.insert(root, "/".to_string());
        let mut soft = Vec::new();
        let mut group = self.build_group(root, "/".to_string(), &mut visited, &mut soft, 0)?;
        // Resolve soft links now that every canonical path is known.
        let by_path: HashMap<&String, u64> = visited.iter().map(|(a, p)| (p, *a)).collect();
        let resolved: Vec<(String, String, Option<u64>)> = soft
            .into_iter()
            .map(|(group_path, name, target): (String, String, String)| {
                let abs = if target.starts_with('/') {
                    target.clone()
                } else {
                    join(&group_path, &target)
                };
                let a = by_path.get(&abs).copied();
                (group_path, name, a)
            })
            .collect();
        fill_soft_targets(&mut group, &resolved);
        Ok(File {
            source: self.name.clone(),
            size: self.size,
            superblock_version: self.sb.version,
            base_address: self.ctx.base,
            size_of_offsets: self.ctx.size_of_offsets,
            size_of_lengths: self.ctx.size_of_lengths,
            root: group,
        })
    }

    fn build_group(
        &mut self,
        addr: u64,
        path: String,
        visited: &mut HashMap<u64, String>,
        soft: &mut Vec<(String, String, String)>,
        depth: u32,
    ) -> Result<Group, Error> {
        if depth > 512 {
            return Err(self.format_err("group", addr, "groups nested more than 512 deep"));
        }
        let attributes = self.attributes(addr)?;
        let mut links = self.links_of(addr)?.unwrap_or_default();
        links.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        let mut g = Group {
            path: path.clone(),
            address: addr,
            attributes,
            groups: vec![],
            datasets: vec![],
            datatypes: vec![],
            other_links: vec![],
        };
        for l in links {
            let child_path = join(&path, &l.name);
            match l.target {
                LinkTarget::Hard(a) => {
                    if let Some(canonical) = visited.get(&a) {
                        g.other_links.push(OtherLink::Hard {
                            name: l.name,
                            address: a,
                            canonical_path: canonical.clone(),
                        });
                        continue;
                    }
                    visited.insert(a, child_path.clone());
                    if self.links_of(a)?.is_some() {
                        let child = self.build_group(a, child_path, visited, soft, depth + 1)?;
                        g.groups.push(child);
                    } else if !self.msgs(a, oh::MSG_LAYOUT).is_empty() {
                        g.datasets.push(self.build_dataset(a, child_path)?);
                    } else if let Some(dt) = self.datatype_of(a, 0)? {
                        g.datatypes.push(NamedDatatype {
                            path: child_path,
                            address: a,
                            datatype: dt,
                        });
                    } else {
                        // An object with no recognisable role: treat as an empty group.
                        let child = self.build_group(a, child_path, visited, soft, depth + 1)?;
                        g.groups.push(child);
                    }
                }
                LinkTarget::Soft(target) => {
                    soft.push((path.clone(), l.name.clone(), target.clone()));
                    g.other_links.push(OtherLink::Soft {
                        name: l.name,
                        target,
                        target_address: None,
                    });
                }
                LinkTarget::External { file, object } => g.other_links.push(OtherLink::External {
                    name: l.name,
                    file,
                    object,
                }),
                LinkTarget::Other(t) => g.other_links.push(OtherLink::External {
                    name: l.name,
                    file: format!("<user-defined link type {t}>"),
                    object: String::new(),
                }),
            }
        }
        Ok(g)
    }

    fn attributes(&mut self, addr: u64) -> Result<Vec<Attribute>, Error> {
        let msgs = self.attribute_messages(addr)?;
        let mut out = Vec::with_capacity(msgs.len());
        for a in msgs {
            let Some(dt) = self.attr_datatype(addr, &a)? else {
                return Err(self.format_err(
                    "attribute",
                    addr,
                    format!("datatype of {} could not be resolved", a.name),
                ));
            };
            let count = a.dataspace.num_elements();
            let gheaps = &self.gheaps;
            let lookup = |id: value::GlobalId| {
                gheaps
                    .get(&id.0)
                    .and_then(|c| c.objects.get(&(id.1 as u16)).cloned())
            };
            let d = value::decode(&dt, count, &a.data, &self.ctx, &lookup)
                .map_err(|e| self.format_err("attribute", addr, format!("{}: {e}", a.name)))?;
            out.push(Attribute {
                name: a.name,
                datatype: dt,
                dataspace: a.dataspace,
                value: d.values,
            });
        }
        out.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        Ok(out)
    }

    fn build_dataset(&mut self, addr: u64, path: String) -> Result<Dataset, Error> {
        let ctx = self.ctx;
        let attributes = self.attributes(addr)?;
        let Some(dt) = self.datatype_of(addr, 0)? else {
            return Err(self.format_err("dataset object header", addr, "no datatype message"));
        };
        let space = match self.msgs(addr, oh::MSG_DATASPACE).into_iter().next() {
            Some(m) => match self.unshared(addr, &m)? {
                Some(m) => self.parse_msg(addr, &m, "dataspace message", |i| dataspace(i, &ctx))?,
                None => {
                    return Err(self.format_err(
                        "dataspace message",
                        addr,
                        "shared dataspace not found",
                    ));
                }
            },
            None => {
                return Err(self.format_err("dataset object header", addr, "no dataspace message"));
            }
        };
        let mut filters = Vec::new();
        for m in self.msgs(addr, oh::MSG_FILTER_PIPELINE) {
            if let Some(m) = self.unshared(addr, &m)? {
                filters = self.parse_msg(addr, &m, "filter pipeline message", filter_pipeline)?;
            }
        }
        let mut fill = FillValue::default();
        let mut have_new = false;
        for m in self.msgs(addr, oh::MSG_FILL_VALUE) {
            if let Some(m) = self.unshared(addr, &m)? {
                fill = self.parse_msg(addr, &m, "fill value message", fill_value)?;
                have_new = true;
            }
        }
        if !have_new {
            for m in self.msgs(addr, oh::MSG_FILL_VALUE_OLD) {
                if let Some(m) = self.unshared(addr, &m)? {
                    fill = self.parse_msg(addr, &m, "old fill value message", fill_value_old)?;
                }
            }
        }
        let mut error = None;
        let lay_msg = self.msgs(addr, oh::MSG_LAYOUT).into_iter().next();
        let layout = match lay_msg
            .map(|m| self.parse_msg(addr, &m, "data layout message", |i| layout(i, &ctx)))
        {
            None => Layout::Contiguous {
                address: None,
                size: 0,
            },
            Some(Err(e)) => {
                error = Some(e.to_string());
                Layout::Contiguous {
                    address: None,
                    size: 0,
                }
            }
            Some(Ok(DataLayout::Compact { data })) => Layout::Compact {
                size: data.len() as u64,
                data,
            },
            Some(Ok(DataLayout::Contiguous { address, size })) => {
                let size =
                    size.unwrap_or_else(|| space.num_elements().saturating_mul(dt.size() as u64));
                Layout::Contiguous { address, size }
            }
            Some(Ok(DataLayout::Virtual)) => {
                error = Some("virtual dataset layout is not supported".into());
                Layout::Virtual
            }
            Some(Ok(DataLayout::Chunked { dims, index, .. })) => {
                let kind = match index {
                    ChunkIndex::BTreeV1 { .. } => ChunkIndexKind::BTreeV1,
                    ChunkIndex::SingleChunk { .. } => ChunkIndexKind::SingleChunk,
                    ChunkIndex::Implicit { .. } => ChunkIndexKind::Implicit,
                    ChunkIndex::FixedArray { .. } => ChunkIndexKind::FixedArray,
                    ChunkIndex::ExtensibleArray { .. } => ChunkIndexKind::ExtensibleArray,
                    ChunkIndex::BTreeV2 { .. } => ChunkIndexKind::BTreeV2,
                };
                let mut chunks = Vec::new();
                if let ChunkIndex::BTreeV2 { address: Some(bt) } = index {
                    chunks = self.btree2_chunks(addr, bt, &mut error);
                } else if let Some(st) = self.chunk_states.get_mut(&addr) {
                    if let Some(e) = st.error.take() {
                        error = Some(e);
                    }
                    chunks = std::mem::take(&mut st.chunks);
                }
                chunks.sort_by(|a, b| a.offset.cmp(&b.offset));
                chunks.dedup_by(|a, b| a.offset == b.offset);
                Layout::Chunked {
                    chunk_shape: dims,
                    index: kind,
                    chunks,
                }
            }
        };
        let layout = if let Some(m) = self.msgs(addr, oh::MSG_EXTERNAL_FILES).into_iter().next() {
            error = Some("data stored in external raw files is not supported".into());
            Layout::External {
                files: self.external_files(addr, &m).unwrap_or_default(),
            }
        } else {
            layout
        };
        Ok(Dataset {
            path,
            address: addr,
            datatype: dt,
            dataspace: space,
            layout,
            filters,
            fill_value: fill,
            attributes,
            error,
        })
    }

    fn external_files(&self, addr: u64, m: &RawMessage) -> Result<Vec<ExternalFile>, Error> {
        let ctx = self.ctx;
        let (heap, slots) = self.parse_msg(addr, m, "external data files message", |i| {
            let (r, _version) = crate::parse::u8_(i)?;
            let (r, _) = crate::parse::take(r, 3)?;
            let (r, _alloc) = crate::parse::u16_(r)?;
            let (mut r, used) = crate::parse::u16_(r)?;
            let (rr, heap) = ctx.addr(r)?;
            r = rr;
            let mut slots = Vec::new();
            for _ in 0..used {
                let (rr, name) = ctx.length(r)?;
                let (rr, offset) = ctx.length(rr)?;
                let (rr, size) = ctx.length(rr)?;
                slots.push((name, offset, size));
                r = rr;
            }
            Ok((r, (heap, slots)))
        })?;
        let data = heap
            .and_then(|h| self.local_heaps.get(&h))
            .and_then(|h| h.data.clone());
        Ok(slots
            .into_iter()
            .map(|(n, offset, size)| ExternalFile {
                name: data
                    .as_ref()
                    .and_then(|d| local_heap::string_at(d, n))
                    .unwrap_or_default(),
                offset,
                size,
            })
            .collect())
    }

    fn btree2_chunks(&self, ds: u64, bt: u64, error: &mut Option<String>) -> Vec<Chunk> {
        let Some(g) = self.chunk_states.get(&ds).and_then(|s| s.geom.clone()) else {
            return vec![];
        };
        let Some(tree) = self.btrees.get(&bt) else {
            return vec![];
        };
        let Some(h) = &tree.header else { return vec![] };
        let ctx = self.ctx;
        let rank = g.chunk.len();
        let so = ctx.size_of_offsets as usize;
        let rec = h.record_size as usize;
        let filtered = h.tree_type == 11;
        let len_size = if filtered {
            rec.saturating_sub(so + 4 + 8 * rank)
        } else {
            0
        };
        if rec != so + 8 * rank + if filtered { len_size + 4 } else { 0 }
            || (filtered && !(1..=8).contains(&len_size))
        {
            *error = Some(format!(
                "{}: v2 B-tree chunk records of {rec} bytes do not match rank {rank}",
                self.name
            ));
            return vec![];
        }
        let mut out = Vec::with_capacity(tree.records.len());
        for r in &tree.records {
            let parsed: PResult<'_, Chunk> = (|| {
                let (i, a) = ctx.addr_req(r, "chunk")?;
                let (i, size, mask) = if filtered {
                    let (i, s) = crate::parse::uint(i, len_size as u8)?;
                    let (i, m) = crate::parse::u32_(i)?;
                    (i, s, m)
                } else {
                    (i, g.chunk_bytes(), 0)
                };
                let mut i = i;
                let mut offset = Vec::with_capacity(rank);
                for d in 0..rank {
                    let (ii, s) = crate::parse::u64_(i)?;
                    offset.push(s.saturating_mul(g.chunk[d]));
                    i = ii;
                }
                Ok((
                    i,
                    Chunk {
                        offset,
                        address: a,
                        size,
                        filter_mask: mask,
                    },
                ))
            })();
            match parsed {
                Ok((_, c)) if g.in_extent(&c.offset) => out.push(c),
                Ok(_) => {}
                Err(_) => {
                    *error = Some(format!(
                        "{}: bad v2 B-tree chunk record in tree at {bt:#x}",
                        self.name
                    ));
                    return vec![];
                }
            }
        }
        out
    }
}

fn message_type_bit(kind: u16) -> u32 {
    // SOHM index "message type flags": bit 0 dataspace, 1 datatype, 2 fill
    // value, 3 filter pipeline, 4 attribute.
    match kind {
        oh::MSG_DATASPACE => 0,
        oh::MSG_DATATYPE => 1,
        oh::MSG_FILL_VALUE => 2,
        oh::MSG_FILTER_PIPELINE => 3,
        oh::MSG_ATTRIBUTE => 4,
        _ => 15,
    }
}

fn parse_shared_table(bytes: &[u8], address: u64, ctx: &Ctx) -> Result<SharedTable, StructError> {
    crate::parse::run("shared message table", address, bytes, |i| {
        let (mut r, ()) = crate::parse::signature(i, b"SMTB")?;
        let mut heaps = Vec::new();
        // The number of indexes is in the superblock extension message; the
        // table ends with a checksum, so read entries until only it is left.
        let entry = 1 + 1 + 2 + 4 + 2 + 2 + 2 + 2 * ctx.size_of_offsets as usize;
        while r.len() >= entry + 4 && r.get(..4) != Some(b"SMLI") {
            let (rr, version) = crate::parse::u8_(r)?;
            if version != 0 {
                break;
            }
            let (rr, _index_type) = crate::parse::u8_(rr)?;
            let (rr, flags) = crate::parse::u16_(rr)?;
            let (rr, _min) = crate::parse::u32_(rr)?;
            let (rr, _list_cutoff) = crate::parse::u16_(rr)?;
            let (rr, _btree_cutoff) = crate::parse::u16_(rr)?;
            let (rr, _nmsgs) = crate::parse::u16_(rr)?;
            let (rr, _index) = ctx.addr(rr)?;
            let (rr, heap) = ctx.addr(rr)?;
            if let Some(h) = heap {
                heaps.push((flags, h));
            }
            r = rr;
            if heaps.len() >= 8 {
                break;
            }
        }
        Ok((r, SharedTable { heaps }))
    })
}

fn has_vlen(dt: &Datatype) -> bool {
    match dt {
        Datatype::VlenString { .. } | Datatype::VlenSequence { .. } => true,
        Datatype::Compound { members, .. } => members.iter().any(|m| has_vlen(&m.datatype)),
        Datatype::Array { base, .. } => has_vlen(base),
        _ => false,
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent.ends_with('/') {
        format!("{parent}{name}")
    } else {
        format!("{parent}/{name}")
    }
}

fn fill_soft_targets(g: &mut Group, resolved: &[(String, String, Option<u64>)]) {
    for l in g.other_links.iter_mut() {
        if let OtherLink::Soft {
            name,
            target_address,
            ..
        } = l
            && let Some((_, _, a)) = resolved.iter().find(|(p, n, _)| *p == g.path && n == name)
        {
            *target_address = *a;
        }
    }
    for c in g.groups.iter_mut() {
        fill_soft_targets(c, resolved);
    }
}

#[cfg(test)]
mod buffer_tests {
    //! Property tests of the byte cache and of coalescing against simple
    //! models, over many random cases from a fixed-seed generator (no
    //! dependency needed for that).
    use super::*;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    /// The byte at `i` of the pretend file.
    fn byte(i: u64) -> u8 {
        (i.wrapping_mul(2_654_435_761) >> 7) as u8
    }

    #[test]
    fn cache_serves_exactly_what_was_inserted() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _case in 0..300 {
            let mut cache = Cache::default();
            let mut known = vec![false; 4096];
            for _ in 0..rng.below(12) {
                let s = rng.below(4000);
                let n = rng.below(300);
                let e = (s + n).min(4096);
                cache.insert(s, Bytes::from((s..e).map(byte).collect::<Vec<_>>()));
                known[s as usize..e as usize]
                    .iter_mut()
                    .for_each(|k| *k = true);
            }
            // Extents stay disjoint and non-touching.
            let ext: Vec<(u64, u64)> = cache
                .extents
                .iter()
                .map(|(s, b)| (*s, *s + b.len() as u64))
                .collect();
            assert!(ext.windows(2).all(|w| w[0].1 < w[1].0), "{ext:?}");
            for _ in 0..50 {
                let s = rng.below(4096);
                let n = rng.below(400);
                let e = (s + n).min(4096);
                let all = known[s as usize..e as usize].iter().all(|k| *k);
                match cache.get(s, e - s) {
                    Some(b) => {
                        assert!(all, "served bytes never inserted at {s}..{e}");
                        assert!(b.iter().zip(s..).all(|(v, i)| *v == byte(i)));
                    }
                    None => assert!(!all || e == s, "{s}..{e} cached but not served"),
                }
                // Everything not cached in s..e lies inside `uncovered`.
                let u = cache.uncovered(s, e);
                for i in s..e {
                    if !known[i as usize] {
                        assert!(u.as_ref().is_some_and(|u| u.contains(&i)), "{i} missed");
                    }
                }
                if let Some(u) = u {
                    assert!(s <= u.start && u.end <= e && u.start < u.end);
                }
            }
        }
    }

    #[test]
    fn coalesce_covers_every_range_and_respects_limits() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for _case in 0..500 {
            let gap = rng.below(64);
            let max = 1 + rng.below(500);
            let input: Vec<Range<u64>> = (0..rng.below(20))
                .map(|_| {
                    let s = rng.below(2000);
                    s..s + rng.below(200)
                })
                .collect();
            let out = coalesce(input.clone(), gap, max);
            assert!(out.windows(2).all(|w| w[0].start <= w[1].start));
            for r in &input {
                assert!(
                    out.iter().any(|o| o.start <= r.start && r.end <= o.end),
                    "{r:?} not covered by {out:?}"
                );
            }
            for o in &out {
                // A merged range exceeds `max` only if one input alone did.
                let alone = input.contains(o);
                assert!(o.end - o.start <= max || alone, "{o:?} > {max}");
            }
            assert!(out.len() <= input.len());
        }
    }
}
