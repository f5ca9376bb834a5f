//! Object headers (spec IV.A.1): version 1 (16-byte prefix, 8-byte aligned
//! messages) and version 2 (`OHDR` / `OCHK` with checksums), split into raw
//! messages. Continuation messages are returned as addresses to fetch, never
//! followed here.
//!
//! Sizes: a header's first block is read with a probe (its size is in its
//! prefix); a continuation block's size is in the message pointing at it.
//! Every parsed block returns the bytes it occupies (`HeaderBlock::size`),
//! which the walk records.

use bytes::Bytes;

use crate::parse::{
    Ctx, PResult, StructError, bad, run, short, signature, take, u8_, u16_, u32_, uint,
    verify_checksum,
};

pub const MSG_NIL: u16 = 0x0000;
pub const MSG_DATASPACE: u16 = 0x0001;
pub const MSG_LINK_INFO: u16 = 0x0002;
pub const MSG_DATATYPE: u16 = 0x0003;
pub const MSG_FILL_VALUE_OLD: u16 = 0x0004;
pub const MSG_FILL_VALUE: u16 = 0x0005;
pub const MSG_LINK: u16 = 0x0006;
pub const MSG_EXTERNAL_FILES: u16 = 0x0007;
pub const MSG_LAYOUT: u16 = 0x0008;
pub const MSG_FILTER_PIPELINE: u16 = 0x000B;
pub const MSG_ATTRIBUTE: u16 = 0x000C;
pub const MSG_SHARED_MESSAGE_TABLE: u16 = 0x000F;
pub const MSG_CONTINUATION: u16 = 0x0010;
pub const MSG_SYMBOL_TABLE: u16 = 0x0011;
pub const MSG_ATTRIBUTE_INFO: u16 = 0x0015;

/// Message flag bit: the body is a shared-message reference.
pub const FLAG_SHARED: u8 = 0x02;

/// One header message, body not yet interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    pub kind: u16,
    pub flags: u8,
    pub creation_order: Option<u16>,
    pub body: Bytes,
}

/// A continuation block to fetch: absolute address and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Continuation {
    pub address: u64,
    pub length: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderBlock {
    pub version: u8,
    /// v2 header flags (creation-order bit applies to continuation blocks).
    pub flags: u8,
    /// Bytes this block occupies in the file.
    pub size: u64,
    pub messages: Vec<RawMessage>,
    pub continuations: Vec<Continuation>,
}

/// Parse the first block of an object header at `address`. `bytes` start at
/// the header; extra bytes past the header are ignored.
pub fn parse_header(bytes: &Bytes, address: u64, ctx: &Ctx) -> Result<HeaderBlock, StructError> {
    if bytes.first() == Some(&1) {
        run("object header v1", address, bytes, |i| {
            v1_header(i, bytes, ctx)
        })
    } else {
        run("object header v2", address, bytes, |i| {
            v2_header(i, bytes, ctx)
        })
    }
}

/// Parse a continuation block of a header of `version`.
pub fn parse_continuation(
    bytes: &Bytes,
    cont: Continuation,
    version: u8,
    flags: u8,
    ctx: &Ctx,
) -> Result<HeaderBlock, StructError> {
    let len = cont.length as usize;
    if bytes.len() < len {
        return Err(StructError::Short {
            need: Some(cont.length),
        });
    }
    let block = bytes.slice(..len);
    if version == 1 {
        run("object header continuation", cont.address, &block, |i| {
            let (msgs, conts) = v1_messages(&block, ctx)?;
            Ok((
                &i[i.len()..],
                HeaderBlock {
                    version,
                    flags,
                    size: cont.length,
                    messages: msgs,
                    continuations: conts,
                },
            ))
        })
    } else {
        run(
            "object header continuation (OCHK)",
            cont.address,
            &block,
            |i| {
                let (rest, ()) = signature(i, b"OCHK")?;
                if block.len() < 8 {
                    return bad(i, "OCHK block too small");
                }
                let (_, ()) = verify_checksum(&block, block.len() - 4)?;
                let start = block.len() - rest.len();
                let body = block.slice(start..block.len() - 4);
                let (msgs, conts) = v2_messages(&body, flags, ctx)?;
                Ok((
                    &i[i.len()..],
                    HeaderBlock {
                        version,
                        flags,
                        size: cont.length,
                        messages: msgs,
                        continuations: conts,
                    },
                ))
            },
        )
    }
}

fn v1_header<'a>(i: &'a [u8], whole: &Bytes, ctx: &Ctx) -> PResult<'a, HeaderBlock> {
    let (r, _version) = u8_(i)?;
    let (r, _) = u8_(r)?;
    let (r, _nmsgs) = u16_(r)?;
    let (r, _refcount) = u32_(r)?;
    let (r, size) = u32_(r)?;
    let (_, _) = take(r, 4)?; // alignment padding to 16
    let need = 16 + size as u64;
    if (whole.len() as u64) < need {
        return short(i, need);
    }
    let block = whole.slice(16..16 + size as usize);
    let (msgs, conts) = v1_messages(&block, ctx)?;
    Ok((
        &i[i.len()..],
        HeaderBlock {
            version: 1,
            flags: 0,
            size: need,
            messages: msgs,
            continuations: conts,
        },
    ))
}

