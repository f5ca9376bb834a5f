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
use crate::messages::external_files;
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
use crate::sohm;
use crate::source::{RangeSource, SourceError, SourceErrorKind};
use crate::superblock::{self, Superblock};
use crate::value;
use planner::Planner;
use speculate::Speculator;

/// Run a structure's parser in a handler (`attempt!(self, job, had,
/// structure, parse(..))`): the parsed value, or return from the handler,
/// queueing the job again with more bytes when the parser says "short",
/// failing with the file's name when it says "malformed".
macro_rules! attempt {
    ($w:expr, $job:expr, $had:expr, $structure:expr, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(StructError::Short { need }) => return $w.retry($job, $had, need, $structure),
            Err(StructError::Bad(e)) => {
                return Err(Error::Format {
                    file: $w.name.clone(),
                    error: e,
                });
            }
        }
    };
}

mod assemble;
mod btree_v2_nodes;
mod buffers;
mod chunks;
mod decoder;
mod handle;
mod heaps;
mod links;
mod object_headers;
mod objects;
mod outstanding;
mod planner;
mod predict;
mod requests;
pub(crate) mod speculate;

use buffers::Cache;
pub use buffers::{Prefetched, coalesce};
use chunks::ChunkState;
pub use decoder::{Decoded, Decoder, Poll};
use outstanding::Outstanding;
pub(crate) use planner::first_wave;

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
    /// (`walk::speculate`): structures below object headers found in
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
    // The async driver of the sans-IO decoder: it only moves bytes.
    let name = source.name().to_string();
    let source_err = |error| Error::Source {
        file: name.clone(),
        error,
    };
    let mut d = Decoder::new(name.clone(), options.clone());
    loop {
        match d.poll()? {
            Poll::Need(ranges) => {
                let got = source.get_ranges(&ranges).await.map_err(source_err)?;
                for (r, b) in ranges.into_iter().zip(got) {
                    d.push(r, b);
                }
            }
            Poll::NeedSize => d.push_size(source.size().await.map_err(source_err)?),
            Poll::Done(done) => return Ok(done.into_prefetched(source)),
        }
    }
}

/// Blocking convenience for tests and tools: open a local file.
pub fn open_path(path: impl AsRef<std::path::Path>) -> Result<File, Error> {
    let source: Arc<dyn RangeSource> = Arc::new(crate::source::FileSource::new(path));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Source {
            file: source.name().to_string(),
            error: SourceError::new(
                SourceErrorKind::Transient,
                format!("cannot start runtime: {e}"),
            ),
        })?;
    rt.block_on(async { open(source, &Options::default()).await.map(|(f, _)| f) })
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

impl JobKind {
    /// The structure's name, for the per-wave debug log.
    fn name(&self) -> &'static str {
        match self {
            JobKind::Header => "object header",
            JobKind::Continuation { .. } => "continuation",
            JobKind::LocalHeap => "local heap",
            JobKind::LocalHeapData { .. } => "local heap data",
            JobKind::GroupNode { .. } => "group node",
            JobKind::SymbolNode { .. } => "symbol node",
            JobKind::HeapHeader => "fractal heap header",
            JobKind::HeapDirect { .. } => "heap direct block",
            JobKind::HeapIndirect { .. } => "heap indirect block",
            JobKind::BTree2Header => "v2 B-tree header",
            JobKind::BTree2Node { .. } => "v2 B-tree node",
            JobKind::GlobalHeap => "global heap",
            JobKind::Blob => "huge object",
            JobKind::ChunkNode { .. } => "chunk B-tree node",
            JobKind::FaHeader { .. } => "fixed array header",
            JobKind::FaData { .. } => "fixed array data",
            JobKind::EaHeader { .. } => "extensible array header",
            JobKind::EaIndex { .. } => "extensible array index",
            JobKind::EaSecondary { .. } => "extensible array secondary",
            JobKind::EaData { .. } => "extensible array data",
            JobKind::SharedTable => "shared message table",
            JobKind::Data => "data",
        }
    }
}

