//! Indexing one input reference set: its arrays (typed `.zarray`, the
//! `_ARRAY_DIMENSIONS` of its `.zattrs`), their chunk references by chunk
//! index, and its group metadata. No I/O.
//!
//! Inputs of one model run carry the same metadata documents over and over
//! (every hourly file has the same `.zarray` and `.zattrs` per variable), so
//! a document equal to the previous input's is not parsed again ([`Memo`]).

use std::collections::HashMap;
use std::sync::Arc;

use super::CombineError;
use crate::json::Json;
use crate::refs::{Ref, RefSet};
use crate::zarr::ZArray;

/// `_ARRAY_DIMENSIONS`, shared between inputs.
pub(super) type Dims = Option<Arc<Vec<String>>>;

pub(super) struct ArrayIn<'a> {
    pub meta: Arc<ZArray>,
    pub dims: Dims,
    /// Chunk indices, `rank` numbers per chunk, in `chunk_refs` order.
    chunk_idx: Vec<u64>,
    /// `(key, ref)` per chunk.
    chunk_refs: Vec<(&'a str, &'a Ref)>,
}

impl<'a> ArrayIn<'a> {
    pub fn rank(&self) -> usize {
        self.meta.shape.len()
    }

    /// `(chunk index, key, ref)` of every chunk, in key order.
    pub fn chunks(&self) -> impl Iterator<Item = (&[u64], &'a str, &'a Ref)> + '_ {
        let rank = self.rank();
        self.chunk_refs.iter().enumerate().map(move |(n, (k, r))| {
            let idx = self
                .chunk_idx
                .get(n * rank..(n + 1) * rank)
                .unwrap_or_default();
            (idx, *k, *r)
        })
    }

    /// True when both inputs' `.zarray` documents were the same text.
    pub fn same_meta(&self, other: &ArrayIn<'_>) -> bool {
        Arc::ptr_eq(&self.meta, &other.meta)
    }
}

pub(super) struct Input<'a> {
    pub name: &'a str,
    pub set: &'a RefSet,
    pub arrays: HashMap<&'a str, ArrayIn<'a>>,
    /// `(key, prefix, ref)` of every `.zgroup` and of every `.zattrs` not
    /// belonging to one of this input's arrays.
    pub group_meta: Vec<(&'a str, &'a str, &'a Ref)>,
}

/// The last parsed metadata documents per array name, shared between
/// inputs: a document whose text equals the previous input's is not parsed
/// again (keyed by the short name, compared by text: hashing every long
/// `.zattrs` text cost more than the comparison).
#[derive(Default)]
pub(super) struct Memo<'a> {
    zarray: HashMap<&'a str, (&'a str, Arc<ZArray>)>,
    dims: HashMap<&'a str, (&'a str, Dims)>,
}

pub(super) fn parse_err(input: &str, key: &str, msg: impl Into<String>) -> CombineError {
    CombineError::Parse {
        input: input.to_string(),
        key: key.to_string(),
        msg: msg.into(),
    }
}

pub(super) fn split_key(key: &str) -> (&str, &str) {
    key.rsplit_once('/').unwrap_or(("", key))
}

fn parse_zarray(name: &str, key: &str, r: &Ref) -> Result<ZArray, CombineError> {
    let doc = r
        .inline_bytes()
        .ok_or_else(|| parse_err(name, key, "metadata is not inline"))?;
    let text = std::str::from_utf8(&doc).map_err(|e| parse_err(name, key, e.to_string()))?;
    let z = ZArray::parse(text).map_err(|e| parse_err(name, key, e.to_string()))?;
    if let Some(sep) = z.dimension_separator.as_ref().and_then(Json::as_str)
        && sep != "."
    {
        return Err(parse_err(
            name,
            key,
            format!("dimension_separator {sep:?} is not supported"),
        ));
    }
    Ok(z)
}

