//! Global heap collections (spec III.E): variable-length data (vlen
//! strings and sequences, region references) referenced by (collection
//! address, object index).
//!
//! Sizes: the first read asks for [`MIN_COLLECTION`] bytes; a collection
//! states its size, returned as `Collection::size` (a short read is
//! `Short { need }` with that size).

use std::collections::HashMap;

use bytes::Bytes;

use crate::parse::{Ctx, StructError, bad, run, short, signature, take, u8_, u16_};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collection {
    pub objects: HashMap<u16, Bytes>,
    /// Bytes of the collection (its stored size), as parsed.
    pub size: u64,
}

/// The smallest collection the library writes; the first read asks for it.
pub const MIN_COLLECTION: u64 = 4096;

pub fn parse(bytes: &Bytes, address: u64, ctx: &Ctx) -> Result<Collection, StructError> {
    run("global heap collection", address, bytes, |i| {
        let (r, ()) = signature(i, b"GCOL")?;
        let (r, version) = u8_(r)?;
        if version != 1 {
            return bad(i, format!("unsupported global heap version {version}"));
        }
        let (r, _) = take(r, 3)?;
        let (_, size) = ctx.length(r)?;
        if (bytes.len() as u64) < size {
            return short(i, size);
        }
        let stored = size;
        let size = size as usize;
        // The header is padded to a multiple of 8 (16 bytes with 4-byte lengths).
        let header = (8 + ctx.size_of_lengths as usize).div_ceil(8) * 8;
        let mut pos = header;
        let mut objects = HashMap::new();
        let obj_header = header; // object headers are padded the same way
        while pos + obj_header <= size {
            let r = &bytes[pos..size];
            let (r, index) = u16_(r)?;
            if index == 0 {
                break; // free space runs to the end
            }
            let (r, _refcount) = u16_(r)?;
            let (r, _) = take(r, 4)?;
            let (_, len) = ctx.length(r)?;
            let start = pos + obj_header;
            let Some(end) = usize::try_from(len).ok().and_then(|l| start.checked_add(l)) else {
                return bad(r, "object size overflows");
            };
            if end > size {
                return bad(
                    r,
                    format!("object {index} of {len} bytes overruns the collection"),
                );
            }
            objects.insert(index, bytes.slice(start..end));
            pos = start + (end - start).div_ceil(8) * 8;
        }
        Ok((
            &i[i.len()..],
            Collection {
                objects,
                size: stored,
            },
        ))
    })
}
