//! A kerchunk reference set (zarr v2 metadata plus chunk references) as a
//! Zarr v3 hierarchy: one `zarr.json` per group and array, and per array its
//! chunks as inline bytes or `(url, offset, length)` virtual references.
//!
//! Pure conversion, no I/O except resolving relative local source paths.
//!
//! | zarr v2 (`.zarray`)                      | Zarr v3 (`zarr.json`)                          |
//! |------------------------------------------|------------------------------------------------|
//! | `dtype` `<f4`, `>i2`, `\|u1`, `\|b1`     | `data_type` `float32`, `int16`, `uint8`, `bool` plus a `bytes` codec with the byte order |
//! | `dtype` `\|S<n>`                         | `null_terminated_bytes` `{length_bytes: n}` (zarr-python 3.1's name) |
//! | `filters` + `compressor` (numcodecs)     | `numcodecs.<id>` bytes-to-bytes codecs, same order (numcodecs 0.15's zarr3 wrappers) |
//! | `_ARRAY_DIMENSIONS` attribute            | `dimension_names`                              |
//! | `fill_value`                             | `fill_value` (0 / false / "" when v2 has null), and `_FillValue` in the attributes as xarray's Zarr v3 backend encodes it (base64 of a little-endian f64 for floats), because xarray masks with that attribute, not with the zarr fill value, for v3 |
//! | chunk key `a/0.1`                        | chunk indices `[0, 1]` (`default` key encoding, `/`) |
//!
//! Arrays zarr-python 3 cannot read this way (structured and object dtypes,
//! codecs without a zarr3 wrapper, Fortran order, whole-object references)
//! are left out with a warning naming the array, as `refs` does for datasets
//! kerchunk cannot represent.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use kerchunk::{Ref, RefSet};
use serde_json::{Map, Value, json};

use crate::Error;

/// numcodecs ids that numcodecs 0.15 registers as zarr 3 codecs
/// (`numcodecs.<id>`) and that kerchunk's HDF5 filter mapping emits.
const NUMCODECS: [&str; 6] = ["zlib", "shuffle", "fletcher32", "zstd", "blosc", "bz2"];

/// One chunk of an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// Bytes kept in the repository (a native Icechunk chunk).
    Inline(Vec<u8>),
    /// A byte range of a source object.
    Virtual {
        url: String,
        offset: u64,
        length: u64,
    },
}

/// What a node is, with what conflict checks compare.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Group,
    Array {
        shape: Vec<u64>,
        chunk_shape: Vec<u64>,
        data_type: Value,
        dimension_names: Vec<String>,
        chunks: Vec<(Vec<u32>, Chunk)>,
    },
}

/// A group or array at `path` (`""` is the root, else `a/b`).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub path: String,
    /// The `zarr.json` document.
    pub zarr_json: Value,
    pub kind: NodeKind,
}

/// The whole hierarchy, parents before children.
#[derive(Debug, Clone, Default)]
pub struct Hierarchy {
    pub nodes: Vec<Node>,
    /// `(path, reason)` for arrays left out.
    pub warnings: Vec<(String, String)>,
}

impl Hierarchy {
    /// Every distinct virtual chunk URL.
    pub fn urls(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        for n in &self.nodes {
            if let NodeKind::Array { chunks, .. } = &n.kind {
                for (_, c) in chunks {
                    if let Chunk::Virtual { url, .. } = c {
                        out.insert(url.as_str());
                    }
                }
            }
        }
        out
    }
}

fn meta(refs: &RefSet, key: &str) -> Result<Option<Value>, Error> {
    let Some(r) = refs.get(key) else {
        return Ok(None);
    };
    let Some(bytes) = r.inline_bytes() else {
        return Err(Error::Input(format!("{key} is not inline metadata")));
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Input(format!("{key}: {e}")))
}

fn parent_of(key: &str) -> &str {
    key.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}/{name}")
    }
}

