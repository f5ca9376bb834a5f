//! Superblock (spec III.A): versions 0-3, located by signature search at
//! 0, 512, 1024, 2048, ... so files with a user block are found.
//!
//! Sizes: the superblock is read within the file's head, so no size is
//! needed before its bytes exist; a parsed superblock returns the bytes it
//! occupies (`Superblock::size`, by version), which the walk records.

use crate::parse::{
    Ctx, PResult, StructError, bad, consumed, run, take, u8_, u16_, u32_, verify_checksum,
};

pub const SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    pub version: u8,
    pub ctx: Ctx,
    /// Root group object header (absolute).
    pub root_object_header: u64,
    /// Superblock extension object header (v2/v3), if any.
    pub extension: Option<u64>,
    /// Group B-tree leaf K (v0/v1) for symbol table nodes.
    pub group_leaf_k: u16,
    pub group_internal_k: u16,
    /// Indexed storage (chunk B-tree) internal node K.
    pub istore_k: u16,
    pub end_of_file: Option<u64>,
    /// Bytes this structure occupies in the file, as parsed.
    pub size: u64,
}

/// Where to look for the signature: 0, then powers of two from 512.
pub fn candidate_offsets(file_size: u64) -> impl Iterator<Item = u64> {
    std::iter::once(0u64)
        .chain((9..63).map(|b| 1u64 << b))
        .take_while(move |o| *o < file_size)
}

/// Find the signature in a buffer that starts at file offset 0.
pub fn find_signature(head: &[u8]) -> Option<u64> {
    candidate_offsets(head.len() as u64)
        .find(|o| head.get(*o as usize..*o as usize + 8) == Some(&SIGNATURE[..]))
}

/// Parse a superblock; `bytes` start at the signature found at `at`.
pub fn parse(bytes: &[u8], at: u64) -> Result<Superblock, StructError> {
    run("superblock", at, bytes, |i| superblock(i, at))
}

fn superblock(whole: &[u8], at: u64) -> PResult<'_, Superblock> {
    let (i, sig) = take(whole, 8)?;
    if sig != SIGNATURE {
        return bad(whole, "no HDF5 signature");
    }
    let (i, version) = u8_(i)?;
    match version {
        0 | 1 => {
            let (i, _freespace_v) = u8_(i)?;
            let (i, _root_stab_v) = u8_(i)?;
            let (i, _) = u8_(i)?;
            let (i, _shared_hdr_v) = u8_(i)?;
            let (i, so) = u8_(i)?;
            let (i, sl) = u8_(i)?;
            check_sizes(i, so, sl)?;
            let (i, _) = u8_(i)?;
            let (i, leaf_k) = u16_(i)?;
            let (i, internal_k) = u16_(i)?;
            let (i, _flags) = u32_(i)?;
            let (i, istore_k) = if version == 1 {
                let (i, k) = u16_(i)?;
                let (i, _) = u16_(i)?;
                (i, k)
            } else {
                (i, 32)
            };
            // Stored base address is normally 0; the library treats the
            // signature position as the base, and so do we.
            let ctx = Ctx::new(so, sl, at);
            let (i, _base) = ctx.addr(i)?;
            let (i, _free_space) = ctx.addr(i)?;
            let (i, eof) = ctx.addr(i)?;
            let (i, _driver) = ctx.addr(i)?;
            // Root group symbol table entry.
            let (i, _link_name_off) = ctx.addr(i)?;
            let (i, root) = ctx.addr_req(i, "root group object header")?;
            let (i, _cache_type) = u32_(i)?;
            let (i, _) = u32_(i)?;
            let (i, _scratch) = take(i, 16)?;
            if leaf_k == 0 || internal_k == 0 || istore_k == 0 {
                return bad(i, "B-tree K of 0");
            }
            let size = consumed(whole, i);
            Ok((
                i,
                Superblock {
                    version,
                    ctx,
                    root_object_header: root,
                    extension: None,
                    group_leaf_k: leaf_k,
                    group_internal_k: internal_k,
                    istore_k,
                    end_of_file: eof,
                    size,
                },
            ))
        }
        2 | 3 => {
            let (i, so) = u8_(i)?;
            let (i, sl) = u8_(i)?;
            check_sizes(i, so, sl)?;
            let (i, _flags) = u8_(i)?;
            let ctx = Ctx::new(so, sl, at);
            let (i, _base) = ctx.addr(i)?;
            let (i, ext) = ctx.addr(i)?;
            let (i, eof) = ctx.addr(i)?;
            let (i, root) = ctx.addr_req(i, "root group object header")?;
            let covered = whole.len() - i.len();
            let (i, ()) = verify_checksum(whole, covered)?;
            let size = consumed(whole, i);
            Ok((
                i,
                Superblock {
                    version,
                    ctx,
                    root_object_header: root,
                    extension: ext,
                    group_leaf_k: 4,
                    group_internal_k: 16,
                    istore_k: 32,
                    end_of_file: eof,
                    size,
                },
            ))
        }
        v => bad(whole, format!("unsupported superblock version {v}")),
    }
}

fn check_sizes(i: &[u8], so: u8, sl: u8) -> PResult<'_, ()> {
    let ok = |s: u8| matches!(s, 2 | 4 | 8);
    if !ok(so) || !ok(sl) {
        return bad(
            i,
            format!("unsupported size of offsets {so} / lengths {sl}"),
        );
    }
    Ok((i, ()))
}
