//! Fuzz harness bodies for hdf5-lite, shared verbatim by the cargo-fuzz
//! targets (`fuzz/fuzz_targets/*.rs`, via `kerchunk_nos_fuzz::hdf5`) and the
//! stable regression replay (`hdf5-lite/tests/fuzz_regressions.rs`, via
//! `#[path]`), so a regression test runs exactly the code the fuzzer ran.
//!
//! Structure targets call the pure parsers with a fixed [`Ctx`] (8-byte
//! offsets and lengths, base 0). Extra arguments (rank, depth, nrows, ...)
//! come from the first bytes of the input, or from a header parsed out of
//! the input the way the walker derives them. Every function returns
//! normally for every input; a panic (or OOM / timeout under libFuzzer) is a
//! finding.
#![allow(dead_code)]

#[path = "common.rs"]
mod common;

use std::sync::Arc;

use bytes::Bytes;
use hdf5_lite::btree_v1;
use hdf5_lite::btree_v2;
use hdf5_lite::checksum::lookup3;
use hdf5_lite::extensible_array as ea;
use hdf5_lite::fixed_array as fa;
use hdf5_lite::fractal_heap as fh;
use hdf5_lite::global_heap;
use hdf5_lite::local_heap;
use hdf5_lite::messages;
use hdf5_lite::object_header as oh;
use hdf5_lite::parse::Ctx;
use hdf5_lite::superblock;
use hdf5_lite::value;
use hdf5_lite::{MemorySource, RangeSource};

/// Name given to the in-memory file; every open error must mention it.
pub const FILE_NAME: &str = "fuzz-input.h5";

/// The fixed context of every structure target.
pub fn ctx() -> Ctx {
    Ctx::new(8, 8, 0)
}

/// The shared limits and runtime (`fuzz/harness/common.rs`).
pub use common::{options, runtime};

/// Little-endian u16 at `at`, or 0.
fn u16_at(d: &[u8], at: usize) -> usize {
    match d.get(at..at + 2) {
        Some(b) => u16::from_le_bytes([b[0], b[1]]) as usize,
        None => 0,
    }
}

/// Split `data` into (selector byte, first structure, rest): byte 0 is the
/// selector, bytes 1-2 the little-endian length of the first structure.
fn split(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    if data.len() < 3 {
        return None;
    }
    let sel = data[0];
    let k = u16_at(data, 1).min(data.len() - 3);
    Some((sel, &data[3..3 + k], &data[3 + k..]))
}

/// Overwrite the Jenkins lookup3 checksum at `at` with the checksum of the
/// bytes before it, so the fuzzer gets past checksummed headers. Only done
/// when the selector asks, so bad checksums are fuzzed too.
fn fix_checksum(b: &mut [u8], at: usize) {
    if b.len() >= at + 4 {
        let c = lookup3(&b[..at]);
        b[at..at + 4].copy_from_slice(&c.to_le_bytes());
    }
}

// ---------------------------------------------------------------------------
// open_file
// ---------------------------------------------------------------------------

/// Whole file: walk it with tight limits. On error, the message must name the
/// file. Returns whether the open succeeded (tests print it).
pub fn open_file(rt: &tokio::runtime::Runtime, data: &[u8]) -> Result<(), String> {
    let src: Arc<dyn RangeSource> = Arc::new(MemorySource::new(FILE_NAME, data.to_vec()));
    let opts = options();
    match rt.block_on(hdf5_lite::open(src, &opts)) {
        Ok((file, stats)) => {
            // Touch the result the way consumers do.
            let _ = format!("{:?}", file).len();
            assert!(
                stats.waves <= opts.max_waves + 1,
                "waves {} past the limit",
                stats.waves
            );
            Ok(())
        }
        Err(e) => {
            let msg = e.to_string();
            assert_eq!(e.file(), FILE_NAME, "error names another file: {msg}");
            assert!(
                msg.contains(FILE_NAME),
                "error does not name the file: {msg}"
            );
            Err(msg)
        }
    }
}

// ---------------------------------------------------------------------------
// superblock
// ---------------------------------------------------------------------------

