//! zarr `fill_value` of a dataset and the `_FillValue` attribute.

use super::*;

/// The HDF5 fill value of a dataset as zarr JSON: the defined value, else
/// zeros (what HDF5 returns for unwritten elements).
pub(super) fn hdf5_fill(ds: &Dataset, zd: &ZDtype) -> Json {
    ds.fill_value
        .value
        .as_deref()
        .and_then(|b| zarr::fill_from_bytes(zd, b))
        .unwrap_or_else(|| zarr::zero_fill(zd))
}

/// zarr `fill_value` of a non-compact, non-embedded dataset.
///
/// xarray's zarr backend turns a zarr v2 `fill_value` into `_FillValue` and
/// masks with it, and zarr 2 leaves *uninitialised memory* where a chunk is
/// absent and `fill_value` is `null`. So:
///
/// | dataset                                   | kerchunk 0.2.7      | ours                         |
/// |-------------------------------------------|---------------------|------------------------------|
/// | has a `_FillValue` attribute              | that value          | same                         |
/// | fixed-length string (`S`)                 | fill bytes or `" "` | same                         |
/// | netCDF var / CF time, every chunk stored  | `null`              | same (no masking, ints stay ints) |
/// | netCDF var / CF time, some chunk absent   | `null` (garbage)    | HDF5 fill value (netCDF-C stores the netCDF default fill there), so absent chunks read as netCDF returns them |
/// | other numeric, every chunk stored         | HDF5 fill or 0 (xarray then masks real values equal to it: ROMS scalars that are 0 read as NaN) | `null` |
/// | other numeric, some chunk absent          | HDF5 fill or 0      | same                         |
/// | compound / opaque                         | dropped / `null`    | base64 of the HDF5 fill (or zeros) |
pub fn fill_value(ds: &Dataset, zd: &ZDtype, complete: bool) -> Json {
    if let Some(v) = fill_value_attr(&ds.attributes)
        && let Some(j) = encode_attr_fill(v, zd)
    {
        return j;
    }
    match zd.kind {
        // every chunk stored: as for numbers, `null` keeps xarray from
        // masking real strings equal to the fill
        Kind::Bytes if complete => Json::Null,
        Kind::Bytes => {
            let mut b = ds.fill_value.value.clone().unwrap_or_default();
            b.truncate(zd.size as usize);
            while b.last() == Some(&0) {
                b.pop();
            }
            // No fill, or only NULs (netCDF's NC_FILL_CHAR): unwritten
            // elements read as b"" in h5py, netCDF4 and xarray, so the
            // fill is one NUL (numpy pads it to the itemsize). kerchunk
            // writes " ", which reads back as b" ".
            if b.is_empty() {
                b = vec![0];
            }
            use base64::Engine as _;
            Json::Str(base64::engine::general_purpose::STANDARD.encode(b))
        }
        // Every chunk is stored, so zarr never needs a fill value; `null`
        // also keeps xarray from masking real data equal to it (kerchunk's
        // HDF5 fill of 0 turns ROMS scalars such as `LuvSponge = 0` into NaN)
        // and from failing on structured fills it cannot hash.
        _ if complete => Json::Null,
        Kind::Void => hdf5_fill(ds, zd),
        _ => hdf5_fill(ds, zd),
    }
}

/// The `_FillValue` attribute as a `fill_value` of the array's dtype, or
/// `None` when it is not exactly a value of that dtype.
///
/// Repacking tools leave attributes of another type than their variable
/// (int16 data with a float32 `_FillValue`, often the float default fill
/// 9.96921e36). netCDF4-python then casts the attribute to the variable's
/// type and ignores it when the cast is not safe; xarray's netCDF4 engine
/// compares the data with the attribute's own value. Both agree with this
/// rule: a value that converts exactly (-32767.0 -> -32767) is the fill
/// value; any other (out of range, fractional, non-finite for integers) is
/// not, the array gets the fill value it would have without the attribute
/// and the attribute is kept in `.zattrs` as written (see
/// [`attr_fill_kept`]). A number outside the dtype's range is never written
/// (zarr cannot even open such an array).
pub(super) fn encode_attr_fill(v: &Value, zd: &ZDtype) -> Option<Json> {
    use base64::Engine as _;
    let num = match v {
        Value::Int(i) => Some(*i as f64),
        Value::UInt(u) => Some(*u as f64),
        Value::Float(f) => Some(*f),
        Value::Enum { value, .. } => Some(*value as f64),
        _ => None,
    };
    Some(match zd.kind {
        Kind::Float => {
            let f = num?;
            // a finite value that overflows a narrower float is not a value of it
            let max = match zd.size {
                2 => 65504.0,
                4 => f64::from(f32::MAX),
                _ => f64::MAX,
            };
            if f.is_finite() && f.abs() > max {
                return None;
            }
            zarr::fill_float(f)
        }
        Kind::Int | Kind::UInt => {
            let bits = zd.size.saturating_mul(8).min(64);
            let (lo, hi): (i128, i128) = if zd.kind == Kind::Int {
                (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
            } else {
                (0, (1i128 << bits) - 1)
            };
            let n: i128 = match v {
                Value::Int(i) => i128::from(*i),
                Value::UInt(u) => i128::from(*u),
                Value::Enum { value, .. } => i128::from(*value),
                // exactly integral and inside i128: the range check below
                Value::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e30 => {
                    *f as i128
                }
                _ => return None,
            };
            if n < lo || n > hi {
                return None;
            }
            if n < 0 {
                Json::Int(i64::try_from(n).ok()?)
            } else {
                Json::UInt(u64::try_from(n).ok()?)
            }
        }
        Kind::Bool => Json::Bool(num? != 0.0),
        Kind::Complex => return None,
        Kind::Bytes | Kind::Void => match v {
            Value::Str(s) => Json::Str(base64::engine::general_purpose::STANDARD.encode(s)),
            Value::Bytes(b) => Json::Str(base64::engine::general_purpose::STANDARD.encode(b)),
            _ => return None,
        },
    })
}

/// The `_FillValue` attribute, as `.zattrs` JSON, when it does not become
/// the zarr `fill_value` (it is not a value of the array's dtype, see
/// [`encode_attr_fill`]): kept so readers still see what the file says.
pub(super) fn attr_fill_kept(ds: &Dataset, zd: &ZDtype) -> Option<Json> {
    let v = fill_value_attr(&ds.attributes)?;
    if encode_attr_fill(v, zd).is_some() {
        return None;
    }
    let a = ds.attributes.iter().find(|a| a.name == "_FillValue")?;
    crate::attrs::attr_value_json(a)
}