/// Convert `refs`. `resolve` turns a reference URL into the absolute URL the
/// repository stores (e.g. a local path into `file:///...`).
pub fn convert(
    refs: &RefSet,
    resolve: &dyn Fn(&str) -> Result<String, Error>,
) -> Result<Hierarchy, Error> {
    let mut groups = BTreeSet::from([String::new()]);
    let mut arrays = BTreeSet::new();
    for key in refs.refs.keys() {
        if let Some(p) = key.strip_suffix(".zgroup") {
            groups.insert(p.trim_end_matches('/').to_string());
        } else if let Some(p) = key.strip_suffix(".zarray") {
            arrays.insert(p.trim_end_matches('/').to_string());
        }
    }
    // Implied intermediate groups.
    for p in groups.clone().iter().chain(arrays.iter()) {
        let mut q = parent_of(p);
        while !q.is_empty() {
            groups.insert(q.to_string());
            q = parent_of(q);
        }
    }
    if let Some(both) = groups.intersection(&arrays).next() {
        return Err(Error::Input(format!(
            "{both:?} is both a group and an array"
        )));
    }
    let mut out = Hierarchy::default();
    for g in &groups {
        let attrs = meta(refs, &join(g, ".zattrs"))?.unwrap_or_else(|| json!({}));
        out.nodes.push(Node {
            path: g.clone(),
            zarr_json: json!({"zarr_format": 3, "node_type": "group", "attributes": attrs}),
            kind: NodeKind::Group,
        });
    }
    // Chunk keys per array, in one pass over the set.
    let mut chunk_keys: BTreeMap<&str, Vec<(&str, &Ref)>> = BTreeMap::new();
    for (key, r) in &refs.refs {
        let (parent, name) = key.rsplit_once('/').unwrap_or(("", key.as_str()));
        if !name.starts_with('.') && arrays.contains(parent) {
            chunk_keys.entry(parent).or_default().push((name, r));
        }
    }
    for a in &arrays {
        let keys = chunk_keys.get(a.as_str()).map(Vec::as_slice).unwrap_or(&[]);
        match array(refs, a, keys, resolve)? {
            Ok(node) => out.nodes.push(node),
            Err(reason) => out.warnings.push((a.clone(), reason)),
        }
    }
    out.nodes.sort_by_key(|n| {
        (
            n.path.matches('/').count() + usize::from(!n.path.is_empty()),
            n.path.clone(),
        )
    });
    Ok(out)
}

