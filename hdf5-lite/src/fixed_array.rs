//! Fixed arrays (spec III.H? "Fixed Array Index", HDF5 1.10): header
//! (`FAHD`) and data block (`FADB`), optionally paged. Entries are chunk
//! addresses (client 0) or filtered chunk records (client 1).
//!
//! Sizes: [`header_size`] and [`Header::data_block_size`] are what a read
//! must ask for before the bytes exist; parsed structures return the bytes
//! they occupy (`Header::size`, `DataBlock::size`), which the walk records.

use bytes::Bytes;

use crate::parse::{Ctx, StructError, bad, consumed, run, short, signature, u8_, verify_checksum};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub client: u8,
    pub entry_size: u8,
    pub page_bits: u8,
    pub entries: u64,
    pub data_block: Option<u64>,
    /// Bytes this structure occupies in the file, as parsed.
    pub size: u64,
}

/// Bytes of a fixed array header (fixed for a file's sizes).
pub fn header_size(ctx: &Ctx) -> u64 {
    12 + ctx.size_of_lengths as u64 + ctx.size_of_offsets as u64
}

pub fn parse_header(bytes: &[u8], address: u64, ctx: &Ctx) -> Result<Header, StructError> {
    run("fixed array header", address, bytes, |i| {
        let (r, ()) = signature(i, b"FAHD")?;
        let (r, _version) = u8_(r)?;
        let (r, client) = u8_(r)?;
        let (r, entry_size) = u8_(r)?;
        let (r, page_bits) = u8_(r)?;
        let (r, entries) = ctx.length(r)?;
        let (r, data_block) = ctx.addr(r)?;
        let covered = i.len() - r.len();
        let (r, ()) = verify_checksum(i, covered)?;
        if client > 1 || entry_size == 0 || page_bits > 32 {
            return bad(
                i,
                format!("client {client}, entry size {entry_size}, page bits {page_bits}"),
            );
        }
        Ok((
            r,
            Header {
                client,
                entry_size,
                page_bits,
                entries,
                data_block,
                size: consumed(i, r),
            },
        ))
    })
}

impl Header {
    fn page_entries(&self) -> u64 {
        1u64 << self.page_bits
    }
    fn paged(&self) -> bool {
        self.entries > self.page_entries()
    }
    fn pages(&self) -> u64 {
        self.entries.div_ceil(self.page_entries())
    }
    fn prefix(&self, ctx: &Ctx) -> u64 {
        let bitmap = if self.paged() {
            self.pages().div_ceil(8)
        } else {
            0
        };
        4 + 1 + 1 + ctx.size_of_offsets as u64 + bitmap
    }
    /// Total bytes of the data block including all pages, so it can be
    /// fetched in one read.
    pub fn data_block_size(&self, ctx: &Ctx) -> u64 {
        let e = self.entry_size as u64;
        // Saturating: a hostile entry count must produce an absurd size
        // (rejected by the caller's limits), never an overflow.
        if self.paged() {
            self.prefix(ctx)
                .saturating_add(4)
                .saturating_add(self.entries.saturating_mul(e))
                .saturating_add(self.pages().saturating_mul(4))
        } else {
            self.prefix(ctx)
                .saturating_add(self.entries.saturating_mul(e))
                .saturating_add(4)
        }
    }
}

/// A data block's raw entries; `None` for entries of pages that were never
/// initialised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataBlock {
    pub entries: Vec<Option<Bytes>>,
    /// Bytes of the block, all pages included, as parsed.
    pub size: u64,
}

/// Parse the data block into raw entries.
pub fn parse_data_block(
    bytes: &Bytes,
    address: u64,
    ctx: &Ctx,
    h: &Header,
) -> Result<DataBlock, StructError> {
    run("fixed array data block", address, bytes, |i| {
        let size = h.data_block_size(ctx);
        if (i.len() as u64) < size {
            return short(i, size);
        }
        let (r, ()) = signature(i, b"FADB")?;
        let (r, _version) = u8_(r)?;
        let (r, client) = u8_(r)?;
        if client != h.client {
            return bad(i, "client id differs from the header");
        }
        let prefix = h.prefix(ctx) as usize;
        let e = h.entry_size as usize;
        let mut out = Vec::with_capacity(h.entries as usize);
        if !h.paged() {
            let end = prefix + h.entries as usize * e;
            let (_, ()) = verify_checksum(&i[..end + 4], end)?;
            for k in 0..h.entries as usize {
                out.push(Some(bytes.slice(prefix + k * e..prefix + (k + 1) * e)));
            }
        } else {
            let (_, ()) = verify_checksum(&i[..prefix + 4], prefix)?;
            let bitmap = &i[prefix - h.pages().div_ceil(8) as usize..prefix];
            let mut pos = prefix + 4;
            let per_page = h.page_entries();
            for p in 0..h.pages() {
                let n = per_page.min(h.entries - p * per_page) as usize;
                let init = bitmap
                    .get((p / 8) as usize)
                    .is_some_and(|b| b & (0x80 >> (p % 8)) != 0);
                let end = pos + n * e;
                if init {
                    let (_, ()) = verify_checksum(&i[pos..end + 4], n * e)?;
                }
                for k in 0..n {
                    out.push(init.then(|| bytes.slice(pos + k * e..pos + (k + 1) * e)));
                }
                pos = end + 4;
            }
        }
        let _ = r;
        Ok((&i[size as usize..], DataBlock { entries: out, size }))
    })
}
