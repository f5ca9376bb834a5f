//! Filter pipeline message (spec IV.A.2.l), versions 1 and 2.

use crate::model::Filter;
use crate::parse::{PResult, bad, take, u8_, u16_, u32_};

pub fn filter_pipeline(i: &[u8]) -> PResult<'_, Vec<Filter>> {
    let (r, version) = u8_(i)?;
    let (mut r, n) = u8_(r)?;
    if version == 1 {
        r = take(r, 6)?.0;
    } else if version != 2 {
        return bad(i, format!("unsupported filter pipeline version {version}"));
    }
    if n > 32 {
        return bad(i, format!("{n} filters (at most 32 allowed)"));
    }
    let mut filters = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let (rr, id) = u16_(r)?;
        let (rr, name_len) = if version == 1 || id >= 256 {
            u16_(rr)?
        } else {
            (rr, 0)
        };
        let (rr, flags) = u16_(rr)?;
        let (rr, nvalues) = u16_(rr)?;
        let name_field = if version == 1 {
            (name_len as usize).div_ceil(8) * 8
        } else {
            name_len as usize
        };
        let (rr, name_bytes) = take(rr, name_field)?;
        let mut rr = rr;
        let mut client_data = Vec::with_capacity(nvalues as usize);
        for _ in 0..nvalues {
            let (x, v) = u32_(rr)?;
            client_data.push(v);
            rr = x;
        }
        if version == 1 && nvalues % 2 == 1 {
            rr = take(rr, 4)?.0;
        }
        let end = name_bytes
            .iter()
            .position(|b| *b == 0)
            .unwrap_or(name_bytes.len());
        let name = (end > 0).then(|| String::from_utf8_lossy(&name_bytes[..end]).into_owned());
        filters.push(Filter {
            id,
            name,
            optional: flags & 1 != 0,
            client_data,
        });
        r = rr;
    }
    Ok((r, filters))
}