type Msgs = (Vec<RawMessage>, Vec<Continuation>);

fn v1_messages(block: &Bytes, ctx: &Ctx) -> Result<Msgs, nom::Err<crate::parse::PErr>> {
    let mut msgs = Vec::new();
    let mut conts = Vec::new();
    let mut pos = 0usize;
    while pos + 8 <= block.len() {
        let r = &block[pos..];
        let (r, kind) = u16_(r)?;
        let (r, size) = u16_(r)?;
        let (r, flags) = u8_(r)?;
        let (_, _) = take(r, 3)?;
        let start = pos + 8;
        let end = start + size as usize;
        if end > block.len() {
            return Err(overrun(kind, size, block.len() - pos));
        }
        let body = block.slice(start..end);
        push_message(kind, flags, None, body, ctx, &mut msgs, &mut conts)?;
        pos = end;
    }
    Ok((msgs, conts))
}

fn v2_header<'a>(i: &'a [u8], whole: &Bytes, ctx: &Ctx) -> PResult<'a, HeaderBlock> {
    let (r, ()) = signature(i, b"OHDR")?;
    let (r, version) = u8_(r)?;
    if version != 2 {
        return bad(i, format!("unsupported object header version {version}"));
    }
    let (r, flags) = u8_(r)?;
    let r = if flags & 0x20 != 0 { take(r, 16)?.0 } else { r };
    let r = if flags & 0x10 != 0 { take(r, 4)?.0 } else { r };
    let (r, size) = uint(r, 1 << (flags & 3))?;
    let prefix = whole.len() - r.len();
    let need = (prefix as u64).saturating_add(size).saturating_add(4);
    if (whole.len() as u64) < need {
        return short(i, need);
    }
    let total = need as usize;
    let (_, ()) = verify_checksum(&whole[..total], total - 4)?;
    let body = whole.slice(prefix..total - 4);
    let (msgs, conts) = v2_messages(&body, flags, ctx)?;
    Ok((
        &i[i.len()..],
        HeaderBlock {
            version: 2,
            flags,
            size: need,
            messages: msgs,
            continuations: conts,
        },
    ))
}

fn v2_messages(
    block: &Bytes,
    hdr_flags: u8,
    ctx: &Ctx,
) -> Result<Msgs, nom::Err<crate::parse::PErr>> {
    // The creation-order field is present in every message of every block
    // when the header's flag bit 2 is set; continuation blocks inherit it
    // from the header, so callers pass the header flags.
    let order = hdr_flags & 0x04 != 0;
    let hdr_len = if order { 6 } else { 4 };
    let mut msgs = Vec::new();
    let mut conts = Vec::new();
    let mut pos = 0usize;
    while pos + hdr_len <= block.len() {
        let r = &block[pos..];
        let (r, kind) = u8_(r)?;
        let (r, size) = u16_(r)?;
        let (r, flags) = u8_(r)?;
        let (_, co) = if order {
            u16_(r).map(|(a, b)| (a, Some(b)))?
        } else {
            (r, None)
        };
        let start = pos + hdr_len;
        let end = start + size as usize;
        if end > block.len() {
            return Err(overrun(kind as u16, size, block.len() - pos));
        }
        push_message(
            kind as u16,
            flags,
            co,
            block.slice(start..end),
            ctx,
            &mut msgs,
            &mut conts,
        )?;
        pos = end;
    }
    Ok((msgs, conts))
}

fn overrun(kind: u16, size: u16, remaining: usize) -> nom::Err<crate::parse::PErr> {
    nom::Err::Failure(crate::parse::PErr {
        failure: crate::parse::Failure::Bad(format!(
            "message {kind:#x} of {size} bytes overruns the header block"
        )),
        remaining,
    })
}

fn push_message(
    kind: u16,
    flags: u8,
    creation_order: Option<u16>,
    body: Bytes,
    ctx: &Ctx,
    msgs: &mut Vec<RawMessage>,
    conts: &mut Vec<Continuation>,
) -> Result<(), nom::Err<crate::parse::PErr>> {
    match kind {
        MSG_NIL => {}
        MSG_CONTINUATION => {
            let (r, address) = ctx.addr_req(&body, "continuation block")?;
            let (_, length) = ctx.length(r)?;
            conts.push(Continuation { address, length });
        }
        _ => msgs.push(RawMessage {
            kind,
            flags,
            creation_order,
            body,
        }),
    }
    Ok(())
}
