//! HDF5 attributes to `.zattrs` JSON, as kerchunk 0.2.7's `_transfer_attrs`
//! does it on top of h5py:
//!
//! | HDF5 attribute                         | `.zattrs` value                          |
//! |----------------------------------------|------------------------------------------|
//! | name in the netCDF/HDF5-DS hidden set  | dropped                                  |
//! | scalar fixed-length string             | `str`; empty string becomes `" "`        |
//! | scalar vlen string                     | `str` (empty stays `""`)                 |
//! | null dataspace (`h5py.Empty`)          | `""`                                     |
//! | `_FillValue` (any non-string-scalar)   | dropped (it becomes the zarr fill_value) |
//! | exactly one element (scalar or `[1]`)  | that element as a JSON scalar            |
//! | otherwise                              | nested lists following the dataspace     |
//! | float NaN / ±inf                       | bare `NaN` / `Infinity` / `-Infinity`    |
//! | enum `{FALSE,TRUE}` over int8          | `true`/`false`; other enums: the integer |
//! | value `== "DIMENSION_SCALE"`           | dropped                                  |
//! | compound, opaque, reference, vlen seq  | dropped (kerchunk's JSON encode fails)   |
//!
//! Non-finite floats are written as Python's `json` (zarr's `json_dumps`)
//! writes them, so xarray sees a float NaN, exactly as with kerchunk.
//! Compound *arrays* of more than one element are the one case kerchunk
//! keeps (as lists of tuples) and we drop; it does not occur in netCDF.

use std::collections::BTreeMap;

use hdf5_lite::{Attribute, Dataspace, Datatype, Value};

use crate::json::Json;
use crate::zarr::is_bool_enum;

/// Attributes kerchunk (after h5netcdf) never transfers.
pub const HIDDEN_ATTRS: &[&str] = &[
    "REFERENCE_LIST",
    "CLASS",
    "DIMENSION_LIST",
    "NAME",
    "_Netcdf4Dimid",
    "_Netcdf4Coordinates",
    "_nc3_strict",
    "_NCProperties",
];

/// Convert all attributes of one object. Attributes kerchunk would skip are
/// left out.
pub fn attrs_to_json(attrs: &[Attribute]) -> BTreeMap<String, Json> {
    attrs
        .iter()
        .filter_map(|a| Some((a.name.clone(), attr_to_json(a)?)))
        .collect()
}

/// One attribute, or `None` when kerchunk would not transfer it.
pub fn attr_to_json(a: &Attribute) -> Option<Json> {
    if HIDDEN_ATTRS.contains(&a.name.as_str()) {
        return None;
    }
    if a.name == "_FillValue"
        && !matches!(
            (&a.dataspace, &a.datatype),
            (Dataspace::Null, _)
                | (
                    Dataspace::Scalar,
                    Datatype::String { .. } | Datatype::VlenString { .. }
                )
        )
    {
        return None;
    }
    attr_value_json(a)
}

/// An attribute's value as `.zattrs` JSON, whatever its name (the
/// translator uses it for a `_FillValue` that is not the zarr fill value).
pub fn attr_value_json(a: &Attribute) -> Option<Json> {
    let out = match (&a.dataspace, &a.datatype) {
        (Dataspace::Null, _) => Json::Str(String::new()),
        // h5py gives `bytes` for a scalar fixed-length string, decoded with
        // `or " "`: an empty string is replaced by one space.
        (Dataspace::Scalar, Datatype::String { .. }) => match a.value.first() {
            Some(Value::Str(s)) if s.is_empty() => Json::Str(" ".into()),
            Some(Value::Str(s)) => Json::Str(s.clone()),
            // Not UTF-8 (Latin-1 text in real files): netCDF4-python
            // decodes char attributes with errors="replace", one U+FFFD per
            // bad byte sequence, as `from_utf8_lossy` does. kerchunk fails
            // to decode and writes " ".
            Some(Value::Bytes(b)) => Json::Str(String::from_utf8_lossy(b).into_owned()),
            _ => Json::Str(" ".into()),
        },
        // h5py gives `str` for a scalar vlen string: passed through.
        (Dataspace::Scalar, Datatype::VlenString { .. }) => match a.value.first() {
            Some(Value::Str(s)) => Json::Str(s.clone()),
            _ => Json::Str(String::new()),
        },
        (space, dt) => {
            let bool_enum = is_bool_enum(dt);
            let is_text = matches!(dt, Datatype::String { .. } | Datatype::VlenString { .. });
            let items: Vec<Json> = a
                .value
                .iter()
                .map(|v| match v {
                    Value::Bytes(b) if is_text => {
                        Some(Json::Str(String::from_utf8_lossy(b).into_owned()))
                    }
                    v => value_to_json(v, bool_enum),
                })
                .collect::<Option<_>>()?;
            let total: usize = items.iter().map(count_leaves).sum();
            if total == 1 {
                first_leaf(items)?
            } else {
                let dims = match space {
                    Dataspace::Simple { dims, .. } => dims.clone(),
                    _ => vec![],
                };
                match (space, items.len()) {
                    // a scalar of array type: numpy gives the array itself
                    (Dataspace::Scalar, 1) => items.into_iter().next().unwrap_or(Json::Null),
                    _ => nest(items, &dims),
                }
            }
        }
    };
    if out.as_str() == Some("DIMENSION_SCALE") {
        return None;
    }
    Some(out)
}

