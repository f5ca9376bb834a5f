//! Speculative roots: a prefetch planner for the walk.
//!
//! The walk reaches an object header only through its parent's links, and
//! in a netCDF-4 file those sit three structures deep (root header -> link
//! heap indirect block -> direct block). Yet most headers are already in
//! memory long before: 65 of dbofs' 96 lie in the 64 KiB head, others in
//! look-behind windows. So every fetched window is scanned for version 2
//! object headers (`OHDR`) whose checksum verifies, and each becomes a
//! *speculative root*: its continuation blocks, chunk B-tree nodes (every
//! level), the small chunks and contiguous data the walk will prefetch, and
//! its dense attribute/link heap and name index are fetched in the waves
//! the walk makes anyway, each exactly as the walk will later ask for it
//! (same start and length, same look-behind), so that when a real link
//! reaches the header everything below it is already cached.
//!
//! Roots also come from references: a netCDF-4 dimension scale lists every
//! variable attached to it in its `REFERENCE_LIST` attribute (object
//! references: header addresses), and the dimension scales are created
//! first, so their headers are in the head. Their variables' headers (and
//! below them chunk B-trees and heaps) can then be fetched a wave or two
//! before the root group's link heap, deep in the file, names them. A
//! referenced header that is not cached is fetched as the walk will ask
//! for it (its probe), and believed only once its checksum verifies.
//!
//! Headers cluster: a library writing a netCDF-4 file in define mode
//! allocates the headers one after the other from the start of the file,
//! and a header cluster often runs past the head. When the head's last
//! `OHDR` signature lies in its last [`HEAD_TAIL`] bytes, the next
//! [`HEAD_EXTENSION`] bytes ride along with the second wave, so the headers
//! there (and their subtrees, a wave later) are cached before the root
//! group's link heap names them.
//!
//! The planner only decides what to fetch: it never feeds the walk. The
//! walk still parses and checks every structure from the bytes it reaches
//! by links, so the output cannot change; a speculative structure that does
//! not parse is dropped silently (and costs only its bytes). Its bytes are
//! bounded by a budget the walk adds to its metadata guard, and its ranges
//! only ride along with a wave the walk makes anyway (never one of their
//! own).

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;

use bytes::Bytes;

use crate::btree_v1;
use crate::btree_v2;
use crate::fractal_heap as fh;
use crate::messages::MaybeShared;
use crate::messages::attribute::attribute;
use crate::messages::layout::{ChunkIndex, DataLayout, layout};
use crate::messages::link::{attribute_info, link_info};
use crate::model::{Datatype, Value};
use crate::object_header::{self as oh, RawMessage};
use crate::parse::{Ctx, StructError};

pub(crate) use super::planner::Knobs;
use super::planner::{Planner, View};

/// Plans of a root that found nothing new before it is given up.
const MAX_IDLE_PLANS: u32 = 6;
/// Structures one root may visit per plan (bounds the CPU per wave).
const MAX_STEPS: usize = 20_000;
/// A speculative header claiming more than this is not believed.
const MAX_SPECULATIVE_HEADER: u64 = 64 * 1024;
/// Depth of B-trees and continuation chains followed.
const MAX_DEPTH: u32 = 16;
/// A head whose last `OHDR` signature starts this close to its end is
/// extended (the cluster of headers likely goes on past it).
const HEAD_TAIL: u64 = 8 * 1024;
/// Bytes fetched past such a head, with the second wave.
const HEAD_EXTENSION: u64 = 32 * 1024;
/// Object references taken from one attribute (a dimension scale of a
/// real file lists at most a few hundred variables).
const MAX_REFERENCES: usize = 4096;
/// Roots taken from references in all (bounds the memory and the CPU a
/// hostile file can make the planner spend on them).
const MAX_REFERENCED_ROOTS: usize = 16 * 1024;

