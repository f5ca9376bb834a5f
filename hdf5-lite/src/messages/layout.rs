//! Data layout message (spec IV.A.2.i), versions 1-4. Chunk indexes are
//! returned as a description of where to look, not followed.

use crate::parse::{Ctx, PResult, bad, take, u8_, u16_, u32_, uint};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkIndex {
    /// Version 1 B-tree (type 1); `None` when no chunk was ever written.
    BTreeV1 {
        address: Option<u64>,
    },
    SingleChunk {
        address: Option<u64>,
        /// (stored size, filter mask) when the chunk is filtered.
        filtered: Option<(u64, u32)>,
    },
    Implicit {
        address: Option<u64>,
    },
    FixedArray {
        address: Option<u64>,
        page_bits: u8,
    },
    ExtensibleArray {
        address: Option<u64>,
    },
    BTreeV2 {
        address: Option<u64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataLayout {
    Compact {
        data: Vec<u8>,
    },
    /// `size: None` for versions 1-2, which leave it to the dataspace.
    Contiguous {
        address: Option<u64>,
        size: Option<u64>,
    },
    Chunked {
        /// Chunk dims in elements (rank entries) followed by nothing: the
        /// element-size dimension is split off into `element_size`.
        dims: Vec<u64>,
        element_size: u64,
        index: ChunkIndex,
        /// Layout v4 flag: partial edge chunks are not filtered.
        unfiltered_edges: bool,
    },
    Virtual,
}

const MAX_RANK: u8 = 33;

pub fn layout<'a>(i: &'a [u8], ctx: &Ctx) -> PResult<'a, DataLayout> {
    let (r, version) = u8_(i)?;
    match version {
        1 | 2 => {
            let (r, ndims) = u8_(r)?;
            let (r, class) = u8_(r)?;
            let (r, _) = take(r, 5)?;
            if ndims > MAX_RANK {
                return bad(i, format!("layout rank {ndims}"));
            }
            let (mut r, address) = if class == 0 { (r, None) } else { ctx.addr(r)? };
            let mut dims = Vec::with_capacity(ndims as usize);
            for _ in 0..ndims {
                let (rr, d) = u32_(r)?;
                dims.push(d as u64);
                r = rr;
            }
            match class {
                0 => {
                    let (r, size) = u32_(r)?;
                    let (r, data) = take(r, size as usize)?;
                    Ok((
                        r,
                        DataLayout::Compact {
                            data: data.to_vec(),
                        },
                    ))
                }
                1 => Ok((
                    r,
                    DataLayout::Contiguous {
                        address,
                        size: None,
                    },
                )),
                2 => {
                    // The stored dims end with the element size.
                    let element_size = dims.pop().unwrap_or(0);
                    Ok((
                        r,
                        DataLayout::Chunked {
                            dims,
                            element_size,
                            index: ChunkIndex::BTreeV1 { address },
                            unfiltered_edges: false,
                        },
                    ))
                }
                c => bad(i, format!("unknown layout class {c}")),
            }
        }
        3 | 4 => {
            let (r, class) = u8_(r)?;
            match class {
                0 => {
                    let (r, size) = u16_(r)?;
                    let (r, data) = take(r, size as usize)?;
                    Ok((
                        r,
                        DataLayout::Compact {
                            data: data.to_vec(),
                        },
                    ))
                }
                1 => {
                    let (r, address) = ctx.addr(r)?;
                    let (r, size) = ctx.length(r)?;
                    Ok((
                        r,
                        DataLayout::Contiguous {
                            address,
                            size: Some(size),
                        },
                    ))
                }
                2 if version == 3 => {
                    let (r, ndims) = u8_(r)?;
                    if ndims == 0 || ndims > MAX_RANK {
                        return bad(i, format!("chunked layout rank {ndims}"));
                    }
                    let (mut r, address) = ctx.addr(r)?;
                    let mut dims = Vec::with_capacity(ndims as usize);
                    for _ in 0..ndims {
                        let (rr, d) = u32_(r)?;
                        dims.push(d as u64);
                        r = rr;
                    }
                    let element_size = dims.pop().unwrap_or(0);
                    Ok((
                        r,
                        DataLayout::Chunked {
                            dims,
                            element_size,
                            index: ChunkIndex::BTreeV1 { address },
                            unfiltered_edges: false,
                        },
                    ))
                }
                2 => {
                    let (r, flags) = u8_(r)?;
                    let (r, ndims) = u8_(r)?;
                    let (mut r, enc) = u8_(r)?;
                    if ndims == 0 || ndims > MAX_RANK || !(1..=8).contains(&enc) {
                        return bad(i, format!("chunked layout rank {ndims}, dim size {enc}"));
                    }
                    let mut dims = Vec::with_capacity(ndims as usize);
                    for _ in 0..ndims {
                        let (rr, d) = uint(r, enc)?;
                        dims.push(d);
                        r = rr;
                    }
                    let element_size = dims.pop().unwrap_or(0);
                    let (r, itype) = u8_(r)?;
                    let (r, index) = match itype {
                        1 => {
                            let (r, filtered) = if flags & 0x02 != 0 {
                                let (r, size) = ctx.length(r)?;
                                let (r, mask) = u32_(r)?;
                                (r, Some((size, mask)))
                            } else {
                                (r, None)
                            };
                            let (r, address) = ctx.addr(r)?;
                            (r, ChunkIndex::SingleChunk { address, filtered })
                        }
                        2 => {
                            let (r, address) = ctx.addr(r)?;
                            (r, ChunkIndex::Implicit { address })
                        }
                        3 => {
                            let (r, page_bits) = u8_(r)?;
                            let (r, address) = ctx.addr(r)?;
                            (r, ChunkIndex::FixedArray { address, page_bits })
                        }
                        4 => {
                            let (r, _) = take(r, 5)?; // creation parameters, repeated in the header
                            let (r, address) = ctx.addr(r)?;
                            (r, ChunkIndex::ExtensibleArray { address })
                        }
                        5 => {
                            let (r, _) = take(r, 6)?; // node size, split/merge percent
                            let (r, address) = ctx.addr(r)?;
                            (r, ChunkIndex::BTreeV2 { address })
                        }
                        t => return bad(i, format!("unknown chunk index type {t}")),
                    };
                    Ok((
                        r,
                        DataLayout::Chunked {
                            dims,
                            element_size,
                            index,
                            unfiltered_edges: flags & 0x01 != 0,
                        },
                    ))
                }
                3 => Ok((r, DataLayout::Virtual)),
                c => bad(i, format!("unknown layout class {c}")),
            }
        }
        v => bad(i, format!("unsupported layout message version {v}")),
    }
}
