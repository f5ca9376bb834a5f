//! zarr v2 metadata: `.zarray`, `.zgroup`, dtype strings and `fill_value`
//! encoding, following zarr 2.18's `Metadata2` and h5py's dtype mapping.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hdf5_lite::{ByteOrder, Datatype};

use crate::json::{Json, object};

mod zarray;
pub use zarray::{ZArray, ZArrayError};

/// numpy dtype kind of a zarr dtype (drives `fill_value` encoding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    UInt,
    Float,
    Bool,
    /// Fixed-length bytes, `|S<n>`.
    Bytes,
    /// Opaque `|V<n>` or structured (compound) dtype.
    Void,
    /// `<c8` / `<c16`: h5py's complex numbers (see [`complex_of`]).
    Complex,
}

/// A zarr dtype with what the translator needs to know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ZDtype {
    /// `"<f4"` or a structured list `[["a","<i4"],["b","<f8"]]`.
    pub json: Json,
    pub kind: Kind,
    pub size: u32,
    pub order: Option<ByteOrder>,
}

fn endian(order: &ByteOrder, size: u32) -> char {
    if size == 1 {
        '|'
    } else {
        match order {
            ByteOrder::LittleEndian => '<',
            ByteOrder::BigEndian => '>',
        }
    }
}

/// True for the enum h5py reads as numpy `bool`: `{FALSE=0, TRUE=1}` over
/// an 8-bit integer.
pub fn is_bool_enum(dt: &Datatype) -> bool {
    let Datatype::Enum { base, members, .. } = dt else {
        return false;
    };
    if !matches!(**base, Datatype::FixedPoint { size: 1, .. }) || members.len() != 2 {
        return false;
    }
    let mut seen = [false; 2];
    for (name, raw) in members {
        match (name.as_str(), raw.as_slice()) {
            ("FALSE", [0]) => seen[0] = true,
            ("TRUE", [1]) => seen[1] = true,
            _ => return false,
        }
    }
    seen == [true, true]
}

/// The zarr dtype h5py would give this HDF5 datatype, or why there is none.
/// Variable-length types, references and array element types are not
/// plain zarr dtypes and are rejected here (the translator handles vlen
/// strings separately).
pub fn zarr_dtype(dt: &Datatype) -> Result<ZDtype, String> {
    match dt {
        Datatype::FixedPoint {
            size,
            order,
            signed,
            ..
        } => {
            if !matches!(size, 1 | 2 | 4 | 8) {
                return Err(format!("{size}-byte integers have no numpy dtype"));
            }
            let k = if *signed { 'i' } else { 'u' };
            Ok(ZDtype {
                json: Json::Str(format!("{}{k}{size}", endian(order, *size))),
                kind: if *signed { Kind::Int } else { Kind::UInt },
                size: *size,
                order: Some(order.clone()),
            })
        }
        Datatype::FloatingPoint { size, order, .. } => {
            if !matches!(size, 2 | 4 | 8) {
                return Err(format!("{size}-byte floats have no portable numpy dtype"));
            }
            Ok(ZDtype {
                json: Json::Str(format!("{}f{size}", endian(order, *size))),
                kind: Kind::Float,
                size: *size,
                order: Some(order.clone()),
            })
        }
        Datatype::String { size, .. } => Ok(ZDtype {
            json: Json::Str(format!("|S{size}")),
            kind: Kind::Bytes,
            size: *size,
            order: None,
        }),
        Datatype::Bitfield { size, order, .. } => {
            if !matches!(size, 1 | 2 | 4 | 8) {
                return Err(format!("{size}-byte bitfields have no numpy dtype"));
            }
            Ok(ZDtype {
                json: Json::Str(format!("{}u{size}", endian(order, *size))),
                kind: Kind::UInt,
                size: *size,
                order: Some(order.clone()),
            })
        }
        Datatype::Opaque { size, .. } => Ok(ZDtype {
            json: Json::Str(format!("|V{size}")),
            kind: Kind::Void,
            size: *size,
            order: None,
        }),
        Datatype::Enum { base, .. } => {
            if is_bool_enum(dt) {
                Ok(ZDtype {
                    json: Json::Str("|b1".into()),
                    kind: Kind::Bool,
                    size: 1,
                    order: None,
                })
            } else {
                zarr_dtype(base)
            }
        }
        Datatype::Compound { .. } if complex_of(dt).is_some() => {
            let (part, order) = complex_of(dt).ok_or("not complex")?;
            let size = part * 2;
            Ok(ZDtype {
                json: Json::Str(format!("{}c{size}", endian(&order, size))),
                kind: Kind::Complex,
                size,
                order: Some(order),
            })
        }
        Datatype::Compound { size, .. } => Ok(ZDtype {
            json: structured_descr(dt)?,
            kind: Kind::Void,
            size: *size,
            order: None,
        }),
        Datatype::Reference { .. } => {
            Err("object/region references have no zarr representation".into())
        }
        Datatype::VlenSequence { .. } => {
            Err("variable-length sequences of non-string types have no zarr representation".into())
        }
        Datatype::VlenString { .. } => {
            Err("variable-length strings need embedding (vlen_encode=embed)".into())
        }
        Datatype::Array { .. } => Err(
            "datasets of HDF5 array type would need extra zarr dimensions; not supported".into(),
        ),
    }
}