/// `Ok(Err(reason))` for an array zarr-python 3 cannot read as converted.
fn array(
    refs: &RefSet,
    path: &str,
    keys: &[(&str, &Ref)],
    resolve: &dyn Fn(&str) -> Result<String, Error>,
) -> Result<Result<Node, String>, Error> {
    let zkey = join(path, ".zarray");
    let Some(Value::Object(za)) = meta(refs, &zkey)? else {
        return Err(Error::Input(format!("{zkey} is not a JSON object")));
    };
    let mut attrs = match meta(refs, &join(path, ".zattrs"))? {
        Some(Value::Object(m)) => m,
        None => Map::new(),
        Some(_) => return Err(Error::Input(format!("{path}/.zattrs is not a JSON object"))),
    };
    let shape = u64_list(za.get("shape")).ok_or_else(|| bad(&zkey, "shape"))?;
    let chunk_shape = u64_list(za.get("chunks")).ok_or_else(|| bad(&zkey, "chunks"))?;
    if shape.len() != chunk_shape.len() || chunk_shape.contains(&0) {
        return Err(bad(&zkey, "chunks"));
    }
    if za.get("order").and_then(Value::as_str).unwrap_or("C") != "C" {
        return Ok(Err("Fortran order has no Zarr v3 equivalent here".into()));
    }
    let Some(dtype) = za.get("dtype").and_then(Value::as_str) else {
        return Ok(Err(
            "structured and object dtypes are not converted to Zarr v3".into(),
        ));
    };
    let (data_type, endian, kind) = match v3_dtype(dtype) {
        Some(t) => t,
        None => return Ok(Err(format!("dtype {dtype} has no Zarr v3 equivalent here"))),
    };
    let mut codecs = vec![match endian {
        Some(e) => json!({"name": "bytes", "configuration": {"endian": e}}),
        None => json!({"name": "bytes"}),
    }];
    let filters = match za.get("filters") {
        Some(Value::Array(f)) => f.clone(),
        _ => Vec::new(),
    };
    let compressor = za.get("compressor").filter(|c| !c.is_null()).cloned();
    for c in filters.into_iter().chain(compressor) {
        let Value::Object(mut cfg) = c else {
            return Err(bad(&zkey, "filters"));
        };
        let id = match cfg.remove("id") {
            Some(Value::String(s)) => s,
            _ => return Err(bad(&zkey, "filters")),
        };
        if !NUMCODECS.contains(&id.as_str()) {
            return Ok(Err(format!("codec {id} has no zarr 3 numcodecs wrapper")));
        }
        codecs.push(json!({"name": format!("numcodecs.{id}"), "configuration": cfg}));
    }
    let v2_fill = za.get("fill_value").cloned().unwrap_or(Value::Null);
    let fill = match (&v2_fill, kind) {
        (Value::Null, 'b') => json!(false),
        (Value::Null, 'S') => json!(""),
        (Value::Null, 'f') => json!(0.0),
        (Value::Null, _) => json!(0),
        (v, _) => v.clone(),
    };
    // xarray's v3 backend cannot decode a `_FillValue` of a fixed-length
    // bytes array (it raises), so those keep only the zarr fill value.
    if !v2_fill.is_null() && kind != 'S' && !attrs.contains_key("_FillValue") {
        attrs.insert(
            "_FillValue".into(),
            xarray_fill(&v2_fill, kind).ok_or_else(|| bad(&zkey, "fill_value"))?,
        );
    }
    let dimension_names: Vec<String> = match attrs.remove("_ARRAY_DIMENSIONS") {
        Some(Value::Array(d)) => d
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| bad(path, "_ARRAY_DIMENSIONS"))?,
        _ => Vec::new(),
    };
    if !dimension_names.is_empty() && dimension_names.len() != shape.len() {
        return Err(bad(path, "_ARRAY_DIMENSIONS"));
    }
    let mut chunks = Vec::with_capacity(keys.len());
    for (name, r) in keys {
        let idx = chunk_index(name, shape.len()).ok_or_else(|| {
            Error::Input(format!(
                "{path}/{name}: not a chunk key of a {}-d array",
                shape.len()
            ))
        })?;
        let chunk = match r {
            Ref::Text(_) | Ref::Binary(_) => {
                Chunk::Inline(r.inline_bytes().map(|b| b.to_vec()).unwrap_or_default())
            }
            Ref::Range {
                url,
                offset,
                length,
            } => Chunk::Virtual {
                url: resolve(url)?,
                offset: *offset,
                length: *length,
            },
            Ref::Url(_) => {
                return Ok(Err(format!(
                    "chunk {name} references a whole object (length unknown)"
                )));
            }
        };
        chunks.push((idx, chunk));
    }
    let mut doc = json!({
        "zarr_format": 3,
        "node_type": "array",
        "shape": shape,
        "data_type": data_type,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunk_shape}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": fill,
        "codecs": codecs,
        "attributes": attrs,
        "storage_transformers": [],
    });
    if !dimension_names.is_empty()
        && let Value::Object(m) = &mut doc
    {
        m.insert("dimension_names".into(), json!(dimension_names));
    }
    Ok(Ok(Node {
        path: path.to_string(),
        zarr_json: doc,
        kind: NodeKind::Array {
            shape,
            chunk_shape,
            data_type,
            dimension_names,
            chunks,
        },
    }))
}

fn bad(key: &str, field: &str) -> Error {
    Error::Input(format!("{key}: invalid {field:?}"))
}

fn u64_list(v: Option<&Value>) -> Option<Vec<u64>> {
    v?.as_array()?.iter().map(Value::as_u64).collect()
}

/// `"a.b.c"` to chunk indices (`"0"` for a 0-d array).
fn chunk_index(name: &str, ndim: usize) -> Option<Vec<u32>> {
    if ndim == 0 {
        return (name == "0").then(Vec::new);
    }
    let idx: Vec<u32> = name
        .split('.')
        .map(|s| s.parse().ok())
        .collect::<Option<_>>()?;
    (idx.len() == ndim).then_some(idx)
}

/// A numpy typestr to (v3 data_type, bytes-codec endian, numpy kind).
fn v3_dtype(s: &str) -> Option<(Value, Option<&'static str>, char)> {
    let mut it = s.chars();
    let order = it.next()?;
    let kind = it.next()?;
    let size: u32 = it.as_str().parse().ok()?;
    let endian = match (order, size) {
        (_, 1) | ('|', _) => None,
        ('<', _) => Some("little"),
        ('>', _) => Some("big"),
        _ => return None,
    };
    let name = match (kind, size) {
        ('b', 1) => "bool",
        ('i', 1 | 2 | 4 | 8) => return Some((json!(format!("int{}", size * 8)), endian, 'i')),
        ('u', 1 | 2 | 4 | 8) => return Some((json!(format!("uint{}", size * 8)), endian, 'u')),
        ('f', 2 | 4 | 8) => return Some((json!(format!("float{}", size * 8)), endian, 'f')),
        ('S', n) if n > 0 => {
            return Some((
                json!({"name": "null_terminated_bytes", "configuration": {"length_bytes": n}}),
                None,
                'S',
            ));
        }
        _ => return None,
    };
    Some((json!(name), endian, 'b'))
}

