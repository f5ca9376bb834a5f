//! Fill value messages: old (0x0004, IV.A.2.e) and new (0x0005, IV.A.2.f).

use crate::model::FillValue;
use crate::parse::{PResult, bad, take, u8_, u32_};

pub fn fill_value_old(i: &[u8]) -> PResult<'_, FillValue> {
    let (r, size) = u32_(i)?;
    let (r, v) = take(r, size as usize)?;
    Ok((
        r,
        FillValue {
            value: if size > 0 { Some(v.to_vec()) } else { None },
            user_defined: size > 0,
            ..FillValue::default()
        },
    ))
}

pub fn fill_value(i: &[u8]) -> PResult<'_, FillValue> {
    let (r, version) = u8_(i)?;
    match version {
        1 | 2 => {
            let (r, alloc_time) = u8_(r)?;
            let (r, fill_time) = u8_(r)?;
            let (r, defined) = u8_(r)?;
            let (r, value) = if version == 1 || defined != 0 {
                let (r, size) = u32_(r)?;
                let (r, v) = take(r, size as usize)?;
                (
                    r,
                    if size > 0 && defined != 0 {
                        Some(v.to_vec())
                    } else {
                        None
                    },
                )
            } else {
                (r, None)
            };
            Ok((
                r,
                FillValue {
                    user_defined: value.is_some(),
                    value,
                    fill_time,
                    alloc_time,
                },
            ))
        }
        3 => {
            let (r, flags) = u8_(r)?;
            let (r, value) = if flags & 0x20 != 0 {
                let (r, size) = u32_(r)?;
                let (r, v) = take(r, size as usize)?;
                (r, if size > 0 { Some(v.to_vec()) } else { None })
            } else {
                (r, None)
            };
            Ok((
                r,
                FillValue {
                    user_defined: value.is_some(),
                    value,
                    alloc_time: flags & 3,
                    fill_time: (flags >> 2) & 3,
                },
            ))
        }
        v => bad(i, format!("unsupported fill value message version {v}")),
    }
}