/// h5py reads a compound of exactly two floats of one size and byte order
/// named `r` and `i` (its default `complex_names`), at offsets 0 and that
/// size with nothing after, as numpy complex: `(float size, order)` then.
pub fn complex_of(dt: &Datatype) -> Option<(u32, ByteOrder)> {
    let Datatype::Compound { size, members } = dt else {
        return None;
    };
    let [re, im] = members.as_slice() else {
        return None;
    };
    let float = |d: &Datatype| match d {
        Datatype::FloatingPoint { size, order, .. } if matches!(size, 4 | 8) => {
            Some((*size, order.clone()))
        }
        _ => None,
    };
    let (rs, ro) = float(&re.datatype)?;
    let (is, io) = float(&im.datatype)?;
    (re.name == "r"
        && im.name == "i"
        && rs == is
        && ro == io
        && re.offset == 0
        && im.offset == rs
        && *size == 2 * rs)
        .then_some((rs, ro))
}

/// numpy `descr` of a compound type, as zarr writes it: a list of
/// `[name, typestr]`, `[name, typestr, shape]` (array members) or
/// `[name, nested-descr]`; gaps between members and trailing padding become
/// `["", "|V<n>"]` entries, which numpy reads as padding, so the itemsize and
/// member offsets match the file exactly.
fn structured_descr(dt: &Datatype) -> Result<Json, String> {
    let Datatype::Compound { size, members } = dt else {
        return Err("not a compound".into());
    };
    let mut sorted: Vec<_> = members.iter().collect();
    sorted.sort_by_key(|m| m.offset);
    let mut out = Vec::new();
    let mut pos: u64 = 0;
    for m in sorted {
        let off = u64::from(m.offset);
        if off < pos {
            return Err(format!("compound member {:?} overlaps another", m.name));
        }
        if off > pos {
            out.push(Json::Array(vec![
                Json::Str(String::new()),
                Json::Str(format!("|V{}", off - pos)),
            ]));
        }
        if m.name.is_empty() {
            return Err("compound member with an empty name".into());
        }
        let mut entry = vec![Json::Str(m.name.clone())];
        match &m.datatype {
            Datatype::Array { dims, base, .. } => {
                let inner =
                    zarr_dtype(base).map_err(|e| format!("compound member {:?}: {e}", m.name))?;
                entry.push(inner.json);
                entry.push(Json::Array(
                    dims.iter().map(|d| Json::UInt(u64::from(*d))).collect(),
                ));
            }
            other => {
                let inner =
                    zarr_dtype(other).map_err(|e| format!("compound member {:?}: {e}", m.name))?;
                entry.push(inner.json);
            }
        }
        out.push(Json::Array(entry));
        pos = off + u64::from(m.datatype.size());
    }
    let size = u64::from(*size);
    if pos > size {
        return Err("compound members extend past the compound size".into());
    }
    if pos < size {
        out.push(Json::Array(vec![
            Json::Str(String::new()),
            Json::Str(format!("|V{}", size - pos)),
        ]));
    }
    Ok(Json::Array(out))
}