/// One planned wave: its jobs and the ranges fetched for them.
struct Wave {
    jobs: Vec<Job>,
    /// Jobs served by a cached prefix shorter than their probe.
    short_ok: HashSet<usize>,
    ranges: Vec<Range<u64>>,
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
    /// Continuation blocks asked for and not parsed yet.
    outstanding: Outstanding,
    seen_blocks: HashSet<u64>,
    parsed_first: bool,
    expanded: bool,
    /// The object's links were resolved and its children requested.
    children_requested: bool,
}

impl HeaderState {
    fn complete(&self) -> bool {
        self.parsed_first && self.outstanding.is_empty()
    }
}

#[derive(Default)]
struct LocalHeapState {
    data: Option<Bytes>,
}

/// An old-style group's B-tree walk: symbol entries gathered from SNODs.
#[derive(Default)]
struct GroupTreeState {
    outstanding: Outstanding,
    visited: HashSet<u64>,
    entries: Vec<btree_v1::SymbolEntry>,
    error: Option<FormatError>,
}

#[derive(Default)]
struct FHeapState {
    header: Option<fh::Header>,
    outstanding: Outstanding,
    visited: HashSet<u64>,
    direct: BTreeMap<u64, Bytes>,
}

#[derive(Default)]
struct BTree2State {
    header: Option<btree_v2::Header>,
    geometry: Option<btree_v2::Geometry>,
    outstanding: Outstanding,
    visited: HashSet<u64>,
    records: Vec<Bytes>,
}