fn count_leaves(j: &Json) -> usize {
    match j {
        Json::Array(v) => v.iter().map(count_leaves).sum(),
        _ => 1,
    }
}

fn first_leaf(items: Vec<Json>) -> Option<Json> {
    for it in items {
        match it {
            Json::Array(v) => {
                if let Some(x) = first_leaf(v) {
                    return Some(x);
                }
            }
            other => return Some(other),
        }
    }
    None
}

/// Reshape a flat C-order element list into nested lists of `dims`
/// (numpy's `tolist()`); a rank-0/1 space is just the list.
pub(crate) fn nest(items: Vec<Json>, dims: &[u64]) -> Json {
    if dims.len() <= 1 {
        return Json::Array(items);
    }
    let inner: u64 = dims[1..].iter().product();
    if inner == 0 {
        return Json::Array(vec![Json::Array(vec![]); dims[0] as usize]);
    }
    let mut out = Vec::new();
    let mut it = items.into_iter();
    loop {
        let part: Vec<Json> = it.by_ref().take(inner as usize).collect();
        if part.is_empty() {
            break;
        }
        out.push(nest(part, &dims[1..]));
    }
    Json::Array(out)
}

/// One decoded element as h5py+numpy `tolist()` would give it, or `None`
/// when the value has no JSON form in kerchunk (the attribute is skipped).
fn value_to_json(v: &Value, bool_enum: bool) -> Option<Json> {
    Some(match v {
        Value::Int(i) => Json::Int(*i),
        Value::UInt(u) => Json::UInt(*u),
        Value::Float(f) => Json::Float(*f),
        Value::Str(s) => Json::Str(s.clone()),
        Value::Enum { value, .. } => {
            if bool_enum {
                Json::Bool(*value != 0)
            } else {
                Json::Int(*value)
            }
        }
        // Array-typed elements (H5T_ARRAY) become extra list dimensions.
        Value::Array(items) => Json::Array(
            items
                .iter()
                .map(|x| value_to_json(x, false))
                .collect::<Option<_>>()?,
        ),
        // A null vlen string reads as an empty string in h5py.
        Value::Null => Json::Str(String::new()),
        Value::Bytes(_)
        | Value::Compound(_)
        | Value::ObjectRef(_)
        | Value::OtherRef(_)
        | Value::Vlen(_) => return None,
    })
}

/// The first element of the `_FillValue` attribute, if there is one with a
/// numeric or string value (kerchunk passes it to zarr's
/// `encode_fill_value` with the *dataset's* dtype).
pub fn fill_value_attr(attrs: &[Attribute]) -> Option<&Value> {
    let a = attrs.iter().find(|a| a.name == "_FillValue")?;
    if a.dataspace == Dataspace::Null {
        return None;
    }
    a.value.first()
}