/// A float as zarr writes `fill_value`: `"NaN"`, `"Infinity"`,
/// `"-Infinity"` strings for non-finite values.
pub fn fill_float(f: f64) -> Json {
    if f.is_nan() {
        Json::Str("NaN".into())
    } else if f.is_infinite() {
        Json::Str(if f > 0.0 { "Infinity" } else { "-Infinity" }.into())
    } else {
        Json::Float(f)
    }
}

fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((bits >> 10) & 0x1f);
    let frac = f64::from(bits & 0x3ff);
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 if frac == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        e => sign * (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

fn ordered<const N: usize>(bytes: &[u8], order: &Option<ByteOrder>) -> Option<[u8; N]> {
    let mut a: [u8; N] = bytes.get(..N)?.try_into().ok()?;
    if matches!(order, Some(ByteOrder::BigEndian)) {
        a.reverse();
    }
    Some(a)
}

/// Decode one element's raw bytes into zarr's `fill_value` JSON for a
/// numeric/bool dtype; `Bytes`/`Void` become base64 of the raw bytes (zarr
/// encodes `S`/`V` fill values so). `None` if the bytes are too short.
pub fn fill_from_bytes(z: &ZDtype, bytes: &[u8]) -> Option<Json> {
    let o = &z.order;
    Some(match (z.kind, z.size) {
        (Kind::Bool, _) => Json::Bool(*bytes.first()? != 0),
        (Kind::Int, 1) => Json::Int(i64::from(i8::from_le_bytes(ordered::<1>(bytes, o)?))),
        (Kind::Int, 2) => Json::Int(i64::from(i16::from_le_bytes(ordered::<2>(bytes, o)?))),
        (Kind::Int, 4) => Json::Int(i64::from(i32::from_le_bytes(ordered::<4>(bytes, o)?))),
        (Kind::Int, 8) => Json::Int(i64::from_le_bytes(ordered::<8>(bytes, o)?)),
        (Kind::UInt, 1) => Json::UInt(u64::from(u8::from_le_bytes(ordered::<1>(bytes, o)?))),
        (Kind::UInt, 2) => Json::UInt(u64::from(u16::from_le_bytes(ordered::<2>(bytes, o)?))),
        (Kind::UInt, 4) => Json::UInt(u64::from(u32::from_le_bytes(ordered::<4>(bytes, o)?))),
        (Kind::UInt, 8) => Json::UInt(u64::from_le_bytes(ordered::<8>(bytes, o)?)),
        (Kind::Float, 2) => fill_float(f16_to_f64(u16::from_le_bytes(ordered::<2>(bytes, o)?))),
        (Kind::Float, 4) => fill_float(f64::from(f32::from_le_bytes(ordered::<4>(bytes, o)?))),
        (Kind::Float, 8) => fill_float(f64::from_le_bytes(ordered::<8>(bytes, o)?)),
        (Kind::Bytes | Kind::Void, _) => Json::Str(B64.encode(bytes.get(..z.size as usize)?)),
        // zarr 2 writes a complex fill as [real, imag]
        (Kind::Complex, n) => {
            let part = ZDtype {
                json: Json::Null,
                kind: Kind::Float,
                size: n / 2,
                order: o.clone(),
            };
            let half = (n / 2) as usize;
            Json::Array(vec![
                fill_from_bytes(&part, bytes.get(..half)?)?,
                fill_from_bytes(&part, bytes.get(half..2 * half)?)?,
            ])
        }
        _ => return None,
    })
}

/// The all-zero fill value of a dtype (what HDF5 returns for unwritten
/// elements when no fill value is defined).
pub fn zero_fill(z: &ZDtype) -> Json {
    fill_from_bytes(z, &vec![0u8; z.size as usize]).unwrap_or(Json::Null)
}

/// `.zarray` content.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayMeta {
    pub shape: Vec<u64>,
    pub chunks: Vec<u64>,
    pub dtype: Json,
    pub fill_value: Json,
    /// Codec configurations; empty is written as `null`.
    pub filters: Vec<Json>,
}