#[derive(Default)]
pub(crate) struct Speculator {
    /// Bytes it may fetch in all.
    budget: u64,
    /// Candidate header address -> plans in a row that asked for nothing.
    roots: BTreeMap<u64, u32>,
    /// Ranges already asked for (never asked twice).
    asked: HashSet<(u64, u64)>,
    /// Candidates already tried (a root is tried once).
    seen: HashSet<u64>,
    /// Bytes of speculative ranges fetched so far.
    spent: u64,
    /// Roots known from object references, not from a fetched window:
    /// their header is fetched if it is not cached.
    referenced: HashSet<u64>,
    /// Where the head ends, if headers seem to run on past it (fetched
    /// with the next plan, once).
    extend_head: Option<u64>,
    /// The head (the first window, at offset 0) was scanned.
    head_seen: bool,
    /// Bytes fetched past the head (at most [`HEAD_EXTENSION`]).
    extension: u64,
}

impl Planner for Speculator {
    fn scan(&mut self, start: u64, b: &[u8]) {
        self.scan_window(start, b);
    }

    fn plan(&mut self, v: &View<'_>) -> Vec<Range<u64>> {
        if self.spent >= self.budget {
            return Vec::new();
        }
        let budget = self.budget;
        self.plan_within(v.ctx, v.knobs, budget, v.prefix, v.uncovered)
    }

    fn spent(&self) -> u64 {
        self.spent + self.extension
    }
}

impl Speculator {
    /// A planner that fetches at most `budget` bytes.
    pub fn new(budget: u64) -> Self {
        Speculator {
            budget,
            ..Default::default()
        }
    }

    /// Remember every `OHDR` signature in a fetched window as a candidate.
    pub fn scan_window(&mut self, start: u64, b: &[u8]) {
        let mut i = 0usize;
        let mut last = None;
        while let Some(p) = b.get(i..).and_then(|r| find(r, b"OHDR")) {
            let at = start.saturating_add((i + p) as u64);
            last = Some(at);
            if self.seen.insert(at) {
                self.roots.insert(at, 0);
            }
            i += p + 4;
        }
        if start == 0 && !self.head_seen {
            self.head_seen = true;
            let end = b.len() as u64;
            if last.is_some_and(|l| l.saturating_add(HEAD_TAIL) >= end) {
                self.extend_head = Some(end);
            }
        }
    }

    /// Ranges to fetch with the next wave, at most `budget - spent` bytes in
    /// all. `prefix` returns the cached bytes from an address (at most the
    /// length asked, fewer where the cached extent ends), `uncovered` the
    /// part of a range not cached yet.
    pub fn plan_within(
        &mut self,
        ctx: &Ctx,
        k: &Knobs,
        budget: u64,
        prefix: &dyn Fn(u64, u64) -> Option<Bytes>,
        uncovered: &dyn Fn(u64, u64) -> Option<Range<u64>>,
    ) -> Vec<Range<u64>> {
        let mut out = Vec::new();
        if let Some(e) = self.extend_head.take() {
            let end = e.saturating_add(HEAD_EXTENSION).min(k.size);
            // Bounded by its own size (once), not charged to the roots'
            // budget, which small files need whole.
            if let Some(r) = uncovered(e, end) {
                self.extension = r.end - r.start;
                self.asked.insert((r.start, r.end));
                out.push(r);
            }
        }
        let mut drop = Vec::new();
        // In address order (the budget goes to the first ones); roots
        // referenced by roots planned here are planned after them in this
        // same call (their headers ride along with this wave, not the next).
        let mut roots: std::collections::VecDeque<u64> = self.roots.keys().copied().collect();
        while let Some(root) = roots.pop_front() {
            let mut p = Plan {
                ctx,
                k,
                prefix,
                wants: Vec::new(),
                missing: 0,
                visited: HashSet::new(),
                steps: 0,
                bad: false,
                fetch_root: self.referenced.contains(&root),
                references: Vec::new(),
            };
            p.header(root);
            for r in std::mem::take(&mut p.references) {
                if r < k.size && self.referenced.len() < MAX_REFERENCED_ROOTS && self.seen.insert(r)
                {
                    tracing::debug!(
                        target: "hdf5_lite::wave",
                        structure = "referenced header",
                        by = format_args!("{root:#x}"),
                        addr = format_args!("{r:#x}"),
                    );
                    self.roots.insert(r, 0);
                    self.referenced.insert(r);
                    roots.push_back(r);
                }
            }
            if p.bad || p.missing == 0 {
                // Not a header, or everything below it is cached: done.
                drop.push(root);
                continue;
            }
            let mut asked_new = false;
            for r in p.wants {
                let Some(r) = uncovered(r.start, r.end) else {
                    continue;
                };
                let n = r.end - r.start;
                if self.spent.saturating_add(n) > budget {
                    tracing::debug!(
                        target: "hdf5_lite::wave",
                        structure = "over speculative budget",
                        root = format_args!("{root:#x}"),
                        fetch = format_args!("{:#x}..{:#x}", r.start, r.end),
                        spent = self.spent,
                    );
                    continue;
                }
                if !self.asked.insert((r.start, r.end)) {
                    continue;
                }
                self.spent += n;
                tracing::trace!(
                    target: "hdf5_lite::wave",
                    structure = "speculative",
                    root = format_args!("{root:#x}"),
                    fetch = format_args!("{:#x}..{:#x}", r.start, r.end),
                );
                asked_new = true;
                out.push(r);
            }
            if let Some(idle) = self.roots.get_mut(&root) {
                *idle = if asked_new { 0 } else { *idle + 1 };
                if *idle > MAX_IDLE_PLANS {
                    drop.push(root);
                }
            }
        }
        for r in drop {
            if self.roots.remove(&r).is_some() {
                tracing::debug!(address = r, "speculative root finished or dropped");
            }
        }
        out
    }
}

