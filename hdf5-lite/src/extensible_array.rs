//! Extensible arrays (HDF5 1.10 chunk index for one unlimited dimension):
//! header (`EAHD`), index block (`EAIB`), secondary blocks (`EASB`) and
//! data blocks (`EADB`), with data block paging.
//!
//! Sizes: [`header_size`], [`Header::index_block_size`],
//! [`secondary_block_size`] and [`Header::data_block_size`] are what a read
//! must ask for before the bytes exist; parsed structures return the bytes
//! they occupy (`size` on each), which the walk records.

use bytes::Bytes;

use crate::parse::{
    Ctx, StructError, bad, consumed, run, short, signature, take, u8_, uint, verify_checksum,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub client: u8,
    pub entry_size: u8,
    pub max_nelmts_bits: u8,
    pub index_block_elements: u8,
    pub data_block_min_elements: u8,
    pub secondary_min_data_ptrs: u8,
    pub max_dblock_page_bits: u8,
    /// Highest element index set + 1.
    pub max_index_set: u64,
    pub index_block: Option<u64>,
    /// Bytes this structure occupies in the file, as parsed.
    pub size: u64,
}

/// Bytes of an extensible array header (fixed for a file's sizes).
pub fn header_size(ctx: &Ctx) -> u64 {
    16 + 6 * ctx.size_of_lengths as u64 + ctx.size_of_offsets as u64
}

pub fn parse_header(bytes: &[u8], address: u64, ctx: &Ctx) -> Result<Header, StructError> {
    run("extensible array header", address, bytes, |i| {
        let (r, ()) = signature(i, b"EAHD")?;
        let (r, _version) = u8_(r)?;
        let (r, client) = u8_(r)?;
        let (r, entry_size) = u8_(r)?;
        let (r, max_nelmts_bits) = u8_(r)?;
        let (r, index_block_elements) = u8_(r)?;
        let (r, data_block_min_elements) = u8_(r)?;
        let (r, secondary_min_data_ptrs) = u8_(r)?;
        let (r, max_dblock_page_bits) = u8_(r)?;
        let (r, _nsblks) = ctx.length(r)?;
        let (r, _sblk_size) = ctx.length(r)?;
        let (r, _ndblks) = ctx.length(r)?;
        let (r, _dblk_size) = ctx.length(r)?;
        let (r, max_index_set) = ctx.length(r)?;
        let (r, _nelmts) = ctx.length(r)?;
        let (r, index_block) = ctx.addr(r)?;
        let covered = i.len() - r.len();
        let (r, ()) = verify_checksum(i, covered)?;
        let pow2 = |v: u8| v != 0 && v.is_power_of_two();
        if client > 1
            || entry_size == 0
            || max_nelmts_bits == 0
            || max_nelmts_bits > 64
            || !pow2(data_block_min_elements)
            || !pow2(secondary_min_data_ptrs)
            || max_dblock_page_bits > 32
            || (data_block_min_elements.trailing_zeros() as u8) > max_nelmts_bits
        {
            return bad(i, "inconsistent extensible array parameters");
        }
        Ok((
            r,
            Header {
                client,
                entry_size,
                max_nelmts_bits,
                index_block_elements,
                data_block_min_elements,
                secondary_min_data_ptrs,
                max_dblock_page_bits,
                max_index_set,
                index_block,
                size: consumed(i, r),
            },
        ))
    })
}

/// One super block level of the doubling scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuperBlockInfo {
    pub data_blocks: u64,
    pub data_block_elements: u64,
    /// Index of the first element covered, counted after the index block's own elements.
    pub start_index: u64,
}