/// `_ARRAY_DIMENSIONS` of a `.zattrs` document, if it has them.
fn parse_dims(name: &str, key: &str, set: &RefSet) -> Result<Dims, CombineError> {
    let bad = || parse_err(name, key, "bad _ARRAY_DIMENSIONS");
    let attrs = match set.get_json(key) {
        None => return Ok(None),
        Some(Err(e)) => return Err(parse_err(name, key, e)),
        Some(Ok(a)) => a,
    };
    match attrs.get("_ARRAY_DIMENSIONS") {
        None => Ok(None),
        Some(Json::Array(d)) => d
            .iter()
            .map(|x| x.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .map(|d| Some(Arc::new(d)))
            .ok_or_else(bad),
        Some(_) => Err(bad()),
    }
}

pub(super) fn index_input<'a>(
    name: &'a str,
    set: &'a RefSet,
    memo: &mut Memo<'a>,
) -> Result<Input<'a>, CombineError> {
    let mut arrays: HashMap<&'a str, ArrayIn<'a>> = HashMap::new();
    let mut zattrs_key = String::new();
    for (key, r) in &set.refs {
        let (prefix, leaf) = split_key(key);
        if leaf != ".zarray" {
            continue;
        }
        if prefix.is_empty() {
            return Err(parse_err(name, key, "a root-level array is not supported"));
        }
        let meta = match (r, memo.zarray.get(prefix)) {
            (Ref::Text(t), Some((seen, m))) if *seen == t.as_str() => m.clone(),
            (Ref::Text(t), _) => {
                let m = Arc::new(parse_zarray(name, key, r)?);
                memo.zarray.insert(prefix, (t.as_str(), m.clone()));
                m
            }
            _ => Arc::new(parse_zarray(name, key, r)?),
        };
        zattrs_key.clear();
        zattrs_key.push_str(prefix);
        zattrs_key.push_str("/.zattrs");
        let dims = match set.refs.get_key_value(zattrs_key.as_str()) {
            None => None,
            Some((k, Ref::Text(t))) => match memo.dims.get(prefix) {
                Some((seen, d)) if *seen == t.as_str() => d.clone(),
                _ => {
                    let d = parse_dims(name, k, set)?;
                    memo.dims.insert(prefix, (t.as_str(), d.clone()));
                    d
                }
            },
            Some((k, _)) => parse_dims(name, k, set)?,
        };
        if dims.as_ref().is_some_and(|d| d.len() != meta.shape.len()) {
            return Err(parse_err(name, &zattrs_key, "bad _ARRAY_DIMENSIONS"));
        }
        arrays.insert(
            prefix,
            ArrayIn {
                meta,
                dims,
                chunk_idx: Vec::new(),
                chunk_refs: Vec::new(),
            },
        );
    }
    let mut group_meta = Vec::new();
    for (key, r) in &set.refs {
        let (prefix, leaf) = split_key(key);
        if leaf.starts_with(".z") {
            if leaf == ".zgroup" || (leaf == ".zattrs" && !arrays.contains_key(prefix)) {
                group_meta.push((key.as_str(), prefix, r));
            }
            continue;
        }
        let Some(a) = arrays.get_mut(prefix) else {
            continue;
        };
        let rank = a.rank();
        if rank == 0 {
            if leaf != "0" {
                return Err(parse_err(name, key, "bad chunk key of a 0-d array"));
            }
        } else {
            let before = a.chunk_idx.len();
            let mut n = 0;
            for p in leaf.split('.') {
                match p.parse::<u64>() {
                    Ok(v) if n < rank => a.chunk_idx.push(v),
                    _ => n = rank + 1,
                }
                n += 1;
            }
            if n != rank {
                a.chunk_idx.truncate(before);
                return Err(parse_err(name, key, "bad chunk key"));
            }
        }
        a.chunk_refs.push((key.as_str(), r));
    }
    Ok(Input {
        name,
        set,
        arrays,
        group_meta,
    })
}