/// Byte 0: bit 0 = fix the v2/v3 checksum. Rest: bytes starting at a signature.
pub fn superblock(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mut b = rest.to_vec();
    if sel & 1 != 0 && b.get(8).is_some_and(|v| *v >= 2) {
        fix_checksum(&mut b, 44);
    }
    let _ = superblock::find_signature(&b);
    let _ = superblock::candidate_offsets(u64::MAX).count();
    if let Ok(sb) = superblock::parse(&b, 0) {
        assert!(matches!(sb.ctx.size_of_offsets, 2 | 4 | 8), "{sb:?}");
        assert!(matches!(sb.ctx.size_of_lengths, 2 | 4 | 8), "{sb:?}");
    }
    let _ = superblock::parse(&b, u64::MAX);
}

// ---------------------------------------------------------------------------
// object_header (+ every message body, as the walker would)
// ---------------------------------------------------------------------------

/// Byte 0: bit 0 = version for the continuation parse when the header does
/// not parse (0 → 1, 1 → 2), bits 1..7 = v2 flags. Rest: header bytes, also
/// parsed as a continuation block of its whole length.
pub fn object_header(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let c = ctx();
    let bytes = Bytes::copy_from_slice(rest);
    let (version, flags) = match oh::parse_header(&bytes, 0, &c) {
        Ok(block) => {
            for m in &block.messages {
                message_body(m.kind, &m.body);
            }
            (block.version, block.flags)
        }
        Err(_) => (if sel & 1 == 0 { 1 } else { 2 }, sel >> 1),
    };
    let cont = oh::Continuation {
        address: 0,
        length: bytes.len() as u64,
    };
    if let Ok(block) = oh::parse_continuation(&bytes, cont, version, flags, &c) {
        for m in &block.messages {
            message_body(m.kind, &m.body);
        }
    }
}

/// Parse one message body with the parser the walker would use.
fn message_body(kind: u16, body: &[u8]) {
    let sel = match kind {
        oh::MSG_DATATYPE => 0,
        oh::MSG_DATASPACE => 1,
        oh::MSG_LAYOUT => 2,
        oh::MSG_FILTER_PIPELINE => 3,
        oh::MSG_FILL_VALUE_OLD => 4,
        oh::MSG_FILL_VALUE => 5,
        oh::MSG_LINK => 6,
        oh::MSG_LINK_INFO => 7,
        oh::MSG_ATTRIBUTE_INFO => 8,
        oh::MSG_ATTRIBUTE => 9,
        oh::MSG_SYMBOL_TABLE => 10,
        _ => return,
    };
    message(sel, body);
}

// ---------------------------------------------------------------------------
// messages
// ---------------------------------------------------------------------------

/// Number of message parsers `messages` dispatches to.
pub const MESSAGE_KINDS: u8 = 12;

/// Byte 0 selects the message parser (mod [`MESSAGE_KINDS`]); rest is the body.
pub fn messages(data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    message(sel % MESSAGE_KINDS, body);
}

fn message(sel: u8, body: &[u8]) {
    use messages::*;
    let c = ctx();
    match sel {
        0 => {
            if let Ok((_, dt)) = datatype::datatype(body) {
                let _ = dt.size();
            }
        }
        1 => {
            if let Ok((_, ds)) = dataspace::dataspace(body, &c) {
                let _ = ds.shape();
                let _ = ds.num_elements();
            }
        }
        2 => {
            let _ = layout::layout(body, &c);
        }
        3 => {
            let _ = filter_pipeline::filter_pipeline(body);
        }
        4 => {
            let _ = fill_value::fill_value_old(body);
        }
        5 => {
            let _ = fill_value::fill_value(body);
        }
        6 => {
            let _ = link::link(body, &c);
        }
        7 => {
            let _ = link::link_info(body, &c);
        }
        8 => {
            let _ = link::attribute_info(body, &c);
        }
        9 => {
            if let Ok((_, a)) = attribute::attribute(body, &c) {
                let _ = format!("{a:?}").len();
            }
        }
        10 => {
            let _ = link::symbol_table(body, &c);
        }
        _ => {
            let _ = shared::shared(body, &c);
        }
    }
}

