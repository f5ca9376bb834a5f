//! File space info message (0x0017, spec IV.A.2.x), found in the superblock
//! extension: tells whether the file uses paged aggregation, where metadata
//! is packed into fixed-size pages worth fetching whole.

use crate::parse::{Ctx, PResult, bad, u8_};

pub const MSG_FILE_SPACE_INFO: u16 = 0x0017;

/// `H5F_FSPACE_STRATEGY_PAGE`.
pub const STRATEGY_PAGE: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSpaceInfo {
    pub strategy: u8,
    pub page_size: u64,
}

impl FileSpaceInfo {
    /// The page size when the file is paged, else `None`.
    pub fn paged(&self) -> Option<u64> {
        (self.strategy == STRATEGY_PAGE && self.page_size >= 512).then_some(self.page_size)
    }
}

pub fn file_space_info<'a>(i: &'a [u8], ctx: &Ctx) -> PResult<'a, FileSpaceInfo> {
    let (r, version) = u8_(i)?;
    if version != 1 {
        // Version 0 (1.10.0 only) predates paging as released; nothing to use.
        return bad(i, format!("unsupported file space info version {version}"));
    }
    let (r, strategy) = u8_(r)?;
    let (r, _persist) = u8_(r)?;
    let (r, _threshold) = ctx.length(r)?;
    let (r, page_size) = ctx.length(r)?;
    Ok((
        r,
        FileSpaceInfo {
            strategy,
            page_size,
        },
    ))
}
