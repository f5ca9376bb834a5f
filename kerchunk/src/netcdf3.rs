//! NetCDF-3 header to reference set: what kerchunk's `NetCDF3ToZarr` makes,
//! but exact (see the crate README's NetCDF-3 table), plus the
//! format-dispatching [`translate_opened`] that `refs`, `extract_single`
//! and the pipeline call.
//!
//! Separate from [`crate::translate`] (which works on the HDF5 model)
//! because a NetCDF-3 header already says everything directly: dimension
//! names, attributes with netCDF types, and computed data offsets. Going
//! through the HDF5 model would mean inventing dimension scales and object
//! references only to resolve them again, and would inherit h5py/kerchunk
//! attribute conventions (an empty string read as `" "`) where
//! netCDF4-python's are wanted.
//!
//! | netCDF-3                  | zarr v2                                                              |
//! |---------------------------|----------------------------------------------------------------------|
//! | type                      | big-endian dtype: `\|i1 \|S1 >i2 >i4 >f4 >f8 \|u1 >u2 >u4 >i8 >u8`   |
//! | fixed variable            | one chunk = the whole contiguous block (or `split_contiguous` rows)  |
//! | record variable           | chunks `[1, ...]`, chunk `i` at `begin + i * recsize`                |
//! | `_FillValue`              | `fill_value` (not repeated in `.zattrs`); else `null` (every chunk is stored, and xarray's netCDF4 engine does not mask default fills either) |
//! | char attribute            | `str`: UTF-8 with U+FFFD for bad bytes, NULs removed (netCDF4-python) |
//! | numeric attribute         | one value: scalar; else a list (`[]` when empty)                     |
//! | dimensions                | `_ARRAY_DIMENSIONS` = the variable's dimension names                 |

use std::ops::Range;

use base64::Engine as _;
use hdf5_lite::netcdf3::header::{Attribute, Variable};
use hdf5_lite::netcdf3::{self, Layout, NcType};
use hdf5_lite::{Opened, RangeSource, Value};

use crate::error::Error;
use crate::json::Json;
use crate::refs::{Ref, RefSet};
use crate::translate::{TranslateOptions, Translation, Warning, split_rows, translate};
use crate::zarr::{self, ArrayMeta, chunk_key};

/// Translate whatever [`hdf5_lite::open_any`] opened.
pub async fn translate_opened(
    opened: &Opened,
    source: &dyn RangeSource,
    opts: &TranslateOptions,
) -> Result<Translation, Error> {
    match opened {
        Opened::Hdf5(f) => translate(f, source, opts).await,
        Opened::NetCdf3(f) => translate_netcdf3(f, source, opts).await,
    }
}

/// zarr dtype string of a netCDF-3 type (big-endian, as stored).
pub fn dtype(t: NcType) -> &'static str {
    match t {
        NcType::Byte => "|i1",
        NcType::Char => "|S1",
        NcType::Short => ">i2",
        NcType::Int => ">i4",
        NcType::Float => ">f4",
        NcType::Double => ">f8",
        NcType::UByte => "|u1",
        NcType::UShort => ">u2",
        NcType::UInt => ">u4",
        NcType::Int64 => ">i8",
        NcType::UInt64 => ">u8",
    }
}

/// One attribute as netCDF4-python returns it, as JSON.
pub fn attr_json(a: &Attribute) -> Json {
    if a.nc_type == NcType::Char {
        let s = String::from_utf8_lossy(&a.values).replace('\0', "");
        return Json::Str(s);
    }
    let mut items: Vec<Json> = netcdf3::attribute_values(a)
        .into_iter()
        .map(|v| match v {
            Value::Int(i) => Json::Int(i),
            Value::UInt(u) => Json::UInt(u),
            Value::Float(f) => Json::Float(f),
            _ => Json::Null,
        })
        .collect();
    if items.len() == 1 {
        items.pop().unwrap_or(Json::Null)
    } else {
        Json::Array(items)
    }
}