// ---------------------------------------------------------------------------
// btree_v1 (+ symbol table nodes and local heaps)
// ---------------------------------------------------------------------------

/// Byte 0 selects: 0 group node, 1 chunk node (rank = byte 1 % 33), 2
/// symbol node, 3 local heap (+ string_at with offset from byte 1). The
/// structure starts at byte 2.
pub fn btree_v1(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let (sel, arg, body) = (data[0], data[1], &data[2..]);
    let c = ctx();
    match sel % 4 {
        0 => {
            let _ = btree_v1::parse_group_node(body, 0, &c);
        }
        1 => {
            let _ = btree_v1::parse_chunk_node(body, 0, &c, (arg % 33) as usize);
        }
        2 => {
            let _ = btree_v1::parse_symbol_node(body, 0, &c);
        }
        _ => {
            if let Ok(h) = local_heap::parse(body, 0, &c) {
                let _ = format!("{h:?}");
            }
            let _ = local_heap::header_size(&c);
            let _ = local_heap::string_at(body, arg as u64);
            let _ = local_heap::string_at(body, u64::MAX - arg as u64);
        }
    }
}

// ---------------------------------------------------------------------------
// btree_v2
// ---------------------------------------------------------------------------

/// Byte 0: bit 0 = fix the header checksum; bit 1 = use (depth, nrec) from
/// bytes 1-3 instead of the header's root (depth = byte 1 % (h.depth + 1)),
/// as for a child node. Header at byte 4 (38 bytes), node right after it.
/// The node's records are decoded by the header's tree type.
pub fn btree_v2(data: &[u8]) {
    const HEADER: usize = 38;
    if data.len() < 4 {
        return;
    }
    let sel = data[0];
    let mut hb = data[4..].to_vec();
    if sel & 1 != 0 {
        fix_checksum(&mut hb, HEADER - 4);
    }
    let c = ctx();
    let Ok(h) = btree_v2::parse_header(&hb, 0, &c) else {
        return;
    };
    let geo = btree_v2::Geometry::new(&h, &c);
    let node = Bytes::copy_from_slice(data.get(4 + HEADER..).unwrap_or(&[]));
    let (depth, nrec) = if sel & 2 != 0 {
        (
            (data[1] as u16) % h.depth.saturating_add(1).max(1),
            u16_at(data, 2) as u64,
        )
    } else {
        (h.depth, h.root_records as u64)
    };
    // The walker reads exactly node_size bytes for a node.
    let node = node.slice(..node.len().min(h.node_size as usize));
    if let Ok(n) = btree_v2::parse_node(&node, 0, &c, &h, &geo, depth, nrec) {
        assert!(depth != 0 || n.children.is_empty(), "leaf with children");
        // Decode the records as the walk would for the header's tree type
        // (chunk trees: the first rank their record size fits).
        let ty = match h.tree_type {
            1 => Some(btree_v2::RecordType::HugeObject),
            5 => Some(btree_v2::RecordType::LinkName),
            8 => Some(btree_v2::RecordType::AttributeName),
            10 | 11 => (0..=32).find_map(|rank| btree_v2::RecordType::chunks(&h, &c, rank).ok()),
            _ => None,
        };
        let Some(ty) = ty else { return };
        for r in &n.records {
            if let Ok(btree_v2::Record::Chunk(chunk)) = btree_v2::parse_record(r, 0, ty, &c) {
                let btree_v2::RecordType::Chunk { rank, .. } = ty else {
                    panic!("chunk record from a {ty:?} tree");
                };
                assert_eq!(chunk.scaled_offsets.iter().count(), rank);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// fractal_heap
// ---------------------------------------------------------------------------

/// Byte 0: bits 0-1 select direct / indirect / heap id / all; bit 2 = fix the
/// header checksum (unfiltered header); bits 3-7 pick the row for the block
/// size or nrows (0 = the header's root). Bytes 1-2: header length; the
/// header follows, then the block (or heap id).
pub fn fractal_heap(data: &[u8]) {
    const HEADER: usize = 146;
    let Some((sel, hb, rest)) = split(data) else {
        return;
    };
    let mut hb = hb.to_vec();
    if sel & 4 != 0 {
        fix_checksum(&mut hb, HEADER - 4);
    }
    let c = ctx();
    let Ok(h) = fh::parse_header(&hb, 0, &c) else {
        return;
    };
    let _ = (h.max_direct_rows(), h.offset_size(), h.length_size());
    let row = (sel >> 3) as u32;
    let rest_b = Bytes::copy_from_slice(rest);
    let what = sel & 3;
    if what == 0 || what == 3 {
        // The walker reads `size` bytes (size checked against the file size).
        let size = if row == 0 {
            h.filtered_root_size.unwrap_or(h.start_block_size)
        } else {
            h.row_block_size(row - 1)
        };
        let _ = fh::parse_direct(&rest_b, 0, &c, &h, size);
    }
    if what == 1 || what == 3 {
        let nrows = if row == 0 {
            h.root_rows as u32
        } else {
            h.child_indirect_rows(row - 1)
        };
        let _ = fh::indirect_size(&c, &h, nrows);
        if let Ok(ib) = fh::parse_indirect(rest, 0, &c, &h, nrows) {
            for (r, _) in &ib.direct {
                let _ = h.row_block_size(*r);
            }
            for (r, _) in &ib.indirect {
                let _ = h.child_indirect_rows(*r);
            }
        }
    }
    if what == 2 || what == 3 {
        let id = &rest[..rest.len().min(h.heap_id_len as usize)];
        let _ = fh::parse_id(id, &h, &c);
        let _ = fh::parse_id(rest, &h, &c);
    }
}

// ---------------------------------------------------------------------------
// arrays: fixed array and extensible array
// ---------------------------------------------------------------------------

/// Byte 0: bit 0 = fixed (0) or extensible (1) array; bit 1 = fix the header
/// checksum; bits 2-3 select the EA block (index / secondary / data / data
/// paged); bits 4-7 pick the super block level. Bytes 1-2: header length;
/// header, then the block.
pub fn arrays(data: &[u8]) {
    let Some((sel, hb, rest)) = split(data) else {
        return;
    };
    let c = ctx();
    let mut hb = hb.to_vec();
    let rest_b = Bytes::copy_from_slice(rest);
    if sel & 1 == 0 {
        if sel & 2 != 0 {
            fix_checksum(&mut hb, 24);
        }
        let Ok(h) = fa::parse_header(&hb, 0, &c) else {
            return;
        };
        let _ = h.data_block_size(&c);
        if let Ok(block) = fa::parse_data_block(&rest_b, 0, &c, &h) {
            assert!(
                block.entries.len() as u64 <= h.entries,
                "more entries than the header"
            );
            assert!(block.size <= rest_b.len() as u64, "size past the input");
        }
        return;
    }
    if sel & 2 != 0 {
        fix_checksum(&mut hb, 68);
    }
    let Ok(h) = ea::parse_header(&hb, 0, &c) else {
        return;
    };
    let levels = h.super_blocks();
    let _ = (
        h.index_super_blocks(),
        h.index_data_block_ptrs(),
        h.page_elements(),
    );
    let _ = h.index_block_size(&c);
    let level = (sel >> 4) as usize;
    match (sel >> 2) & 3 {
        0 => {
            let _ = ea::parse_index_block(&rest_b, 0, &c, &h);
        }
        1 => {
            if let Some(info) = levels.get(level) {
                let _ = ea::secondary_block_size(&c, &h, info);
                let _ = ea::parse_secondary_block(rest, 0, &c, &h, info);
            }
        }
        k => {
            if let Some(info) = levels.get(level) {
                let n = info.data_block_elements;
                let _ = h.data_block_size(&c, n);
                let pages = if n > h.page_elements() && h.page_elements() > 0 {
                    (n / h.page_elements()) as usize
                } else {
                    0
                };
                let init: Vec<bool> = (0..pages.min(4096)).map(|p| p % 2 == 0).collect();
                let page_init = (k == 3 && pages > 0 && pages <= 4096).then_some(&init[..]);
                let _ = ea::parse_data_block(&rest_b, 0, &c, &h, n, page_init);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// global_heap
// ---------------------------------------------------------------------------

/// The whole input is a collection at address 0.
pub fn global_heap(data: &[u8]) {
    let b = Bytes::copy_from_slice(data);
    if let Ok(col) = global_heap::parse(&b, 0, &ctx()) {
        let total: usize = col.objects.values().map(|o| o.len()).sum();
        assert!(total <= data.len(), "objects larger than the collection");
    }
}

// ---------------------------------------------------------------------------
// value_decode
// ---------------------------------------------------------------------------

/// Bytes 0-1: datatype message length k; the datatype; then one byte of
/// element count; then the element bytes. Global heap lookups are answered
/// from the element bytes for even collection addresses and missing for odd
/// ones, so both paths run.
pub fn value_decode(data: &[u8]) {
    if data.len() < 3 {
        return;
    }
    let k = u16_at(data, 0).min(data.len() - 2);
    let dt_bytes = &data[2..2 + k];
    let Some((&count, elems)) = data[2 + k..].split_first() else {
        return;
    };
    let Ok((_, dt)) = messages::datatype::datatype(dt_bytes) else {
        return;
    };
    let pool = Bytes::copy_from_slice(elems);
    let heap = move |(addr, index): value::GlobalId| -> Option<Bytes> {
        if addr % 2 == 1 {
            return None;
        }
        let start = (index as usize).min(pool.len());
        Some(pool.slice(start..))
    };
    let c = ctx();
    if let Ok(d) = value::decode(&dt, count as u64, elems, &c, &heap) {
        assert_eq!(d.values.len(), count as usize);
        let _ = format!("{:?}", d.values).len();
    }
    // Absurd counts must be refused, not allocated.
    let _ = value::decode(&dt, u64::MAX, elems, &c, &heap);
}

// ---------------------------------------------------------------------------
// layout_entry
// ---------------------------------------------------------------------------

/// The source every input is decoded for (its digit-free pattern is what an
/// entry's `pattern` line must name).
pub const LAYOUT_SOURCE: &str =
    "s3://noaa-ofs-pds/dbofs.20250601/dbofs.t06z.20250601.fields.f030.nc";

/// A layout cache entry (`hdf5_lite::layout_cache`), as the pipeline reads
/// one from its destination store. A decoded entry must re-encode to the
/// same entry; its first wave widens each range within [`MAX_MARGIN`] and
/// covers it; it sees no drift against itself or its own first wave; and
/// the next entry after it is computed from any ranges without panicking.
///
/// [`MAX_MARGIN`]: hdf5_lite::layout_cache::MAX_MARGIN
pub fn layout_entry(data: &[u8]) {
    use hdf5_lite::layout_cache::{self as lc, Entry};
    let Ok(e) = lc::decode_entry(data, LAYOUT_SOURCE) else {
        return;
    };
    let text = lc::encode_entry(LAYOUT_SOURCE, &e);
    assert_eq!(
        lc::decode_entry(text.as_bytes(), LAYOUT_SOURCE).as_ref(),
        Ok(&e)
    );
    let m = e.margin(Some(e.file_size.wrapping_add(data.len() as u64)));
    assert!(m <= lc::MAX_MARGIN, "margin {m}");
    let wide = e.first_wave(None);
    assert_eq!(wide.len(), e.ranges.len());
    for (w, r) in wide.iter().zip(&e.ranges) {
        assert!(
            w.start <= r.start && r.end <= w.end,
            "{w:?} does not hold {r:?}"
        );
        assert!(r.start - w.start <= lc::MAX_MARGIN && w.end - r.end <= lc::MAX_MARGIN);
    }
    assert_eq!(lc::observed_drift(&e.ranges, &e.ranges), 0);
    assert_eq!(lc::observed_drift(&wide, &e.ranges), 0);
    assert!(lc::covers(&wide, &e.ranges) || e.ranges.is_empty());
    // The input's bytes as shifts: a next file whose ranges moved.
    let moved: Vec<_> = e
        .ranges
        .iter()
        .zip(data.iter().cycle())
        .map(|(r, &b)| {
            let d = u64::from(b) * 97;
            r.start.saturating_add(d)..r.end.saturating_add(d)
        })
        .collect();
    let next = Entry::after(Some(&e), e.file_size, moved);
    let _ = next.first_wave(Some(0));
}
