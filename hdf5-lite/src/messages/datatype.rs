//! Datatype message (spec IV.A.2.d), all classes and versions 1-4.

use crate::model::{ByteOrder, CharSet, CompoundMember, Datatype, ReferenceKind, StringPadding};
use crate::parse::{PResult, bad, bytes_needed, cstr, take, u8_, u16_, u32_, uint};

/// Nesting deeper than this is treated as hostile (compound of array of ...).
const MAX_DEPTH: u32 = 32;

pub fn datatype(i: &[u8]) -> PResult<'_, Datatype> {
    dt(i, 0)
}

fn order(bits: u32) -> ByteOrder {
    if bits & 1 == 0 {
        ByteOrder::LittleEndian
    } else {
        ByteOrder::BigEndian
    }
}

fn padding(p: u32) -> StringPadding {
    match p & 0xf {
        0 => StringPadding::NullTerminate,
        1 => StringPadding::NullPad,
        _ => StringPadding::SpacePad,
    }
}

fn charset(c: u32) -> CharSet {
    if c & 0xf == 1 {
        CharSet::Utf8
    } else {
        CharSet::Ascii
    }
}

/// A name padded with NULs to a multiple of 8 bytes (datatype v1/v2).
fn padded_name(i: &[u8]) -> PResult<'_, String> {
    let (_, name) = cstr(i)?;
    let consumed = (name.len() + 1).div_ceil(8) * 8;
    let (r, _) = take(i, consumed)?;
    Ok((r, String::from_utf8_lossy(name).into_owned()))
}

fn plain_name(i: &[u8]) -> PResult<'_, String> {
    let (r, name) = cstr(i)?;
    Ok((r, String::from_utf8_lossy(name).into_owned()))
}

fn dt(i: &[u8], depth: u32) -> PResult<'_, Datatype> {
    if depth > MAX_DEPTH {
        return bad(i, "datatype nested too deeply");
    }
    let (r, cv) = u8_(i)?;
    let class = cv & 0x0f;
    let version = cv >> 4;
    let (r, b0) = u8_(r)?;
    let (r, b1) = u8_(r)?;
    let (r, b2) = u8_(r)?;
    let bits = b0 as u32 | (b1 as u32) << 8 | (b2 as u32) << 16;
    let (r, size) = u32_(r)?;
    if !(1..=4).contains(&version) {
        return bad(i, format!("unsupported datatype version {version}"));
    }
    match class {
        0 => {
            let (r, bit_offset) = u16_(r)?;
            let (r, bit_precision) = u16_(r)?;
            Ok((
                r,
                Datatype::FixedPoint {
                    size,
                    order: order(bits),
                    signed: bits & 0x08 != 0,
                    bit_offset,
                    bit_precision,
                },
            ))
        }
        1 => {
            let (r, bit_offset) = u16_(r)?;
            let (r, bit_precision) = u16_(r)?;
            let (r, exponent_location) = u8_(r)?;
            let (r, exponent_size) = u8_(r)?;
            let (r, mantissa_location) = u8_(r)?;
            let (r, mantissa_size) = u8_(r)?;
            let (r, exponent_bias) = u32_(r)?;
            if bits & 0x40 != 0 && bits & 1 != 0 {
                return bad(i, "VAX floating-point byte order is not supported");
            }
            Ok((
                r,
                Datatype::FloatingPoint {
                    size,
                    order: order(bits),
                    bit_offset,
                    bit_precision,
                    exponent_location,
                    exponent_size,
                    mantissa_location,
                    mantissa_size,
                    exponent_bias,
                },
            ))
        }
        2 => {
            // Time class: obsolete, never written by modern libraries;
            // expose it as an integer of its size so the file still walks.
            let (r, bit_precision) = u16_(r)?;
            Ok((
                r,
                Datatype::FixedPoint {
                    size,
                    order: order(bits),
                    signed: false,
                    bit_offset: 0,
                    bit_precision,
                },
            ))
        }
        3 => Ok((
            r,
            Datatype::String {
                size,
                padding: padding(bits),
                charset: charset(bits >> 4),
            },
        )),
        4 => {
            let (r, bit_offset) = u16_(r)?;
            let (r, bit_precision) = u16_(r)?;
            Ok((
                r,
                Datatype::Bitfield {
                    size,
                    order: order(bits),
                    bit_offset,
                    bit_precision,
                },
            ))
        }
        5 => {
            let tag_len = (bits & 0xff) as usize;
            let (r, tag) = take(r, tag_len)?;
            let end = tag.iter().position(|b| *b == 0).unwrap_or(tag.len());
            Ok((
                r,
                Datatype::Opaque {
                    size,
                    tag: String::from_utf8_lossy(&tag[..end]).into_owned(),
                },
            ))
        }
        6 => compound(r, version, bits & 0xffff, size, depth),
        7 => {
            let kind = match bits & 0xf {
                0 => ReferenceKind::Object,
                1 => ReferenceKind::Region,
                k => ReferenceKind::Other(k as u8),
            };
            // Version 4 references carry extra properties we do not need
            // (the element size covers them); nothing further to read.
            Ok((r, Datatype::Reference { size, kind }))
        }
        8 => {
            let (mut r, base) = dt(r, depth + 1)?;
            let n = (bits & 0xffff) as usize;
            let mut names = Vec::with_capacity(n.min(r.len()));
            for _ in 0..n {
                let (rr, name) = if version >= 3 {
                    plain_name(r)?
                } else {
                    padded_name(r)?
                };
                names.push(name);
                r = rr;
            }
            let bsize = base.size() as usize;
            let mut members = Vec::with_capacity(names.len());
            for name in names {
                let (rr, v) = take(r, bsize)?;
                members.push((name, v.to_vec()));
                r = rr;
            }
            Ok((
                r,
                Datatype::Enum {
                    size,
                    base: Box::new(base),
                    members,
                },
            ))
        }
        9 => {
            let (r, base) = dt(r, depth + 1)?;
            if bits & 0xf == 1 {
                Ok((
                    r,
                    Datatype::VlenString {
                        size,
                        padding: padding(bits >> 4),
                        charset: charset(bits >> 8),
                    },
                ))
            } else {
                Ok((
                    r,
                    Datatype::VlenSequence {
                        size,
                        base: Box::new(base),
                    },
                ))
            }
        }
        10 => {
            let (mut r, rank) = u8_(r)?;
            if version < 3 {
                r = take(r, 3)?.0;
            }
            let mut dims = Vec::with_capacity(rank as usize);
            for _ in 0..rank {
                let (rr, d) = u32_(r)?;
                dims.push(d);
                r = rr;
            }
            if version < 3 {
                r = take(r, 4 * rank as usize)?.0; // permutation (unused)
            }
            let (r, base) = dt(r, depth + 1)?;
            Ok((
                r,
                Datatype::Array {
                    size,
                    dims,
                    base: Box::new(base),
                },
            ))
        }
        c => bad(i, format!("unknown datatype class {c}")),
    }
}