/// zarr `fill_value` from a variable's `_FillValue`: its first value when
/// it is exactly a value of the variable's type (netCDF-C only writes
/// same-typed ones); `Err` with the reason otherwise.
fn fill_value(v: &Variable) -> Result<Json, String> {
    let Some(a) = v.attributes.iter().find(|a| a.name == "_FillValue") else {
        return Ok(Json::Null);
    };
    if v.nc_type == NcType::Char {
        return match (a.nc_type, a.values.first()) {
            (NcType::Char, Some(b)) => Ok(Json::Str(
                base64::engine::general_purpose::STANDARD.encode([*b]),
            )),
            _ => Err("_FillValue of a char variable is not one char".into()),
        };
    }
    let Some(first) = netcdf3::attribute_values(a).into_iter().next() else {
        return Err("_FillValue has no value".into());
    };
    let as_i128 = |x: &Value| -> Option<i128> {
        match x {
            Value::Int(i) => Some(i128::from(*i)),
            Value::UInt(u) => Some(i128::from(*u)),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 1e38 => Some(*f as i128),
            _ => None,
        }
    };
    let int_range = |lo: i128, hi: i128| -> Result<Json, String> {
        match as_i128(&first) {
            Some(i) if (lo..=hi).contains(&i) => Ok(if i < 0 {
                Json::Int(i as i64)
            } else {
                Json::UInt(i as u64)
            }),
            _ => Err(format!(
                "_FillValue {first:?} is not a value of the variable's type {:?}",
                v.nc_type
            )),
        }
    };
    match v.nc_type {
        NcType::Byte => int_range(i8::MIN.into(), i8::MAX.into()),
        NcType::UByte => int_range(0, u8::MAX.into()),
        NcType::Short => int_range(i16::MIN.into(), i16::MAX.into()),
        NcType::UShort => int_range(0, u16::MAX.into()),
        NcType::Int => int_range(i32::MIN.into(), i32::MAX.into()),
        NcType::UInt => int_range(0, u32::MAX.into()),
        NcType::Int64 => int_range(i64::MIN.into(), i64::MAX.into()),
        NcType::UInt64 => int_range(0, u64::MAX.into()),
        NcType::Float | NcType::Double => {
            let f = match first {
                Value::Float(f) => f,
                Value::Int(i) if (i as f64) as i64 == i => i as f64,
                Value::UInt(u) if (u as f64) as u64 == u => u as f64,
                _ => return Err(format!("_FillValue {first:?} is not exactly a float")),
            };
            if v.nc_type == NcType::Float && !f.is_nan() && f64::from(f as f32) != f {
                return Err(format!("_FillValue {f} is not exactly a float32"));
            }
            Ok(zarr::fill_float(f))
        }
        NcType::Char => Ok(Json::Null),
    }
}

/// A variable name that is safe as a zarr key prefix.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && !name.starts_with('.')
}

/// Inlined chunks closer than this are fetched in one request.
const INLINE_GAP: u64 = 2048;
/// ... up to requests of this size.
const INLINE_MAX_REQUEST: u64 = 8 * 1024 * 1024;

struct Fetch {
    key: String,
    range: Range<u64>,
}

