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
use crate::messages::layout::{ChunkIndex, DataLayout, layout};
use crate::messages::link::{attribute_info, link_info};
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
        self.spent
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
        while let Some(p) = b.get(i..).and_then(|r| find(r, b"OHDR")) {
            let at = start.saturating_add((i + p) as u64);
            if self.seen.insert(at) {
                self.roots.insert(at, 0);
            }
            i += p + 4;
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
        let mut drop = Vec::new();
        let roots: Vec<u64> = self.roots.keys().copied().collect();
        for root in roots {
            let mut p = Plan {
                ctx,
                k,
                prefix,
                wants: Vec::new(),
                missing: 0,
                visited: HashSet::new(),
                steps: 0,
                bad: false,
            };
            p.header(root);
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
                if self.spent.saturating_add(n) > budget || !self.asked.insert((r.start, r.end)) {
                    continue;
                }
                self.spent += n;
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
            self.bad = true;
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
                self.need(addr, n.max(k.probe), k.header_lookbehind);
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
