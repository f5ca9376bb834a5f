//! Fractal heaps (spec III.G): header (`FRHP`), direct (`FHDB`) and
//! indirect (`FHIB`) blocks, and heap ids. Dense link and attribute storage
//! and the shared-message heap keep their objects here.
//!
//! Sizes: [`indirect_size`] and [`Header::row_block_size`] are what a read of
//! a block must ask for before its bytes exist; parsed structures return
//! the bytes they occupy (`Header::size`, with the filter information of a
//! filtered heap; `DirectBlock::size`; `IndirectBlock::size`), which the
//! walk records.

use bytes::Bytes;

use crate::parse::{
    Ctx, PResult, StructError, bad, consumed, run, short, signature, take, u8_, u16_, u32_, uint,
    verify_checksum,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub heap_id_len: u16,
    pub io_filters_len: u16,
    pub flags: u8,
    pub max_managed_size: u32,
    pub huge_btree: Option<u64>,
    pub table_width: u16,
    pub start_block_size: u64,
    pub max_direct_block_size: u64,
    pub max_heap_size_bits: u16,
    pub root: Option<u64>,
    /// 0 when the root is a direct block.
    pub root_rows: u16,
    /// Size of the root direct block when it is filtered.
    pub filtered_root_size: Option<u64>,
    /// Bytes this structure occupies in the file, as parsed.
    pub size: u64,
}

impl Header {
    pub fn checksummed_direct(&self) -> bool {
        self.flags & 0x02 != 0
    }
    /// Bytes of the block-offset field in blocks and of the offset in ids.
    pub fn offset_size(&self) -> u8 {
        self.max_heap_size_bits.div_ceil(8) as u8
    }
    /// Bytes of the length field of managed-object ids.
    pub fn length_size(&self) -> u8 {
        let dblock = log2(self.max_direct_block_size).div_ceil(8) as u8;
        let man = crate::parse::bytes_needed(self.max_managed_size as u64).max(1);
        dblock.min(man)
    }
    /// Size of a block in `row`.
    pub fn row_block_size(&self, row: u32) -> u64 {
        if row == 0 {
            self.start_block_size
        } else {
            self.start_block_size
                .checked_shl(row - 1)
                .unwrap_or(u64::MAX)
        }
    }
    /// Rows of direct blocks an indirect block may hold.
    pub fn max_direct_rows(&self) -> u32 {
        log2(self.max_direct_block_size).saturating_sub(log2(self.start_block_size)) + 2
    }
    /// Rows of a child indirect block found in `row`.
    pub fn child_indirect_rows(&self, row: u32) -> u32 {
        let first_row_bits = log2(self.start_block_size) + log2(self.table_width as u64);
        (log2(self.row_block_size(row)) + 1).saturating_sub(first_row_bits)
    }
}

fn log2(v: u64) -> u32 {
    if v == 0 { 0 } else { 63 - v.leading_zeros() }
}

pub fn parse_header(bytes: &[u8], address: u64, ctx: &Ctx) -> Result<Header, StructError> {
    run("fractal heap header", address, bytes, |i| header(i, ctx))
}