/// `_FillValue` as xarray's Zarr v3 backend (`FillValueCoder`) decodes it.
fn xarray_fill(v: &Value, kind: char) -> Option<Value> {
    match kind {
        'f' => {
            let x = match v {
                Value::Number(n) => n.as_f64()?,
                Value::String(s) => match s.as_str() {
                    "NaN" => f64::NAN,
                    "Infinity" => f64::INFINITY,
                    "-Infinity" => f64::NEG_INFINITY,
                    _ => return None,
                },
                _ => return None,
            };
            Some(json!(B64.encode(x.to_le_bytes())))
        }
        'i' | 'u' => v.is_number().then(|| v.clone()),
        'b' => v.is_boolean().then(|| v.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> RefSet {
        let mut r = RefSet::new();
        for (k, v) in pairs {
            r.insert(*k, Ref::Text(v.to_string()));
        }
        r
    }

    #[test]
    fn converts_array_with_codecs_dims_and_fill() {
        let mut r = set(&[
            (".zgroup", r#"{"zarr_format":2}"#),
            (
                "g/t/.zarray",
                r#"{"chunks":[1,3],"compressor":null,"dtype":">f4","fill_value":-9999.0,"filters":[{"elementsize":4,"id":"shuffle"},{"id":"zlib","level":4}],"order":"C","shape":[5,3],"zarr_format":2}"#,
            ),
            (
                "g/t/.zattrs",
                r#"{"_ARRAY_DIMENSIONS":["time","x"],"units":"K"}"#,
            ),
        ]);
        r.insert(
            "g/t/1.0",
            Ref::Range {
                url: "s3://b/k.nc".into(),
                offset: 7,
                length: 9,
            },
        );
        let h = convert(&r, &|u| Ok(u.to_string())).unwrap();
        let paths: Vec<_> = h.nodes.iter().map(|n| n.path.as_str()).collect();
        assert_eq!(paths, ["", "g", "g/t"]);
        let t = &h.nodes[2];
        assert_eq!(t.zarr_json["data_type"], "float32");
        assert_eq!(t.zarr_json["codecs"][0]["configuration"]["endian"], "big");
        assert_eq!(t.zarr_json["codecs"][1]["name"], "numcodecs.shuffle");
        assert_eq!(t.zarr_json["codecs"][2]["configuration"]["level"], 4);
        assert_eq!(t.zarr_json["dimension_names"], json!(["time", "x"]));
        assert_eq!(
            t.zarr_json["attributes"],
            json!({"units": "K", "_FillValue": B64.encode((-9999.0f64).to_le_bytes())})
        );
        let NodeKind::Array { chunks, .. } = &t.kind else {
            panic!()
        };
        assert_eq!(
            chunks,
            &[(
                vec![1, 0],
                Chunk::Virtual {
                    url: "s3://b/k.nc".into(),
                    offset: 7,
                    length: 9
                }
            )]
        );
    }

    #[test]
    fn unsupported_array_is_a_warning() {
        let r = set(&[(
            "s/.zarray",
            r#"{"chunks":[2],"compressor":null,"dtype":"|O","fill_value":null,"filters":[{"id":"json2"}],"order":"C","shape":[2],"zarr_format":2}"#,
        )]);
        let h = convert(&r, &|u| Ok(u.to_string())).unwrap();
        assert_eq!(h.nodes.len(), 1);
        assert_eq!(h.warnings.len(), 1);
    }

    #[test]
    fn bad_chunk_key_is_an_error() {
        let r = set(&[
            (
                "a/.zarray",
                r#"{"chunks":[2],"compressor":null,"dtype":"<i4","fill_value":null,"filters":null,"order":"C","shape":[4],"zarr_format":2}"#,
            ),
            ("a/0.1", "x"),
        ]);
        assert!(convert(&r, &|u| Ok(u.to_string())).is_err());
    }
}