impl ArrayMeta {
    /// The `.zarray` document. The compressor is always `null` (every HDF5
    /// filter goes in `filters`, in pipeline order, as kerchunk does);
    /// `dimension_separator` is omitted (zarr's default `"."`), as in
    /// kerchunk's output.
    pub fn to_json(&self) -> Json {
        let nums = |v: &[u64]| Json::Array(v.iter().map(|x| Json::UInt(*x)).collect());
        object([
            ("chunks", nums(&self.chunks)),
            ("compressor", Json::Null),
            ("dtype", self.dtype.clone()),
            ("fill_value", self.fill_value.clone()),
            (
                "filters",
                if self.filters.is_empty() {
                    Json::Null
                } else {
                    Json::Array(self.filters.clone())
                },
            ),
            ("order", Json::Str("C".into())),
            ("shape", nums(&self.shape)),
            ("zarr_format", Json::UInt(2)),
        ])
    }
}

/// `.zgroup` content.
pub fn zgroup() -> Json {
    object([("zarr_format", Json::UInt(2))])
}

/// Chunk key `prefix/i.j.k` (zarr's `.` separator); a 0-d array uses `0`.
pub fn chunk_key(prefix: &str, index: &[u64]) -> String {
    let idx = if index.is_empty() {
        "0".to_string()
    } else {
        index
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(".")
    };
    if prefix.is_empty() {
        idx
    } else {
        format!("{prefix}/{idx}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdf5_lite::{CompoundMember, StringPadding};

    pub(crate) fn int(size: u32, signed: bool, order: ByteOrder) -> Datatype {
        Datatype::FixedPoint {
            size,
            order,
            signed,
            bit_offset: 0,
            bit_precision: (size * 8) as u16,
        }
    }
    pub(crate) fn float(size: u32, order: ByteOrder) -> Datatype {
        Datatype::FloatingPoint {
            size,
            order,
            bit_offset: 0,
            bit_precision: (size * 8) as u16,
            exponent_location: 0,
            exponent_size: 0,
            mantissa_location: 0,
            mantissa_size: 0,
            exponent_bias: 0,
        }
    }

    fn s(dt: &Datatype) -> String {
        zarr_dtype(dt).unwrap().json.to_compact()
    }

    #[test]
    fn dtype_strings() {
        use ByteOrder::*;
        assert_eq!(s(&float(4, LittleEndian)), r#""<f4""#);
        assert_eq!(s(&float(2, LittleEndian)), r#""<f2""#);
        assert_eq!(s(&float(8, BigEndian)), r#"">f8""#);
        assert_eq!(s(&int(2, true, BigEndian)), r#"">i2""#);
        assert_eq!(s(&int(1, false, BigEndian)), r#""|u1""#);
        assert_eq!(s(&int(1, true, LittleEndian)), r#""|i1""#);
        let st = Datatype::String {
            size: 10,
            padding: StringPadding::NullPad,
            charset: hdf5_lite::CharSet::Ascii,
        };
        assert_eq!(s(&st), r#""|S10""#);
        let b = Datatype::Enum {
            size: 1,
            base: Box::new(int(1, true, LittleEndian)),
            members: vec![("FALSE".into(), vec![0]), ("TRUE".into(), vec![1])],
        };
        assert_eq!(s(&b), r#""|b1""#);
        let e = Datatype::Enum {
            size: 2,
            base: Box::new(int(2, false, LittleEndian)),
            members: vec![("A".into(), vec![0, 0]), ("B".into(), vec![5, 0])],
        };
        assert_eq!(s(&e), r#""<u2""#);
        assert!(zarr_dtype(&int(16, true, LittleEndian)).is_err());
        assert!(zarr_dtype(&float(16, LittleEndian)).is_err());
        assert_eq!(
            s(&Datatype::Opaque {
                size: 3,
                tag: "x".into()
            }),
            r#""|V3""#
        );
    }

    #[test]
    fn compound_descr_with_padding() {
        let c = Datatype::Compound {
            size: 24,
            members: vec![
                CompoundMember {
                    name: "b".into(),
                    offset: 8,
                    datatype: float(8, ByteOrder::LittleEndian),
                },
                CompoundMember {
                    name: "a".into(),
                    offset: 0,
                    datatype: int(4, true, ByteOrder::BigEndian),
                },
                CompoundMember {
                    name: "v".into(),
                    offset: 16,
                    datatype: Datatype::Array {
                        size: 4,
                        dims: vec![2],
                        base: Box::new(int(2, false, ByteOrder::LittleEndian)),
                    },
                },
            ],
        };
        assert_eq!(
            s(&c),
            r#"[["a",">i4"],["","|V4"],["b","<f8"],["v","<u2",[2]],["","|V4"]]"#
        );
        let z = zarr_dtype(&c).unwrap();
        assert_eq!(z.kind, Kind::Void);
        assert_eq!(zero_fill(&z), Json::Str("A".repeat(32)));
    }

    #[test]
    fn fill_values() {
        use ByteOrder::*;
        let f4 = zarr_dtype(&float(4, LittleEndian)).unwrap();
        assert_eq!(
            fill_from_bytes(&f4, &1e37f32.to_le_bytes()),
            Some(Json::Float(f64::from(1e37f32)))
        );
        assert_eq!(
            fill_from_bytes(&f4, &f32::NAN.to_le_bytes()),
            Some(Json::Str("NaN".into()))
        );
        let f8be = zarr_dtype(&float(8, BigEndian)).unwrap();
        assert_eq!(
            fill_from_bytes(&f8be, &f64::NEG_INFINITY.to_be_bytes()),
            Some(Json::Str("-Infinity".into()))
        );
        let f2 = zarr_dtype(&float(2, LittleEndian)).unwrap();
        assert_eq!(fill_from_bytes(&f2, &[0x00, 0x3c]), Some(Json::Float(1.0)));
        assert_eq!(
            fill_from_bytes(&f2, &[0x00, 0x7c]),
            Some(Json::Str("Infinity".into()))
        );
        let i2 = zarr_dtype(&int(2, true, BigEndian)).unwrap();
        assert_eq!(fill_from_bytes(&i2, &[0x80, 0x01]), Some(Json::Int(-32767)));
        let u8_ = zarr_dtype(&int(8, false, LittleEndian)).unwrap();
        assert_eq!(
            fill_from_bytes(&u8_, &u64::MAX.to_le_bytes()),
            Some(Json::UInt(u64::MAX))
        );
        assert_eq!(fill_from_bytes(&u8_, &[1, 2]), None);
        assert_eq!(zero_fill(&f4), Json::Float(0.0));
    }

    #[test]
    fn keys_and_zarray() {
        assert_eq!(chunk_key("g/v", &[1, 0, 12]), "g/v/1.0.12");
        assert_eq!(chunk_key("v", &[]), "v/0");
        let m = ArrayMeta {
            shape: vec![3, 4],
            chunks: vec![3, 4],
            dtype: Json::Str("<f4".into()),
            fill_value: Json::Null,
            filters: vec![],
        };
        assert_eq!(
            m.to_json().to_compact(),
            r#"{"chunks":[3,4],"compressor":null,"dtype":"<f4","fill_value":null,"filters":null,"order":"C","shape":[3,4],"zarr_format":2}"#
        );
    }
}
