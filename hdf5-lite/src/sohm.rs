//! Shared object header message table (spec III.D, `SMTB`): for each
//! index, the message types it holds and the fractal heap their shared
//! messages live in. Only what the walk needs is decoded.
//!
//! Sizes: the table's length depends on the number of indexes, which is in
//! the superblock extension's message, not here; the walk reads a probe and
//! this parser reads entries until the checksum, so no size is returned.

use crate::object_header as oh;
use crate::parse::{Ctx, StructError};

/// Message type flags and heap address of each index.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Table {
    pub heaps: Vec<(u16, u64)>,
}

/// The bit of a message type in an index's "message type flags".
pub fn message_type_bit(kind: u16) -> u32 {
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

/// Parse the table at `address`.
pub fn parse(bytes: &[u8], address: u64, ctx: &Ctx) -> Result<Table, StructError> {
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
        Ok((r, Table { heaps }))
    })
}