/// Translate a NetCDF-3 file. `source` is only read for inlined chunks,
/// all in one `get_ranges` call.
pub async fn translate_netcdf3(
    f: &netcdf3::File,
    source: &dyn RangeSource,
    opts: &TranslateOptions,
) -> Result<Translation, Error> {
    let h = &f.header;
    let mut refs = RefSet::new();
    let mut warnings = Vec::new();
    let mut fetches: Vec<Fetch> = Vec::new();
    refs.insert_json(".zgroup", &zarr::zgroup());
    if !h.attributes.is_empty() {
        let attrs = h
            .attributes
            .iter()
            .map(|a| (a.name.clone(), attr_json(a)))
            .collect();
        refs.insert_json(".zattrs", &Json::Object(attrs));
    }
    for (v, l) in h.variables.iter().zip(&f.layouts) {
        let mut warn = |reason: String| {
            warnings.push(Warning {
                path: format!("/{}", v.name),
                reason,
            })
        };
        if !valid_name(&v.name) {
            warn("name cannot be a zarr key (empty, contains '/' or starts with '.')".into());
            continue;
        }
        if l.chunks() > 0 && l.end() > f.size {
            warn(format!(
                "data ends at byte {}, past the end of the file ({} bytes)",
                l.end(),
                f.size
            ));
            continue;
        }
        let fill = match fill_value(v) {
            Ok(j) => j,
            Err(reason) => {
                warn(reason);
                continue;
            }
        };
        let mut attrs: std::collections::BTreeMap<String, Json> = v
            .attributes
            .iter()
            .filter(|a| a.name != "_FillValue")
            .map(|a| (a.name.clone(), attr_json(a)))
            .collect();
        let dims = v
            .dimids
            .iter()
            .filter_map(|id| h.dimensions.get(usize::try_from(*id).ok()?))
            .map(|d| Json::Str(d.name.clone()))
            .collect();
        attrs.insert("_ARRAY_DIMENSIONS".into(), Json::Array(dims));
        let (chunks, pieces) = plan_chunks(l, opts);
        let prefix = v.name.clone();
        for (idx, range) in pieces {
            let key = chunk_key(&prefix, &idx);
            let len = range.end - range.start;
            if opts.inline_threshold > 0 && len < opts.inline_threshold {
                fetches.push(Fetch { key, range });
            } else {
                refs.insert(
                    key,
                    Ref::Range {
                        url: opts.url.clone(),
                        offset: range.start,
                        length: len,
                    },
                );
            }
        }
        let meta = ArrayMeta {
            shape: l.shape.clone(),
            chunks,
            dtype: Json::from(dtype(v.nc_type)),
            fill_value: fill,
            filters: vec![],
        };
        refs.insert_json(format!("{prefix}/.zarray"), &meta.to_json());
        refs.insert_json(format!("{prefix}/.zattrs"), &Json::Object(attrs));
    }
    if !fetches.is_empty() {
        // Small variables sit next to each other in a NetCDF-3 file:
        // merge nearby ranges (as the HDF5 walker does) so a remote source
        // gets a few requests instead of one per inlined chunk.
        let merged = hdf5_lite::walk::coalesce(
            fetches.iter().map(|f| f.range.clone()).collect(),
            INLINE_GAP,
            INLINE_MAX_REQUEST,
        );
        let got = source
            .get_ranges(&merged)
            .await
            .map_err(|error| Error::Source {
                file: source.name().to_string(),
                error,
            })?;
        for fe in fetches {
            let wanted = fe.range.end - fe.range.start;
            let bytes = merged
                .iter()
                .zip(&got)
                .find(|(m, _)| m.start <= fe.range.start && fe.range.end <= m.end)
                .and_then(|(m, b)| {
                    let s = usize::try_from(fe.range.start - m.start).ok()?;
                    b.get(s..s.checked_add(usize::try_from(wanted).ok()?)?)
                })
                .unwrap_or_default();
            if bytes.len() as u64 != wanted {
                return Err(Error::ShortRead {
                    file: source.name().to_string(),
                    key: fe.key,
                    offset: fe.range.start,
                    wanted,
                    got: bytes.len() as u64,
                });
            }
            refs.insert(fe.key, Ref::inline(bytes));
        }
    }
    Ok(Translation { refs, warnings })
}

/// A chunk's index and byte range.
type Piece = (Vec<u64>, Range<u64>);