fn compound(mut r: &[u8], version: u8, n: u32, size: u32, depth: u32) -> PResult<'_, Datatype> {
    let mut members = Vec::with_capacity((n as usize).min(r.len()));
    let offset_size = bytes_needed(size as u64).max(1);
    for _ in 0..n {
        let (rr, name) = if version >= 3 {
            plain_name(r)?
        } else {
            padded_name(r)?
        };
        r = rr;
        let (rr, offset) = if version >= 3 {
            let (rr, o) = uint(r, offset_size)?;
            (rr, o as u32)
        } else {
            u32_(r)?
        };
        r = rr;
        let mut v1_dims = Vec::new();
        if version == 1 {
            let (rr, rank) = u8_(r)?;
            let (rr, _) = take(rr, 3)?; // reserved
            let (rr, _) = take(rr, 4)?; // permutation
            let (rr, _) = take(rr, 4)?; // reserved
            let mut rr = rr;
            for k in 0..4 {
                let (x, d) = u32_(rr)?;
                if k < rank {
                    v1_dims.push(d);
                }
                rr = x;
            }
            r = rr;
        }
        let (rr, mut datatype) = dt(r, depth + 1)?;
        r = rr;
        if !v1_dims.is_empty() {
            let count = v1_dims.iter().try_fold(1u32, |a, d| a.checked_mul(*d));
            let Some(size) = count.and_then(|c| datatype.size().checked_mul(c)) else {
                return bad(
                    r,
                    format!("compound member {name}: array dims {v1_dims:?} overflow"),
                );
            };
            datatype = Datatype::Array {
                size,
                dims: v1_dims,
                base: Box::new(datatype),
            };
        }
        members.push(CompoundMember {
            name,
            offset,
            datatype,
        });
    }
    Ok((r, Datatype::Compound { size, members }))
}