fn header<'a>(i: &'a [u8], ctx: &Ctx) -> PResult<'a, Header> {
    let (r, ()) = signature(i, b"FRHP")?;
    let (r, version) = u8_(r)?;
    if version != 0 {
        return bad(i, format!("unsupported fractal heap version {version}"));
    }
    let (r, heap_id_len) = u16_(r)?;
    let (r, io_filters_len) = u16_(r)?;
    let (r, flags) = u8_(r)?;
    let (r, max_managed_size) = u32_(r)?;
    let (r, _next_huge_id) = ctx.length(r)?;
    let (r, huge_btree) = ctx.addr(r)?;
    let (r, _free) = ctx.length(r)?;
    let (r, _fsm) = ctx.addr(r)?;
    let (r, _managed) = ctx.length(r)?;
    let (r, _allocated) = ctx.length(r)?;
    let (r, _iter) = ctx.length(r)?;
    let (r, _nmanaged) = ctx.length(r)?;
    let (r, _huge_size) = ctx.length(r)?;
    let (r, _nhuge) = ctx.length(r)?;
    let (r, _tiny_size) = ctx.length(r)?;
    let (r, _ntiny) = ctx.length(r)?;
    let (r, table_width) = u16_(r)?;
    let (r, start_block_size) = ctx.length(r)?;
    let (r, max_direct_block_size) = ctx.length(r)?;
    let (r, max_heap_size_bits) = u16_(r)?;
    let (r, _start_rows) = u16_(r)?;
    let (r, root) = ctx.addr(r)?;
    let (r, root_rows) = u16_(r)?;
    let (r, filtered_root_size) = if io_filters_len > 0 {
        let (r, size) = ctx.length(r)?;
        let (r, _mask) = u32_(r)?;
        let (r, _pipeline) = take(r, io_filters_len as usize)?;
        (r, Some(size))
    } else {
        (r, None)
    };
    let covered = i.len() - r.len();
    let (r, ()) = verify_checksum(i, covered)?;
    let pow2 = |v: u64| v != 0 && v.is_power_of_two();
    if table_width == 0
        || !table_width.is_power_of_two()
        || !pow2(start_block_size)
        || !pow2(max_direct_block_size)
        || max_direct_block_size < start_block_size
        || max_heap_size_bits == 0
        || max_heap_size_bits > 64
        || root_rows > 64
    {
        return bad(i, "inconsistent doubling table parameters");
    }
    Ok((
        r,
        Header {
            heap_id_len,
            io_filters_len,
            flags,
            max_managed_size,
            huge_btree,
            table_width,
            start_block_size,
            max_direct_block_size,
            max_heap_size_bits,
            root,
            root_rows,
            filtered_root_size,
            size: consumed(i, r),
        },
    ))
}

/// A direct block: its heap-space offset and all its bytes (objects are
/// addressed by heap offset minus block offset, header included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectBlock {
    pub block_offset: u64,
    pub data: Bytes,
    /// Bytes this structure occupies in the file, as parsed.
    pub size: u64,
}

pub fn parse_direct(
    bytes: &Bytes,
    address: u64,
    ctx: &Ctx,
    h: &Header,
    size: u64,
) -> Result<DirectBlock, StructError> {
    run("fractal heap direct block", address, bytes, |i| {
        if h.io_filters_len > 0 {
            return bad(i, "filtered fractal heap blocks are not supported");
        }
        let (r, ()) = signature(i, b"FHDB")?;
        let (r, _version) = u8_(r)?;
        let (r, _heap) = ctx.addr(r)?;
        let (r, block_offset) = uint(r, h.offset_size())?;
        if (i.len() as u64) < size {
            return short(i, size);
        }
        if h.checksummed_direct() {
            let covered = i.len() - r.len();
            // The checksum covers the whole block with the checksum field zeroed.
            let mut copy = bytes[..size as usize].to_vec();
            let Some(field) = copy.get_mut(covered..covered + 4) else {
                return bad(r, "direct block smaller than its header");
            };
            let stored = u32::from_le_bytes([field[0], field[1], field[2], field[3]]);
            field.fill(0);
            let computed = crate::checksum::lookup3(&copy);
            if stored != computed {
                return bad(
                    r,
                    format!("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"),
                );
            }
        }
        Ok((
            &i[i.len()..],
            DirectBlock {
                block_offset,
                data: bytes.slice(..size as usize),
                size,
            },
        ))
    })
}

/// Children of an indirect block, in row-major order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndirectBlock {
    pub block_offset: u64,
    /// (row, address) of each allocated child direct block.
    pub direct: Vec<(u32, u64)>,
    /// (row, address) of each allocated child indirect block.
    pub indirect: Vec<(u32, u64)>,
    /// Bytes this structure occupies in the file, as parsed.
    pub size: u64,
}