/// A string attribute's value (`units`, `CLASS`).
pub fn str_attr<'a>(attrs: &'a [Attribute], name: &str) -> Option<&'a str> {
    let a = attrs.iter().find(|a| a.name == name)?;
    match a.value.first()? {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use hdf5_lite::{ByteOrder, CharSet, StringPadding};

    pub(crate) fn fixed_str(n: u32) -> Datatype {
        Datatype::String {
            size: n,
            padding: StringPadding::NullTerminate,
            charset: CharSet::Ascii,
        }
    }
    pub(crate) fn vlen_str() -> Datatype {
        Datatype::VlenString {
            size: 16,
            padding: StringPadding::NullTerminate,
            charset: CharSet::Utf8,
        }
    }
    pub(crate) fn f4() -> Datatype {
        Datatype::FloatingPoint {
            size: 4,
            order: ByteOrder::LittleEndian,
            bit_offset: 0,
            bit_precision: 32,
            exponent_location: 23,
            exponent_size: 8,
            mantissa_location: 0,
            mantissa_size: 23,
            exponent_bias: 127,
        }
    }
    pub(crate) fn i4() -> Datatype {
        Datatype::FixedPoint {
            size: 4,
            order: ByteOrder::LittleEndian,
            signed: true,
            bit_offset: 0,
            bit_precision: 32,
        }
    }
    pub(crate) fn attr(name: &str, dt: Datatype, space: Dataspace, value: Vec<Value>) -> Attribute {
        Attribute {
            name: name.into(),
            datatype: dt,
            dataspace: space,
            value,
        }
    }
    pub(crate) fn simple(dims: &[u64]) -> Dataspace {
        Dataspace::Simple {
            dims: dims.to_vec(),
            max_dims: dims.iter().map(|d| Some(*d)).collect(),
        }
    }

    fn conv(a: Attribute) -> Option<String> {
        attr_to_json(&a).map(|j| j.to_compact())
    }

    #[test]
    fn conversion_table() {
        let s = |x: &str| Value::Str(x.into());
        // hidden
        for h in HIDDEN_ATTRS {
            assert_eq!(
                conv(attr(h, i4(), Dataspace::Scalar, vec![Value::Int(1)])),
                None
            );
        }
        // scalar strings
        assert_eq!(
            conv(attr("u", fixed_str(5), Dataspace::Scalar, vec![s("m s-1")])),
            Some(r#""m s-1""#.into())
        );
        assert_eq!(
            conv(attr("u", fixed_str(1), Dataspace::Scalar, vec![s("")])),
            Some(r#"" ""#.into())
        );
        assert_eq!(
            conv(attr("u", vlen_str(), Dataspace::Scalar, vec![s("")])),
            Some(r#""""#.into())
        );
        // string arrays: size 1 -> scalar, more -> list
        assert_eq!(
            conv(attr("u", fixed_str(3), simple(&[1]), vec![s("abc")])),
            Some(r#""abc""#.into())
        );
        assert_eq!(
            conv(attr("u", vlen_str(), simple(&[2]), vec![s("a"), s("")])),
            Some(r#"["a",""]"#.into())
        );
        // null dataspace
        assert_eq!(
            conv(attr("e", f4(), Dataspace::Null, vec![])),
            Some(r#""""#.into())
        );
        // numbers
        assert_eq!(
            conv(attr("x", f4(), simple(&[1]), vec![Value::Float(0.5)])),
            Some("0.5".into())
        );
        assert_eq!(
            conv(attr("x", f4(), Dataspace::Scalar, vec![Value::Float(1.0)])),
            Some("1.0".into())
        );
        assert_eq!(
            conv(attr(
                "x",
                f4(),
                simple(&[3]),
                vec![
                    Value::Float(f64::NAN),
                    Value::Float(f64::INFINITY),
                    Value::Float(f64::NEG_INFINITY)
                ]
            )),
            Some("[NaN,Infinity,-Infinity]".into())
        );
        assert_eq!(
            conv(attr(
                "x",
                i4(),
                simple(&[2, 2]),
                vec![Value::Int(1), Value::Int(2), Value::Int(3), Value::Int(4)]
            )),
            Some("[[1,2],[3,4]]".into())
        );
        assert_eq!(
            conv(attr(
                "valid_range",
                i4(),
                simple(&[2]),
                vec![Value::Int(-1), Value::UInt(u64::MAX)]
            )),
            Some("[-1,18446744073709551615]".into())
        );
        // _FillValue dropped unless a scalar string
        assert_eq!(
            conv(attr(
                "_FillValue",
                f4(),
                simple(&[1]),
                vec![Value::Float(1e37)]
            )),
            None
        );
        assert_eq!(
            conv(attr(
                "_FillValue",
                fixed_str(1),
                Dataspace::Scalar,
                vec![s("x")]
            )),
            Some(r#""x""#.into())
        );
        // DIMENSION_SCALE value dropped under any name
        assert_eq!(
            conv(attr(
                "kind",
                fixed_str(15),
                Dataspace::Scalar,
                vec![s("DIMENSION_SCALE")]
            )),
            None
        );
        // bool enum and other enums
        let be = Datatype::Enum {
            size: 1,
            base: Box::new(Datatype::FixedPoint {
                size: 1,
                order: ByteOrder::LittleEndian,
                signed: true,
                bit_offset: 0,
                bit_precision: 8,
            }),
            members: vec![("FALSE".into(), vec![0]), ("TRUE".into(), vec![1])],
        };
        assert_eq!(
            conv(attr(
                "flag",
                be,
                Dataspace::Scalar,
                vec![Value::Enum {
                    name: Some("TRUE".into()),
                    value: 1
                }]
            )),
            Some("true".into())
        );
        // unrepresentable
        assert_eq!(
            conv(attr(
                "r",
                i4(),
                Dataspace::Scalar,
                vec![Value::ObjectRef(8)]
            )),
            None
        );
        assert_eq!(
            conv(attr(
                "o",
                i4(),
                Dataspace::Scalar,
                vec![Value::Bytes(vec![1])]
            )),
            None
        );
        // array-typed scalar -> list
        assert_eq!(
            conv(attr(
                "a",
                i4(),
                Dataspace::Scalar,
                vec![Value::Array(vec![Value::Int(1), Value::Int(2)])]
            )),
            Some("[1,2]".into())
        );
    }

    #[test]
    fn whole_object() {
        let m = attrs_to_json(&[
            attr("b", i4(), Dataspace::Scalar, vec![Value::Int(2)]),
            attr(
                "CLASS",
                fixed_str(16),
                Dataspace::Scalar,
                vec![Value::Str("DIMENSION_SCALE".into())],
            ),
            attr("a", i4(), Dataspace::Scalar, vec![Value::Int(1)]),
        ]);
        assert_eq!(Json::Object(m).to_compact(), r#"{"a":1,"b":2}"#);
    }
}