impl Header {
    pub fn offset_size(&self) -> u8 {
        self.max_nelmts_bits.div_ceil(8)
    }
    pub fn super_blocks(&self) -> Vec<SuperBlockInfo> {
        let n = (1 + self.max_nelmts_bits as u32)
            .saturating_sub(self.data_block_min_elements.trailing_zeros());
        let mut out = Vec::with_capacity(n as usize);
        let mut start = 0u64;
        for s in 0..n {
            // Checked: s < 66 and the minimum is at most 128, so these
            // cannot overflow for a header that parsed; saturate anyway.
            let data_blocks = 1u64.checked_shl(s / 2).unwrap_or(u64::MAX);
            let data_block_elements = (self.data_block_min_elements as u64)
                .checked_shl(s.div_ceil(2))
                .unwrap_or(u64::MAX);
            out.push(SuperBlockInfo {
                data_blocks,
                data_block_elements,
                start_index: start,
            });
            start = start.saturating_add(data_blocks.saturating_mul(data_block_elements));
        }
        out
    }
    /// Super block levels whose data blocks hang directly off the index block.
    pub fn index_super_blocks(&self) -> usize {
        2 * self.secondary_min_data_ptrs.trailing_zeros() as usize
    }
    pub fn index_data_block_ptrs(&self) -> usize {
        2 * (self.secondary_min_data_ptrs as usize).saturating_sub(1)
    }
    pub fn page_elements(&self) -> u64 {
        1u64 << self.max_dblock_page_bits
    }
    pub fn index_block_size(&self, ctx: &Ctx) -> u64 {
        let so = ctx.size_of_offsets as u64;
        let nsblk = self
            .super_blocks()
            .len()
            .saturating_sub(self.index_super_blocks()) as u64;
        (4 + 1 + 1 + so + 4)
            .saturating_add(self.index_block_elements as u64 * self.entry_size as u64)
            .saturating_add((self.index_data_block_ptrs() as u64).saturating_mul(so))
            .saturating_add(nsblk.saturating_mul(so))
    }
    /// Bytes of a data block of `n` elements (all pages included).
    pub fn data_block_size(&self, ctx: &Ctx, n: u64) -> u64 {
        let prefix = 4 + 1 + 1 + ctx.size_of_offsets as u64 + self.offset_size() as u64;
        let e = self.entry_size as u64;
        // Saturating: hostile parameters give an absurd size that the
        // caller's limits reject, never an overflow.
        if n > self.page_elements() {
            let pages = n / self.page_elements();
            prefix
                .saturating_add(4)
                .saturating_add(n.saturating_mul(e))
                .saturating_add(pages.saturating_mul(4))
        } else {
            prefix.saturating_add(n.saturating_mul(e)).saturating_add(4)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexBlock {
    pub elements: Vec<Bytes>,
    pub data_blocks: Vec<Option<u64>>,
    pub secondary_blocks: Vec<Option<u64>>,
    /// Bytes this structure occupies in the file, as parsed.
    pub size: u64,
}

pub fn parse_index_block(
    bytes: &Bytes,
    address: u64,
    ctx: &Ctx,
    h: &Header,
) -> Result<IndexBlock, StructError> {
    run("extensible array index block", address, bytes, |i| {
        let size = h.index_block_size(ctx);
        if (i.len() as u64) < size {
            return short(i, size);
        }
        let (r, ()) = signature(i, b"EAIB")?;
        let (r, _version) = u8_(r)?;
        let (r, _client) = u8_(r)?;
        let (r, _hdr) = ctx.addr(r)?;
        let (_, ()) = verify_checksum(&i[..size as usize], size as usize - 4)?;
        let mut pos = i.len() - r.len();
        let e = h.entry_size as usize;
        let mut elements = Vec::new();
        for _ in 0..h.index_block_elements {
            elements.push(bytes.slice(pos..pos + e));
            pos += e;
        }
        let mut r = &i[pos..];
        let mut data_blocks = Vec::new();
        for _ in 0..h.index_data_block_ptrs() {
            let (rr, a) = ctx.addr(r)?;
            data_blocks.push(a);
            r = rr;
        }
        let nsblk = h
            .super_blocks()
            .len()
            .saturating_sub(h.index_super_blocks());
        let mut secondary_blocks = Vec::new();
        for _ in 0..nsblk {
            let (rr, a) = ctx.addr(r)?;
            secondary_blocks.push(a);
            r = rr;
        }
        Ok((
            r,
            IndexBlock {
                elements,
                data_blocks,
                secondary_blocks,
                size,
            },
        ))
    })
}

/// A secondary block's data block addresses, with page-init flags per data
/// block page when data blocks are paged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondaryBlock {
    pub data_blocks: Vec<Option<u64>>,
    /// `page_init[d][p]` for paged data blocks; empty when not paged.
    pub page_init: Vec<Vec<bool>>,
    /// Bytes this structure occupies in the file, as parsed.
    pub size: u64,
}

pub fn secondary_block_size(ctx: &Ctx, h: &Header, info: &SuperBlockInfo) -> u64 {
    let pages = if info.data_block_elements > h.page_elements() {
        info.data_block_elements / h.page_elements()
    } else {
        0
    };
    let bitmap = info.data_blocks.saturating_mul(pages).div_ceil(8);
    (6 + ctx.size_of_offsets as u64 + h.offset_size() as u64)
        .saturating_add(bitmap)
        .saturating_add(info.data_blocks.saturating_mul(ctx.size_of_offsets as u64))
        .saturating_add(4)
}

pub fn parse_secondary_block(
    bytes: &[u8],
    address: u64,
    ctx: &Ctx,
    h: &Header,
    info: &SuperBlockInfo,
) -> Result<SecondaryBlock, StructError> {
    run("extensible array secondary block", address, bytes, |i| {
        let size = secondary_block_size(ctx, h, info);
        if (i.len() as u64) < size {
            return short(i, size);
        }
        let (r, ()) = signature(i, b"EASB")?;
        let (r, _version) = u8_(r)?;
        let (r, _client) = u8_(r)?;
        let (r, _hdr) = ctx.addr(r)?;
        let (r, _off) = uint(r, h.offset_size())?;
        let (_, ()) = verify_checksum(&i[..size as usize], size as usize - 4)?;
        let pages = if info.data_block_elements > h.page_elements() {
            info.data_block_elements / h.page_elements()
        } else {
            0
        };
        let (mut r, bitmap) = take(
            r,
            info.data_blocks.saturating_mul(pages).div_ceil(8) as usize,
        )?;
        let mut data_blocks = Vec::new();
        let mut page_init = Vec::new();
        for d in 0..info.data_blocks {
            let (rr, a) = ctx.addr(r)?;
            data_blocks.push(a);
            r = rr;
            if pages > 0 {
                page_init.push(
                    (0..pages)
                        .map(|p| {
                            let bit = d * pages + p;
                            bitmap
                                .get((bit / 8) as usize)
                                .is_some_and(|b| b & (0x80 >> (bit % 8)) != 0)
                        })
                        .collect(),
                );
            }
        }
        Ok((
            r,
            SecondaryBlock {
                data_blocks,
                page_init,
                size,
            },
        ))
    })
}

/// A data block's raw entries; `None` for entries of uninitialised pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataBlock {
    pub entries: Vec<Option<Bytes>>,
    /// Bytes of the block, all pages included, as parsed.
    pub size: u64,
}

/// Entries of a data block of `n` elements.
pub fn parse_data_block(
    bytes: &Bytes,
    address: u64,
    ctx: &Ctx,
    h: &Header,
    n: u64,
    page_init: Option<&[bool]>,
) -> Result<DataBlock, StructError> {
    run("extensible array data block", address, bytes, |i| {
        let size = h.data_block_size(ctx, n);
        if (i.len() as u64) < size {
            return short(i, size);
        }
        let (r, ()) = signature(i, b"EADB")?;
        let (r, _version) = u8_(r)?;
        let (r, _client) = u8_(r)?;
        let (r, _hdr) = ctx.addr(r)?;
        let (r, _off) = uint(r, h.offset_size())?;
        let prefix = i.len() - r.len();
        let e = h.entry_size as usize;
        let mut out = Vec::with_capacity(n as usize);
        if n <= h.page_elements() {
            let end = prefix + n as usize * e;
            let (_, ()) = verify_checksum(&i[..end + 4], end)?;
            for k in 0..n as usize {
                out.push(Some(bytes.slice(prefix + k * e..prefix + (k + 1) * e)));
            }
        } else {
            let (_, ()) = verify_checksum(&i[..prefix + 4], prefix)?;
            let per = h.page_elements() as usize;
            let mut pos = prefix + 4;
            for p in 0..(n / h.page_elements()) as usize {
                let init = page_init.is_none_or(|pi| pi.get(p).copied().unwrap_or(false));
                if init {
                    let (_, ()) = verify_checksum(&i[pos..pos + per * e + 4], per * e)?;
                }
                for k in 0..per {
                    out.push(init.then(|| bytes.slice(pos + k * e..pos + (k + 1) * e)));
                }
                pos += per * e + 4;
            }
        }
        Ok((&i[size as usize..], DataBlock { entries: out, size }))
    })
}
