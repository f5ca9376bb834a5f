//! Local heap (spec III.D): names of old-style group members.
//!
//! Sizes: [`header_size`] sizes the first read (header and the data segment
//! usually behind it) before the bytes exist; a parsed header returns the
//! bytes it occupies (`LocalHeap::size`), which the walk records.

use crate::parse::{Ctx, PResult, StructError, bad, consumed, run, signature, take, u8_};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalHeap {
    pub data_size: u64,
    pub data_address: u64,
    /// Bytes this structure occupies in the file, as parsed.
    pub size: u64,
}

pub fn parse(bytes: &[u8], address: u64, ctx: &Ctx) -> Result<LocalHeap, StructError> {
    run("local heap", address, bytes, |i| header(i, ctx))
}

fn header<'a>(i: &'a [u8], ctx: &Ctx) -> PResult<'a, LocalHeap> {
    let (r, ()) = signature(i, b"HEAP")?;
    let (r, version) = u8_(r)?;
    if version != 0 {
        return bad(i, format!("unsupported local heap version {version}"));
    }
    let (r, _) = take(r, 3)?;
    let (r, data_size) = ctx.length(r)?;
    let (r, _free) = ctx.length(r)?;
    let (r, data_address) = ctx.addr_req(r, "local heap data segment")?;
    Ok((
        r,
        LocalHeap {
            data_size,
            data_address,
            size: consumed(i, r),
        },
    ))
}

/// Size of the header, so the data segment (usually right behind it) can
/// be requested in the same read.
pub fn header_size(ctx: &Ctx) -> u64 {
    8 + 2 * ctx.size_of_lengths as u64 + ctx.size_of_offsets as u64
}

/// A NUL-terminated string at `offset` of a heap's data segment.
pub fn string_at(data: &[u8], offset: u64) -> Option<String> {
    let s = data.get(usize::try_from(offset).ok()?..)?;
    let end = s.iter().position(|b| *b == 0)?;
    Some(String::from_utf8_lossy(&s[..end]).into_owned())
}