struct Walker {
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
    shared_table: Option<sohm::Table>,
    /// Shared resources already asked for: (tag, address, length). The
    /// length is part of the key (not mixed into the address), so two
    /// requests can only be merged when they are the same request.
    requested: HashSet<(u8, u64, u64)>,
    /// Extents of every structure parsed, for `Stats::metadata_bytes`.
    parsed: Vec<(u64, u64)>,
    /// The bytes handed to the parsers (every job's range as served, the
    /// superblock): the layout a sibling file is predicted to need
    /// ([`Decoded`]'s `layout`). Not what was fetched: windows, predicted
    /// ranges and speculation the walk never used stay out, so a series'
    /// stored layout does not grow from file to file.
    served: Vec<Range<u64>>,
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
    /// Prefetch planners (`walk::planner`): layout prediction, speculative
    /// roots.
    planners: Vec<Box<dyn Planner>>,
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
    /// The walk of a file whose superblock (at `at`) parsed, with what the
    /// bootstrap fetched so far.
    fn new(
        name: String,
        opts: Options,
        size: u64,
        (at, sb): (u64, Superblock),
        cache: Cache,
        stats: Stats,
        mut planners: Vec<Box<dyn Planner>>,
    ) -> Result<Walker, Error> {
        let ctx = sb.ctx;
        if opts.speculative_budget > 0 {
            // Also capped at 1.5% of the file (at least 64 KiB).
            let budget = opts.speculative_budget.min((size / 64).max(64 * 1024));
            planners.push(Box::new(Speculator::new(budget)));
        }
        let mut w = Walker {
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
            served: Vec::new(),
            page_size: None,
            data_planned: HashSet::new(),
            prefetch_bytes: 0,
            vlen_planned: false,
            planners,
        };
        for (s, b) in &w.cache.extents {
            for p in &mut w.planners {
                p.scan(*s, b);
            }
        }
        let sb_size = w.sb.size;
        w.used(at, sb_size);
        w.served.push(at..at.saturating_add(sb_size));
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

    // -----------------------------------------------------------------------
    // The wave loop
    // -----------------------------------------------------------------------

    /// Take the queued jobs and plan their wave: the ranges to fetch
    /// (empty when the cache serves every job).
    fn plan_wave(&mut self) -> Result<Wave, Error> {
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
                if tracing::enabled!(target: "hdf5_lite::wave", tracing::Level::DEBUG) {
                    tracing::debug!(
                        target: "hdf5_lite::wave",
                        wave = self.stats.waves + 1,
                        structure = j.kind.name(),
                        addr = format_args!("{:#x}", j.addr),
                        len = j.len,
                        fetch = format_args!("{:#x}..{:#x}", r.start, r.end),
                    );
                }
                missing.push(self.page_align(r));
            }
        }
        let mut ranges = Vec::new();
        if !missing.is_empty() {
            if self.stats.waves >= self.opts.max_waves {
                return Err(Error::Limit {
                    file: self.name.clone(),
                    what: format!("more than {} sequential reads", self.opts.max_waves),
                });
            }
            // Planned prefetch rides along with a wave the walk makes anyway.
            let ahead = self.plan_ahead();
            if tracing::enabled!(target: "hdf5_lite::wave", tracing::Level::DEBUG) {
                for r in &ahead {
                    tracing::debug!(
                        target: "hdf5_lite::wave",
                        wave = self.stats.waves + 1,
                        structure = "planned",
                        fetch = format_args!("{:#x}..{:#x}", r.start, r.end),
                    );
                }
            }
            missing.extend(ahead);
            ranges = coalesce(missing, self.opts.coalesce_gap, self.opts.max_request);
            let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
            // Prefetched data (at most `prefetch_budget`, planned into
            // `prefetch_bytes` before it is fetched) has its own bound and is
            // not metadata: it is allowed on top of the metadata limit.
            let allowed = self
                .opts
                .max_metadata_bytes
                .saturating_add(self.prefetch_bytes)
                .saturating_add(self.planners.iter().map(|p| p.spent()).sum());
            if self.stats.bytes_fetched.saturating_add(total) > allowed {
                return Err(Error::Limit {
                    file: self.name.clone(),
                    what: format!(
                        "more than {} bytes of metadata",
                        self.opts.max_metadata_bytes
                    ),
                });
            }
        }
        Ok(Wave {
            jobs,
            short_ok,
            ranges,
        })
    }

    /// Take in a wave's bytes (one per range, in order) and handle its jobs.
    fn finish_wave(&mut self, wave: Wave, got: Vec<Bytes>) -> Result<(), Error> {
        if !wave.ranges.is_empty() {
            self.stats.waves += 1;
            self.stats.requests += wave.ranges.len() as u64;
        }
        for (r, b) in wave.ranges.iter().zip(got) {
            self.stats.bytes_fetched += b.len() as u64;
            for p in &mut self.planners {
                p.scan(r.start, &b);
            }
            self.cache.insert(r.start, b);
        }
        for (n, j) in wave.jobs.into_iter().enumerate() {
            let len = j.len.min(self.size.saturating_sub(j.addr));
            let bytes = if wave.short_ok.contains(&n) {
                self.cache.get_prefix(j.addr, len)
            } else {
                self.cache.get(j.addr, len)
            }
            .unwrap_or_default();
            if !bytes.is_empty() {
                // A warm run asks for the same jobs: having exactly these
                // bytes cached, it needs no request for any of them.
                self.served.push(j.addr..j.addr + bytes.len() as u64);
            }
            self.handle(j, bytes)?;
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

    /// Ranges the planners want fetched with this wave.
    fn plan_ahead(&mut self) -> Vec<Range<u64>> {
        let knobs = planner::Knobs {
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
        let view = planner::View {
            ctx: &self.ctx,
            knobs: &knobs,
            prefix: &get,
            uncovered: &uncovered,
        };
        let mut wants = Vec::new();
        for p in &mut self.planners {
            wants.extend(p.plan(&view));
        }
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
                    Some(t) if !t.outstanding.is_empty() => continue,
                    _ => self
                        .btree2_chunks(ds, bt, &mut None)
                        .iter()
                        .map(|c| (c.address, c.size))
                        .collect(),
                },
                DataLayout::Chunked { .. } => match self.chunk_states.get(&ds) {
                    Some(st) if !st.outstanding.is_empty() => continue,
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
            && self.group_trees.values().all(|t| t.outstanding.is_empty())
            && self.fheaps.values().all(|h| h.outstanding.is_empty())
            && self.btrees.values().all(|b| b.outstanding.is_empty())
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

    // -----------------------------------------------------------------------
    // Assembly: the model
    // -----------------------------------------------------------------------
}