/// Size of an indirect block with `nrows` rows (needed before reading it).
pub fn indirect_size(ctx: &Ctx, h: &Header, nrows: u32) -> u64 {
    let w = h.table_width as u64;
    let direct_rows = nrows.min(h.max_direct_rows()) as u64;
    let indirect_rows = (nrows as u64).saturating_sub(direct_rows);
    let so = ctx.size_of_offsets as u64;
    let dentry = so
        + if h.io_filters_len > 0 {
            ctx.size_of_lengths as u64 + 4
        } else {
            0
        };
    4 + 1 + so + h.offset_size() as u64 + direct_rows * w * dentry + indirect_rows * w * so + 4
}

pub fn parse_indirect(
    bytes: &[u8],
    address: u64,
    ctx: &Ctx,
    h: &Header,
    nrows: u32,
) -> Result<IndirectBlock, StructError> {
    run("fractal heap indirect block", address, bytes, |i| {
        let size = indirect_size(ctx, h, nrows);
        if (i.len() as u64) < size {
            return short(i, size);
        }
        let (r, ()) = signature(i, b"FHIB")?;
        let (r, _version) = u8_(r)?;
        let (r, _heap) = ctx.addr(r)?;
        let (mut r, block_offset) = uint(r, h.offset_size())?;
        let (_, ()) = verify_checksum(&i[..size as usize], size as usize - 4)?;
        let mut direct = Vec::new();
        let mut indirect = Vec::new();
        for row in 0..nrows {
            for _ in 0..h.table_width {
                let (rr, a) = ctx.addr(r)?;
                r = rr;
                if row < h.max_direct_rows() {
                    if h.io_filters_len > 0 {
                        r = take(r, ctx.size_of_lengths as usize + 4)?.0;
                    }
                    if let Some(a) = a {
                        direct.push((row, a));
                    }
                } else if let Some(a) = a {
                    indirect.push((row, a));
                }
            }
        }
        Ok((
            r,
            IndirectBlock {
                block_offset,
                direct,
                indirect,
                size,
            },
        ))
    })
}

/// A decoded heap id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeapId {
    Managed {
        offset: u64,
        length: u64,
    },
    /// Huge object looked up in the huge-object B-tree by this key.
    HugeKey(u64),
    /// Huge object stored directly at (address, length).
    HugeDirect {
        address: u64,
        length: u64,
    },
    Tiny(Vec<u8>),
}

pub fn parse_id(id: &[u8], h: &Header, ctx: &Ctx) -> Result<HeapId, String> {
    let first = *id.first().ok_or("empty heap id")?;
    if first >> 6 != 0 {
        return Err(format!("unsupported heap id version {}", first >> 6));
    }
    let body = &id[1..];
    let e = |_| "heap id too short".to_string();
    match (first >> 4) & 3 {
        0 => {
            let (r, offset) = uint(body, h.offset_size()).map_err(e)?;
            let (_, length) = uint(r, h.length_size()).map_err(e)?;
            Ok(HeapId::Managed { offset, length })
        }
        1 => {
            // Ids long enough to hold an address and a length store huge
            // objects directly instead of keying the huge-object B-tree.
            let direct = h.io_filters_len == 0
                && (h.heap_id_len as usize).saturating_sub(1)
                    >= ctx.size_of_offsets as usize + ctx.size_of_lengths as usize;
            if direct {
                let (r, address) = ctx.addr_req(body, "huge object").map_err(e)?;
                let (_, length) = ctx.length(r).map_err(e)?;
                Ok(HeapId::HugeDirect { address, length })
            } else {
                // The key fills the rest of the id (at most 8 bytes).
                let width = (h.heap_id_len as usize).saturating_sub(1).min(8) as u8;
                let (_, key) = uint(body, width).map_err(e)?;
                Ok(HeapId::HugeKey(key))
            }
        }
        2 => {
            let (len, data) = if h.heap_id_len <= 18 {
                ((first & 0x0f) as usize + 1, body)
            } else {
                let b1 = *body.first().ok_or("heap id too short")?;
                (
                    (((first & 0x0f) as usize) << 8 | b1 as usize) + 1,
                    &body[1..],
                )
            };
            data.get(..len)
                .map(|d| HeapId::Tiny(d.to_vec()))
                .ok_or_else(|| "tiny heap id too short".to_string())
        }
        t => Err(format!("unknown heap id type {t}")),
    }
}
