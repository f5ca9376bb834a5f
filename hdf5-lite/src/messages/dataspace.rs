//! Dataspace message (spec IV.A.2.b), versions 1 and 2.

use crate::model::Dataspace;
use crate::parse::{Ctx, PResult, bad, take, u8_};

/// More dimensions than HDF5 allows (32) means a corrupt message.
const MAX_RANK: u8 = 32;

pub fn dataspace<'a>(i: &'a [u8], ctx: &Ctx) -> PResult<'a, Dataspace> {
    let (r, version) = u8_(i)?;
    let (r, rank) = u8_(r)?;
    let (r, flags) = u8_(r)?;
    if rank > MAX_RANK {
        return bad(i, format!("dataspace rank {rank} exceeds 32"));
    }
    let (mut r, kind) = match version {
        1 => {
            let (r, _) = take(r, 5)?;
            (r, if rank == 0 { 0 } else { 1 })
        }
        2 => u8_(r)?,
        v => return bad(i, format!("unsupported dataspace version {v}")),
    };
    let mut dims = Vec::with_capacity(rank as usize);
    for _ in 0..rank {
        let (rr, d) = ctx.length(r)?;
        dims.push(d);
        r = rr;
    }
    let unlimited = if ctx.size_of_lengths >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * ctx.size_of_lengths as u32)) - 1
    };
    let mut max_dims: Vec<Option<u64>> = dims.iter().map(|d| Some(*d)).collect();
    if flags & 1 != 0 {
        for m in max_dims.iter_mut() {
            let (rr, d) = ctx.length(r)?;
            *m = if d == unlimited { None } else { Some(d) };
            r = rr;
        }
    }
    // A dataspace whose element count does not fit 64 bits cannot describe
    // stored data; reject it here rather than saturate everywhere later.
    if dims
        .iter()
        .try_fold(1u64, |a, d| a.checked_mul(*d))
        .is_none()
    {
        return bad(i, format!("dataspace dims {dims:?} overflow 64 bits"));
    }
    let space = match kind {
        0 => Dataspace::Scalar,
        1 => Dataspace::Simple { dims, max_dims },
        2 => Dataspace::Null,
        k => return bad(i, format!("unknown dataspace type {k}")),
    };
    Ok((r, space))
}
