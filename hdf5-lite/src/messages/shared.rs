//! Shared message references (IV.A.2.p-ish: "Shared Message" encoding used
//! when a header message has the shared flag).

use crate::parse::{Ctx, PResult, bad, take, u8_};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SharedRef {
    /// The message lives in another object header (committed datatype).
    ObjectHeader(u64),
    /// The message lives in the shared-message heap, by fractal heap id.
    Heap([u8; 8]),
}

pub fn shared<'a>(i: &'a [u8], ctx: &Ctx) -> PResult<'a, SharedRef> {
    let (r, version) = u8_(i)?;
    let (r, kind) = u8_(r)?;
    match version {
        1 => {
            let (r, _) = take(r, 6)?;
            let (r, a) = ctx.addr_req(r, "shared message")?;
            Ok((r, SharedRef::ObjectHeader(a)))
        }
        2 => {
            let (r, a) = ctx.addr_req(r, "shared message")?;
            Ok((r, SharedRef::ObjectHeader(a)))
        }
        3 => match kind {
            1 => {
                let (r, id) = take(r, 8)?;
                let mut h = [0u8; 8];
                h.copy_from_slice(id);
                Ok((r, SharedRef::Heap(h)))
            }
            2 | 3 => {
                let (r, a) = ctx.addr_req(r, "shared message")?;
                Ok((r, SharedRef::ObjectHeader(a)))
            }
            k => bad(i, format!("unknown shared message type {k}")),
        },
        v => bad(i, format!("unsupported shared message version {v}")),
    }
}