fn find(hay: &[u8], needle: &[u8; 4]) -> Option<usize> {
    hay.windows(4).position(|w| w == needle)
}

/// One plan of one root: walks what is cached, collects what is not.
struct Plan<'a> {
    ctx: &'a Ctx,
    k: &'a Knobs,
    prefix: &'a dyn Fn(u64, u64) -> Option<Bytes>,
    wants: Vec<Range<u64>>,
    /// Structures reached but not cached.
    missing: usize,
    visited: HashSet<(u8, u64)>,
    steps: usize,
    /// The root is not a verifiable object header.
    bad: bool,
    /// The root's header may be fetched (a referenced root; a scanned one
    /// is believed only from the window it was found in).
    fetch_root: bool,
    /// Object header addresses from `REFERENCE_LIST` attributes.
    references: Vec<u64>,
}

impl Plan<'_> {
    /// The cached bytes of `addr..addr+len` (clamped to the file), or a want
    /// for them with `behind` bytes of look-behind.
    fn need(&mut self, addr: u64, len: u64, behind: u64) -> Option<Bytes> {
        self.need_around(addr, len, behind, 0)
    }

    /// [`Plan::need`], also asking for `ahead` bytes past the structure.
    fn need_around(&mut self, addr: u64, len: u64, behind: u64, ahead: u64) -> Option<Bytes> {
        let len = len.min(self.k.size.saturating_sub(addr));
        if len == 0 {
            return None;
        }
        if let Some(b) = (self.prefix)(addr, len).filter(|b| b.len() as u64 == len) {
            return Some(b);
        }
        self.missing += 1;
        let end = addr.saturating_add(len);
        let ahead = end.saturating_add(ahead).min(self.k.size).max(end);
        self.wants.push(addr.saturating_sub(behind)..ahead);
        None
    }

    /// Fetch-and-parse as the walk does it: a cached prefix that parses is
    /// enough (`Walker::fits_cached_prefix`); else start with `len` bytes,
    /// and on "short" ask for what the parser says (or 4x), like
    /// `Walker::retry`.
    fn parsed<T>(
        &mut self,
        addr: u64,
        len: u64,
        (behind, ahead): (u64, u64),
        parse: impl Fn(&Bytes) -> Result<T, StructError>,
    ) -> Option<T> {
        let len = len.min(self.k.size.saturating_sub(addr));
        if let Some(Ok(v)) = (self.prefix)(addr, len).map(|b| parse(&b)) {
            return Some(v);
        }
        let mut len = len;
        for _ in 0..4 {
            let b = self.need_around(addr, len, behind, ahead)?;
            match parse(&b) {
                Ok(v) => return Some(v),
                Err(StructError::Short { need }) => {
                    let want = match need {
                        Some(n) if n > b.len() as u64 => n,
                        Some(_) => return None,
                        None => len.max(64).saturating_mul(4),
                    };
                    if want > MAX_SPECULATIVE_HEADER.max(len) * 16
                        || addr.saturating_add(want) > self.k.size
                    {
                        return None;
                    }
                    len = want;
                }
                Err(StructError::Bad(e)) => {
                    tracing::debug!(error = %e, "speculative structure dropped");
                    return None;
                }
            }
        }
        None
    }

    fn step(&mut self, tag: u8, addr: u64) -> bool {
        self.steps += 1;
        self.steps <= MAX_STEPS && addr < self.k.size && self.visited.insert((tag, addr))
    }

    fn header(&mut self, addr: u64) {
        if !self.step(0, addr) {
            return;
        }
        let (ctx, k) = (*self.ctx, self.k.clone());
        // Verify before believing: a v2 header is checksummed; a signature
        // with a claimed size past any real header is not one.
        let Some(b) = (self.prefix)(addr, k.probe.min(k.size.saturating_sub(addr))) else {
            if self.fetch_root {
                // Asked as the walk asks for a header, minus the
                // look-behind: its subtree is fetched explicitly.
                self.need(addr, k.probe, 0);
            } else {
                self.bad = true;
            }
            return;
        };
        let block = match oh::parse_header(&b, addr, &ctx) {
            Ok(h) if h.version == 2 => h,
            Ok(_) => {
                self.bad = true;
                return;
            }
            Err(StructError::Short { need: Some(n) })
                if n > b.len() as u64 && n <= MAX_SPECULATIVE_HEADER =>
            {
                // Unverified yet: fetch the whole block, decide next wave.
                let behind = if self.fetch_root {
                    0
                } else {
                    k.header_lookbehind
                };
                self.need(addr, n.max(k.probe), behind);
                return;
            }
            Err(_) => {
                self.bad = true;
                return;
            }
        };
        let mut messages = block.messages;
        let mut conts: Vec<(oh::Continuation, u32)> =
            block.continuations.into_iter().map(|c| (c, 0)).collect();
        while let Some((c, depth)) = conts.pop() {
            if depth > MAX_DEPTH || !self.step(1, c.address) {
                continue;
            }
            let Some(b) = self.need(c.address, c.length, k.header_lookbehind) else {
                continue;
            };
            match oh::parse_continuation(&b, c, block.version, block.flags, &ctx) {
                Ok(more) => {
                    messages.extend(more.messages);
                    conts.extend(more.continuations.into_iter().map(|c| (c, depth + 1)));
                }
                Err(e) => tracing::debug!(?e, "speculative continuation dropped"),
            }
        }
        for m in &messages {
            self.message(addr, m);
        }
    }

    fn message(&mut self, owner: u64, m: &RawMessage) {
        let ctx = *self.ctx;
        if m.flags & oh::FLAG_SHARED != 0 {
            return;
        }
        match m.kind {
            oh::MSG_LAYOUT => {
                let Ok(lay) =
                    crate::parse::run("data layout message", owner, &m.body, |i| layout(i, &ctx))
                else {
                    return;
                };
                match lay {
                    DataLayout::Chunked {
                        dims,
                        index: ChunkIndex::BTreeV1 { address: Some(a) },
                        ..
                    } => self.chunk_node(a, dims.len(), 0),
                    DataLayout::Contiguous {
                        address: Some(a),
                        size: Some(n),
                    } => self.data(a, n),
                    _ => {}
                }
            }
            oh::MSG_ATTRIBUTE_INFO => {
                if let Ok(ai) = crate::parse::run("attribute info message", owner, &m.body, |i| {
                    attribute_info(i, &ctx)
                }) && let (Some(h), Some(b)) = (ai.fractal_heap, ai.name_index)
                {
                    self.fheap(h);
                    self.btree2(b);
                }
            }
            oh::MSG_ATTRIBUTE => {
                if let Ok(a) =
                    crate::parse::run("attribute message", owner, &m.body, |i| attribute(i, &ctx))
                    && a.name == "REFERENCE_LIST"
                {
                    self.reference_list(&a.datatype, &a.data);
                }
            }
            oh::MSG_LINK_INFO => {
                if let Ok(li) =
                    crate::parse::run("link info message", owner, &m.body, |i| link_info(i, &ctx))
                    && let (Some(h), Some(b)) = (li.fractal_heap, li.name_index)
                {
                    self.fheap(h);
                    self.btree2(b);
                }
            }
            _ => {}
        }
    }

    /// The object references of a dimension scale's `REFERENCE_LIST` (a
    /// compound of an object reference and a dimension index per attached
    /// variable) become roots; decoded as attribute values are, at most
    /// [`MAX_REFERENCES`] elements.
    fn reference_list(&mut self, dt: &MaybeShared, data: &[u8]) {
        let MaybeShared::Inline(dt @ Datatype::Compound { .. }) = dt else {
            return;
        };
        let size = dt.size() as usize;
        if size == 0 {
            return;
        }
        let count = (data.len() / size).min(MAX_REFERENCES) as u64;
        let Ok(d) = crate::value::decode(dt, count, data, self.ctx, &|_| None) else {
            return;
        };
        for v in &d.values {
            if let Value::Compound(fields) = v {
                self.references
                    .extend(fields.iter().filter_map(|(_, f)| match f {
                        Value::ObjectRef(a) => Some(*a),
                        _ => None,
                    }));
            }
        }
    }

    /// Small data the walk prefetches for `refs` (`Options::prefetch_below`).
    fn data(&mut self, addr: u64, n: u64) {
        if n > 0 && n < self.k.prefetch_below && addr.saturating_add(n) <= self.k.size {
            self.need(addr, n, 0);
        }
    }

    fn chunk_node(&mut self, addr: u64, rank: usize, depth: u32) {
        if depth > MAX_DEPTH || !self.step(2, addr) {
            return;
        }
        let (ctx, k) = (*self.ctx, self.k.clone());
        let Some(node) = self.parsed(addr, k.probe, (k.lookbehind, 0), |b| {
            btree_v1::parse_chunk_node(b, addr, &ctx, rank)
        }) else {
            return;
        };
        for (key, child) in node.children {
            if node.level > 0 {
                self.chunk_node(child, rank, depth + 1);
            } else {
                self.data(child, key.size as u64);
            }
        }
    }

    fn fheap(&mut self, addr: u64) {
        if !self.step(3, addr) {
            return;
        }
        let (ctx, k) = (*self.ctx, self.k.clone());
        let Some(h) = self.parsed(
            addr,
            k.heap_probe.max(64),
            (k.lookbehind, k.lookahead),
            |b| fh::parse_header(b, addr, &ctx),
        ) else {
            return;
        };
        if let Some(bt) = h.huge_btree {
            self.btree2(bt);
        }
        let Some(root) = h.root else { return };
        if h.root_rows == 0 {
            let size = h.filtered_root_size.unwrap_or(h.start_block_size);
            self.need(root, size, k.lookbehind);
            return;
        }
        let nrows = h.root_rows as u32;
        let size = fh::indirect_size(&ctx, &h, nrows);
        let Some(b) = self.need(root, size, k.lookbehind) else {
            return;
        };
        let Ok(ib) = fh::parse_indirect(&b, root, &ctx, &h, nrows) else {
            return;
        };
        for (row, a) in &ib.direct {
            if self.step(4, *a) {
                self.need(*a, h.row_block_size(*row), k.lookbehind);
            }
        }
        for (row, a) in &ib.indirect {
            let rows = h.child_indirect_rows(*row);
            if rows > 0 && rows < nrows && self.step(4, *a) {
                self.need(*a, fh::indirect_size(&ctx, &h, rows), k.lookbehind);
            }
        }
    }

    fn btree2(&mut self, addr: u64) {
        if !self.step(5, addr) {
            return;
        }
        let (ctx, k) = (*self.ctx, self.k.clone());
        let Some(h) = self.parsed(addr, 64, (k.lookbehind, k.lookahead), |b| {
            btree_v2::parse_header(b, addr, &ctx)
        }) else {
            return;
        };
        let Some(root) = h.root else { return };
        if h.root_records == 0 && h.depth == 0 {
            return;
        }
        let Some(b) = self.need(root, h.node_size as u64, k.lookbehind) else {
            return;
        };
        if h.depth == 0 {
            return;
        }
        let geo = btree_v2::Geometry::new(&h, &ctx);
        if let Ok(node) =
            btree_v2::parse_node(&b, root, &ctx, &h, &geo, h.depth, h.root_records as u64)
        {
            for c in node.children {
                if self.step(6, c.address) {
                    self.need(c.address, h.node_size as u64, k.lookbehind);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_finds_every_signature_once() {
        let mut s = Speculator::default();
        let mut b = vec![0u8; 100];
        b[3..7].copy_from_slice(b"OHDR");
        b[96..100].copy_from_slice(b"OHDR");
        s.scan_window(1000, &b);
        s.scan_window(1000, &b);
        assert_eq!(
            s.roots.keys().copied().collect::<Vec<_>>(),
            vec![1003, 1096]
        );
    }

    fn knobs(size: u64) -> Knobs {
        Knobs {
            size,
            probe: 2048,
            heap_probe: 256,
            header_lookbehind: 8192,
            lookbehind: 2048,
            lookahead: 1024,
            prefetch_below: 500,
        }
    }

    /// A byte cache over `data` holding only the ranges "fetched" so far.
    struct Fetched {
        data: Bytes,
        have: Vec<Range<u64>>,
    }

    impl Fetched {
        fn prefix(&self, a: u64, n: u64) -> Option<Bytes> {
            let r = self.have.iter().find(|r| r.start <= a && a < r.end)?;
            let e = a.saturating_add(n).min(r.end);
            Some(self.data.slice(a as usize..e as usize))
        }
        fn uncovered(&self, a: u64, e: u64) -> Option<Range<u64>> {
            let mut s = a;
            while let Some(r) = self.have.iter().find(|r| r.start <= s && s < r.end) {
                s = r.end;
            }
            (s < e).then_some(s..e)
        }
        /// One wave: fetch what the speculator asks for, show it the bytes.
        fn wave(&mut self, s: &mut Speculator, ctx: &Ctx, k: &Knobs) -> Vec<Range<u64>> {
            let wants = {
                let get = |a, n| self.prefix(a, n);
                let unc = |a, e| self.uncovered(a, e);
                s.plan_within(ctx, k, u64::MAX, &get, &unc)
            };
            for r in &wants {
                let e = r.end.min(self.data.len() as u64);
                s.scan_window(r.start, &self.data[r.start as usize..e as usize]);
                self.have.push(r.start..e);
            }
            wants
        }
    }

    fn datasets(g: &crate::Group, out: &mut Vec<crate::Dataset>) {
        out.extend(g.datasets.iter().cloned());
        for c in &g.groups {
            datasets(c, out);
        }
    }

    /// The dimension scales in the head of a netCDF-4 file list, in their
    /// `REFERENCE_LIST`s, every variable that has dimensions; their headers
    /// are fetched by the speculator as soon as the lists are read, before
    /// any link names them. Oracle: the walk's model, whose variables with
    /// a `DIMENSION_LIST` attribute (the other half of the same HDF5
    /// dimension-scale bookkeeping) are exactly the listed ones.
    #[test]
    fn variables_listed_by_dimension_scales_are_fetched_before_their_links() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/files/ofs/dbofs.20230323/nos.dbofs.fields.f001.20230323.t12z.nc"
        );
        let data = Bytes::from(std::fs::read(path).unwrap());
        let model = crate::open_path(path).unwrap();
        let mut all = Vec::new();
        datasets(&model.root, &mut all);
        let listed: Vec<u64> = all
            .iter()
            .filter(|d| d.attributes.iter().any(|a| a.name == "DIMENSION_LIST"))
            .map(|d| d.address)
            .collect();
        let head = 64 * 1024;
        // Most of these headers lie past the head (else nothing is tested).
        assert!(
            listed.iter().filter(|a| **a >= head).count() >= 10,
            "{listed:?}"
        );
        let (ctx, k) = (Ctx::new(8, 8, 0), knobs(data.len() as u64));
        let mut f = Fetched {
            data: data.clone(),
            have: vec![0..head],
        };
        let mut s = Speculator::new(u64::MAX);
        s.scan_window(0, &data[..head as usize]);
        // Wave 2: the scales' continuation blocks (their lists); wave 3:
        // the listed headers.
        f.wave(&mut s, &ctx, &k);
        f.wave(&mut s, &ctx, &k);
        for a in &listed {
            assert!(s.seen.contains(a), "{a:#x} not a root");
            assert!(
                f.uncovered(*a, a + 64).is_none(),
                "header {a:#x} not fetched in 2 waves"
            );
        }
        // Nothing is taken for a header that was not listed or scanned.
        assert!(s.referenced.iter().all(|a| listed.contains(a)));
    }

    /// A referenced address is fetched once (its probe) and believed only
    /// if a checksummed header is there: garbage is dropped, with no
    /// further request.
    #[test]
    fn a_reference_to_garbage_costs_one_probe_and_is_dropped() {
        let data = Bytes::from(vec![0xabu8; 64 * 1024]);
        let (ctx, k) = (Ctx::new(8, 8, 0), knobs(data.len() as u64));
        let mut f = Fetched {
            data,
            have: vec![0..1024],
        };
        let mut s = Speculator::new(u64::MAX);
        s.seen.insert(8192);
        s.roots.insert(8192, 0);
        s.referenced.insert(8192);
        assert_eq!(f.wave(&mut s, &ctx, &k), vec![8192..8192 + 2048]);
        assert!(f.wave(&mut s, &ctx, &k).is_empty());
        assert!(s.roots.is_empty());
    }

    /// A head whose last `OHDR` lies near its end is extended once, in the
    /// second wave; one whose headers end well before its end is not.
    #[test]
    fn a_head_ending_in_headers_is_extended_once() {
        let size = 1 << 20;
        let (ctx, k) = (Ctx::new(8, 8, 0), knobs(size));
        for (sig_at, extended) in [(60 * 1024, true), (20 * 1024, false)] {
            let mut head = vec![0u8; 64 * 1024];
            head[sig_at..sig_at + 4].copy_from_slice(b"OHDR");
            let mut data = head.clone();
            data.resize(size as usize, 0);
            let mut f = Fetched {
                data: Bytes::from(data),
                have: vec![0..head.len() as u64],
            };
            let mut s = Speculator::new(u64::MAX);
            s.scan_window(0, &head);
            let wants = f.wave(&mut s, &ctx, &k);
            let ext = 64 * 1024..(64 + 32) * 1024;
            assert_eq!(wants.contains(&ext), extended, "{wants:?}");
            assert_eq!(s.spent(), if extended { 32 * 1024 } else { 0 });
            assert!(!f.wave(&mut s, &ctx, &k).contains(&ext));
        }
    }

    #[test]
    fn a_false_signature_is_dropped_without_asking_for_bytes() {
        let mut s = Speculator::default();
        let mut b = vec![0xffu8; 4096];
        b[10..14].copy_from_slice(b"OHDR");
        s.scan_window(0, &b);
        let data = Bytes::from(b);
        let k = Knobs {
            size: 4096,
            probe: 2048,
            heap_probe: 512,
            header_lookbehind: 8192,
            lookbehind: 2048,
            lookahead: 1024,
            prefetch_below: 500,
        };
        let get = |a: u64, n: u64| {
            let e = a.saturating_add(n).min(data.len() as u64);
            (a < e).then(|| data.slice(a as usize..e as usize))
        };
        let unc = |a: u64, b: u64| (b > 4096).then_some(4096.max(a)..b);
        let wants = s.plan_within(&Ctx::new(8, 8, 0), &k, u64::MAX, &get, &unc);
        assert!(wants.is_empty(), "{wants:?}");
        assert!(s.roots.is_empty());
    }
}
