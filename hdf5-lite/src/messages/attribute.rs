//! Attribute message (IV.A.2.m), versions 1-3. The datatype may be a
//! shared-message reference (committed datatype), resolved by the walker.

use crate::model::Dataspace;
use crate::parse::{Ctx, PResult, bad, take, u8_, u16_};

use super::MaybeShared;
use super::dataspace::dataspace;
use super::datatype::datatype;
use super::shared::{SharedRef, shared};

#[derive(Debug, Clone, PartialEq)]
pub struct AttributeMessage {
    pub name: String,
    pub datatype: MaybeShared,
    pub dataspace: Dataspace,
    pub data: Vec<u8>,
}

pub fn attribute<'a>(i: &'a [u8], ctx: &Ctx) -> PResult<'a, AttributeMessage> {
    let (r, version) = u8_(i)?;
    let (r, flags) = u8_(r)?;
    let (r, name_size) = u16_(r)?;
    let (r, dt_size) = u16_(r)?;
    let (r, ds_size) = u16_(r)?;
    let r = if version == 3 { u8_(r)?.0 } else { r };
    if !(1..=3).contains(&version) {
        return bad(
            i,
            format!("unsupported attribute message version {version}"),
        );
    }
    let pad = |n: u16| {
        if version == 1 {
            (n as usize).div_ceil(8) * 8
        } else {
            n as usize
        }
    };
    let (r, name) = take(r, pad(name_size))?;
    let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
    let name = String::from_utf8_lossy(&name[..end]).into_owned();
    let (r, dt_bytes) = take(r, pad(dt_size))?;
    let (r, ds_bytes) = take(r, pad(ds_size))?;
    let dtype = if flags & 1 != 0 {
        let (_, s): (_, SharedRef) = shared(dt_bytes, ctx)?;
        MaybeShared::Shared(s)
    } else {
        MaybeShared::Inline(datatype(dt_bytes)?.1)
    };
    if flags & 2 != 0 {
        return bad(i, "shared dataspaces in attributes are not supported");
    }
    let (_, space) = dataspace(ds_bytes, ctx)?;
    // The data runs to the end of the message; the walker checks that its
    // length matches the datatype and dataspace before decoding.
    Ok((
        &r[r.len()..],
        AttributeMessage {
            name,
            datatype: dtype,
            dataspace: space,
            data: r.to_vec(),
        },
    ))
}