/// zarr chunk shape and every chunk's (index, byte range) of one variable.
fn plan_chunks(l: &Layout, opts: &TranslateOptions) -> (Vec<u64>, Vec<Piece>) {
    let rank = l.shape.len();
    let mut chunks: Vec<u64> = l.shape.iter().map(|d| (*d).max(1)).collect();
    let mut pieces = Vec::new();
    if l.record {
        chunks[0] = 1;
        for i in 0..l.chunks() {
            let mut idx = vec![0; rank];
            idx[0] = i;
            let at = l.chunk_offset(i);
            pieces.push((idx, at..at + l.slab));
        }
        return (chunks, pieces);
    }
    if l.slab == 0 {
        return (chunks, pieces);
    }
    if let Some(rows) = opts
        .split_contiguous
        .and_then(|target| split_rows(&l.shape, l.elem, target))
    {
        let row_bytes = l.slab / l.shape[0];
        chunks[0] = rows;
        for i in 0..l.shape[0] / rows {
            let mut idx = vec![0; rank];
            idx[0] = i;
            let at = l.begin + i * rows * row_bytes;
            pieces.push((idx, at..at + rows * row_bytes));
        }
        return (chunks, pieces);
    }
    pieces.push((vec![0; rank], l.begin..l.begin + l.slab));
    (chunks, pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(t: NcType, values: &[u8]) -> Attribute {
        Attribute {
            name: "a".into(),
            nc_type: t,
            nelems: values.len() as u64 / t.size(),
            values: values.to_vec(),
        }
    }

    #[test]
    fn char_attributes_read_as_netcdf4_python() {
        assert_eq!(
            attr_json(&attr(NcType::Char, b"ab\0cd\0")),
            Json::from("abcd")
        );
        assert_eq!(attr_json(&attr(NcType::Char, b"\0")), Json::from(""));
        assert_eq!(
            attr_json(&attr(NcType::Char, b"a\xffb")),
            Json::from("a\u{fffd}b")
        );
    }

    #[test]
    fn numeric_attributes_scalar_or_list() {
        assert_eq!(
            attr_json(&attr(NcType::Short, &[0xff, 0xfe])),
            Json::Int(-2)
        );
        assert_eq!(
            attr_json(&attr(NcType::UShort, &[0xff, 0xfe, 0, 1])),
            Json::Array(vec![Json::UInt(65534), Json::UInt(1)])
        );
        assert_eq!(attr_json(&attr(NcType::Int, &[])), Json::Array(vec![]));
        assert_eq!(
            attr_json(&attr(NcType::Float, &0.1f32.to_be_bytes())),
            Json::Float(f64::from(0.1f32))
        );
    }

    fn var(t: NcType, fill: Option<Attribute>) -> Variable {
        Variable {
            name: "v".into(),
            dimids: vec![],
            attributes: fill
                .map(|mut a| {
                    a.name = "_FillValue".into();
                    vec![a]
                })
                .unwrap_or_default(),
            nc_type: t,
            vsize: 0,
            begin: 0,
        }
    }

    #[test]
    fn fill_values() {
        assert_eq!(fill_value(&var(NcType::Int, None)), Ok(Json::Null));
        assert_eq!(
            fill_value(&var(NcType::Short, Some(attr(NcType::Short, &[0x80, 1])))),
            Ok(Json::Int(-32767))
        );
        assert_eq!(
            fill_value(&var(
                NcType::Double,
                Some(attr(NcType::Double, &f64::NAN.to_be_bytes()))
            )),
            Ok(Json::from("NaN"))
        );
        assert_eq!(
            fill_value(&var(NcType::Char, Some(attr(NcType::Char, b"x")))),
            Ok(Json::from("eA=="))
        );
        // a float _FillValue on a short variable that does not fit
        assert!(
            fill_value(&var(
                NcType::Short,
                Some(attr(NcType::Float, &1e6f32.to_be_bytes()))
            ))
            .is_err()
        );
        // one that does is converted
        assert_eq!(
            fill_value(&var(
                NcType::Short,
                Some(attr(NcType::Float, &(-5f32).to_be_bytes()))
            )),
            Ok(Json::Int(-5))
        );
    }
}
