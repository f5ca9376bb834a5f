//! Link message (IV.A.2.g) and link info message (IV.A.2.c).

use crate::parse::{Ctx, PResult, bad, cstr, take, u8_, u16_, uint};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkTarget {
    Hard(u64),
    Soft(String),
    External {
        file: String,
        object: String,
    },
    /// User-defined link types: kept so they can be reported.
    Other(u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub creation_order: Option<u64>,
    pub target: LinkTarget,
}

pub fn link<'a>(i: &'a [u8], ctx: &Ctx) -> PResult<'a, Link> {
    let (r, version) = u8_(i)?;
    if version != 1 {
        return bad(i, format!("unsupported link message version {version}"));
    }
    let (r, flags) = u8_(r)?;
    let (r, ltype) = if flags & 0x08 != 0 { u8_(r)? } else { (r, 0) };
    let (r, creation_order) = if flags & 0x04 != 0 {
        let (r, c) = uint(r, 8)?;
        (r, Some(c))
    } else {
        (r, None)
    };
    let r = if flags & 0x10 != 0 { u8_(r)?.0 } else { r };
    let (r, name_len) = uint(r, 1 << (flags & 3))?;
    let (r, name) = take(r, usize::try_from(name_len).unwrap_or(usize::MAX))?;
    let name = String::from_utf8_lossy(name).into_owned();
    let (r, target) = match ltype {
        0 => {
            let (r, a) = ctx.addr_req(r, "hard link")?;
            (r, LinkTarget::Hard(a))
        }
        1 => {
            let (r, n) = u16_(r)?;
            let (r, p) = take(r, n as usize)?;
            (r, LinkTarget::Soft(String::from_utf8_lossy(p).into_owned()))
        }
        64 => {
            let (r, n) = u16_(r)?;
            let (r, info) = take(r, n as usize)?;
            let (rest, _flags) = u8_(info)?;
            let (rest, file) = cstr(rest)?;
            let object = match cstr(rest) {
                Ok((_, o)) => o,
                Err(_) => rest,
            };
            (
                r,
                LinkTarget::External {
                    file: String::from_utf8_lossy(file).into_owned(),
                    object: String::from_utf8_lossy(object).into_owned(),
                },
            )
        }
        t => {
            let (r, n) = u16_(r)?;
            let (r, _) = take(r, n as usize)?;
            (r, LinkTarget::Other(t))
        }
    };
    Ok((
        r,
        Link {
            name,
            creation_order,
            target,
        },
    ))
}

/// Where a group with dense link storage keeps its links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub creation_order_tracked: bool,
    pub fractal_heap: Option<u64>,
    pub name_index: Option<u64>,
}

pub fn link_info<'a>(i: &'a [u8], ctx: &Ctx) -> PResult<'a, LinkInfo> {
    let (r, version) = u8_(i)?;
    if version != 0 {
        return bad(i, format!("unsupported link info version {version}"));
    }
    let (r, flags) = u8_(r)?;
    let r = if flags & 1 != 0 { take(r, 8)?.0 } else { r };
    let (r, fractal_heap) = ctx.addr(r)?;
    let (r, name_index) = ctx.addr(r)?;
    let r = if flags & 2 != 0 { ctx.addr(r)?.0 } else { r };
    Ok((
        r,
        LinkInfo {
            creation_order_tracked: flags & 1 != 0,
            fractal_heap,
            name_index,
        },
    ))
}

/// Attribute info message (IV.A.2.v): where dense attributes live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeInfo {
    pub fractal_heap: Option<u64>,
    pub name_index: Option<u64>,
}

pub fn attribute_info<'a>(i: &'a [u8], ctx: &Ctx) -> PResult<'a, AttributeInfo> {
    let (r, version) = u8_(i)?;
    if version != 0 {
        return bad(i, format!("unsupported attribute info version {version}"));
    }
    let (r, flags) = u8_(r)?;
    let r = if flags & 1 != 0 { take(r, 2)?.0 } else { r };
    let (r, fractal_heap) = ctx.addr(r)?;
    let (r, name_index) = ctx.addr(r)?;
    let r = if flags & 2 != 0 { ctx.addr(r)?.0 } else { r };
    Ok((
        r,
        AttributeInfo {
            fractal_heap,
            name_index,
        },
    ))
}

/// Symbol table message (IV.A.2.r): an old-style group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymbolTableMessage {
    pub btree: u64,
    pub local_heap: u64,
}

pub fn symbol_table<'a>(i: &'a [u8], ctx: &Ctx) -> PResult<'a, SymbolTableMessage> {
    let (r, btree) = ctx.addr_req(i, "group B-tree")?;
    let (r, local_heap) = ctx.addr_req(r, "group local heap")?;
    Ok((r, SymbolTableMessage { btree, local_heap }))
}
