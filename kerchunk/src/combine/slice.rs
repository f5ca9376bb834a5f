//! Cutting a combined reference set back into pieces along its concat
//! dimension, so an aggregate can be updated by combining *pieces of
//! itself* with the few inputs that changed instead of every input again
//! (the pipeline's FMRC splice, `ingest::fmrc_update`).
//!
//! A piece of a [`super::combine`] output is itself a valid multi-valued
//! input: its concat coordinate (one inline chunk) keeps the values of the
//! range, every concatenated array keeps the chunks of those positions,
//! renumbered from 0, and everything else (static arrays, group metadata)
//! is kept as it is. Combining the pieces with new inputs gives what
//! combining the original inputs would, as long as the earliest input is
//! the same (static arrays and attributes come from it): the caller checks
//! that. Only chunk size 1 along the concat axis is cut (one chunk per
//! time step, what OFS record variables have); anything else is refused
//! with [`CombineError::Unsupported`] and the caller combines from scratch.
//!
//! No I/O.

use std::collections::BTreeMap;
use std::ops::Range;

use super::CombineError;
use super::coord::NumType;
use super::input::split_key;
use crate::json::Json;
use crate::refs::{Ref, RefSet};

/// How the concat dimension runs through a combined reference set.
struct Layout {
    /// Number of positions along the concat dimension.
    n: u64,
    /// Bytes per coordinate value.
    item: usize,
    /// Concatenated arrays: name -> (axis, rank).
    concat: BTreeMap<String, (usize, usize)>,
    /// Concatenated arrays: name -> chunks per axis.
    grids: BTreeMap<String, Vec<u64>>,
}

fn unsupported(name: &str, var: &str, msg: impl Into<String>) -> CombineError {
    CombineError::Unsupported {
        input: name.to_string(),
        var: var.to_string(),
        msg: msg.into(),
    }
}

fn u64s(doc: &Json, field: &str) -> Option<Vec<u64>> {
    match doc.get(field)? {
        Json::Array(a) => a.iter().map(Json::as_u64).collect(),
        _ => None,
    }
}

fn layout(name: &str, refs: &RefSet, dim: &str) -> Result<Layout, CombineError> {
    let bad = |msg: &str| unsupported(name, dim, msg);
    let zarray = match refs.get_json(&format!("{dim}/.zarray")) {
        Some(Ok(z)) => z,
        _ => return Err(bad("no readable coordinate .zarray")),
    };
    let (shape, chunks) = (u64s(&zarray, "shape"), u64s(&zarray, "chunks"));
    let n = match (shape.as_deref(), chunks.as_deref()) {
        (Some([n]), Some([c])) if n == c => *n,
        _ => return Err(bad("the coordinate is not one 1-d chunk")),
    };
    let ty = zarray
        .get("dtype")
        .and_then(NumType::parse)
        .ok_or_else(|| bad("the coordinate dtype is not a plain number type"))?;
    // The values are inline, so the length is bounded by bytes that exist
    // (a damaged shape cannot drive an allocation).
    let have = refs
        .get(&format!("{dim}/0"))
        .and_then(Ref::inline_bytes)
        .map_or(0, |b| b.len());
    if usize::try_from(n)
        .ok()
        .and_then(|n| n.checked_mul(ty.size))
        .is_none_or(|need| need > have)
    {
        return Err(bad(
            "the coordinate chunk is not inline or shorter than its shape",
        ));
    }
    let mut concat = BTreeMap::new();
    let mut grids = BTreeMap::new();
    for key in metadata_keys(refs) {
        let (prefix, leaf) = split_key(key);
        if leaf != ".zarray" || prefix == dim {
            continue;
        }
        let dims = match refs.get_json(&format!("{prefix}/.zattrs")) {
            Some(Ok(a)) => a.get("_ARRAY_DIMENSIONS").cloned(),
            _ => None,
        };
        let Some(Json::Array(dims)) = dims else {
            continue;
        };
        let Some(axis) = dims.iter().position(|d| d.as_str() == Some(dim)) else {
            continue;
        };
        let doc = match refs.get_json(key) {
            Some(Ok(z)) => z,
            _ => return Err(unsupported(name, prefix, "unreadable .zarray")),
        };
        let (shape, chunks) = (u64s(&doc, "shape"), u64s(&doc, "chunks"));
        let grid = match (shape, chunks) {
            (Some(s), Some(c))
                if s.len() == dims.len()
                    && c.len() == dims.len()
                    && s.get(axis) == Some(&n)
                    && c.get(axis) == Some(&1)
                    && c.iter().all(|&c| c > 0) =>
            {
                s.iter().zip(&c).map(|(s, c)| s.div_ceil(*c)).collect()
            }
            _ => {
                return Err(unsupported(
                    name,
                    prefix,
                    format!("not cut along {dim}: needs chunk 1 and extent {n} on that axis"),
                ));
            }
        };
        concat.insert(prefix.to_string(), (axis, dims.len()));
        grids.insert(prefix.to_string(), grid);
    }
    Ok(Layout {
        n,
        item: ty.size,
        concat,
        grids,
    })
}

/// Every key that is not a chunk of an array, without visiting the chunks:
/// the keys of one array (`var/...`) are contiguous in key order and its
/// metadata (`var/.z*`, `.` < digits) sorts before its chunks, so at the
/// first chunk the walk jumps to `var0`, the first key after them all.
fn metadata_keys(refs: &RefSet) -> impl Iterator<Item = &String> {
    use std::ops::Bound::{Excluded, Included, Unbounded};
    let mut next: Option<std::ops::Bound<String>> = Some(Unbounded);
    std::iter::from_fn(move || {
        loop {
            let from = next.take()?;
            let (key, _) = refs.refs.range::<String, _>((from, Unbounded)).next()?;
            let (prefix, leaf) = split_key(key);
            if leaf.starts_with(".z") || prefix.is_empty() {
                next = Some(Excluded(key.clone()));
                return Some(key);
            }
            // A chunk: skip the rest of this array's chunks.
            next = Some(Included(format!("{prefix}0")));
        }
    })
}

/// The chunk keys of array `prefix` (`prefix/<digits and dots>`), visited
/// in key order.
fn chunk_keys<'r>(refs: &'r RefSet, prefix: &str) -> impl Iterator<Item = (&'r String, &'r Ref)> {
    use std::ops::Bound::{Excluded, Unbounded};
    let start = format!("{prefix}/");
    let end = format!("{prefix}0");
    refs.refs
        .range::<String, _>((Excluded(start.clone()), Unbounded))
        .take_while(move |(k, _)| k.as_str() < end.as_str())
        .filter(|(k, _)| {
            k.rsplit_once('/')
                .is_some_and(|(_, leaf)| !leaf.starts_with(".z"))
        })
}

/// A concatenated array: name, concat axis, rank.
pub type ConcatArray = (String, usize, usize);

/// The arrays of a combined reference set concatenated along `dim` and its
/// number of positions; only metadata is read.
pub fn concat_arrays(
    name: &str,
    refs: &RefSet,
    dim: &str,
) -> Result<(u64, Vec<ConcatArray>), CombineError> {
    let l = layout(name, refs, dim)?;
    Ok((
        l.n,
        l.concat
            .into_iter()
            .map(|(k, (axis, rank))| (k, axis, rank))
            .collect(),
    ))
}

/// The chunk index of a chunk key's leaf (`"3.0.1"`), if it has `rank` parts.
fn chunk_index(leaf: &str, rank: usize) -> Option<Vec<u64>> {
    let idx: Vec<u64> = leaf
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    (idx.len() == rank).then_some(idx)
}

/// The index along `axis` of a chunk key's leaf with `rank` parts, without
/// allocating (this runs over every chunk key of a long aggregate).
pub fn position(leaf: &str, rank: usize, axis: usize) -> Option<u64> {
    let mut parts = 0;
    let mut at = None;
    for (i, p) in leaf.split('.').enumerate() {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if i == axis {
            at = Some(p.parse().ok()?);
        }
        parts += 1;
    }
    if parts == rank { at } else { None }
}

/// Per position along `dim`, the one URL the chunks of the concatenated
/// arrays at that position point to (`None`: every chunk there is inline
/// or missing). Arrays are read in name order until every position is
/// named; two URLs at one position among those read is an error (the set
/// was not made of one-step inputs).
pub fn concat_positions(
    name: &str,
    refs: &RefSet,
    dim: &str,
) -> Result<Vec<Option<String>>, CombineError> {
    let l = layout(name, refs, dim)?;
    let n = usize::try_from(l.n).map_err(|_| unsupported(name, dim, "too long"))?;
    let mut urls: Vec<Option<String>> = vec![None; n];
    let mut missing = n;
    // Arrays one by one until every position is named (normally the first
    // array does it), so this costs the positions, not the whole set.
    for (prefix, &(axis, rank)) in &l.concat {
        if missing == 0 {
            break;
        }
        for (key, r) in chunk_keys(refs, prefix) {
            let leaf = split_key(key).1;
            let url = match r {
                Ref::Range { url, .. } | Ref::Url(url) => url,
                _ => continue,
            };
            let p = position(leaf, rank, axis)
                .and_then(|p| usize::try_from(p).ok())
                .ok_or_else(|| unsupported(name, key, "bad chunk key"))?;
            let slot = urls
                .get_mut(p)
                .ok_or_else(|| unsupported(name, key, "chunk beyond the coordinate"))?;
            match slot {
                Some(u) if u != url => {
                    return Err(unsupported(
                        name,
                        key,
                        format!("position {p} mixes {u} and {url}"),
                    ));
                }
                Some(_) => {}
                None => {
                    *slot = Some(url.clone());
                    missing -= 1;
                }
            }
        }
    }
    Ok(urls)
}

/// Sets the extent along `axis` of a `.zarray` document (and the chunk too
/// when `chunk` is given).
fn with_extent(doc: &Json, axis: usize, extent: u64, chunk: bool) -> Option<Json> {
    let Json::Object(mut m) = doc.clone() else {
        return None;
    };
    for field in ["shape", "chunks"] {
        if field == "chunks" && !chunk {
            continue;
        }
        if let Some(Json::Array(a)) = m.get_mut(field) {
            *a.get_mut(axis)? = Json::UInt(extent);
        }
    }
    Some(Json::Object(m))
}

/// [`slice_concat`] consuming the set: a range starting at 0 keeps every
/// key, so the set is cut in place instead of copied (the long first piece
/// of a spliced aggregate).
pub fn slice_concat_owned(
    name: &str,
    mut refs: RefSet,
    dim: &str,
    range: Range<u64>,
) -> Result<RefSet, CombineError> {
    if range.start != 0 {
        return slice_concat(name, &refs, dim, range);
    }
    let l = layout(name, &refs, dim)?;
    if range.end == 0 || range.end > l.n {
        return Err(unsupported(
            name,
            dim,
            format!("cannot cut {range:?} out of {} positions", l.n),
        ));
    }
    let len = range.end;
    let mut bad = None;
    refs.refs.retain(|key, _| {
        let (prefix, leaf) = split_key(key);
        match l.concat.get(prefix) {
            Some(&(axis, rank)) if !leaf.starts_with(".z") => match position(leaf, rank, axis) {
                Some(p) => p < len,
                None => {
                    bad = Some(key.clone());
                    true
                }
            },
            _ => true,
        }
    });
    if let Some(key) = bad {
        return Err(unsupported(name, &key, "bad chunk key"));
    }
    let mut docs = Vec::new();
    for (prefix, &(axis, _)) in &l.concat {
        let key = format!("{prefix}/.zarray");
        let doc = refs
            .get_json(&key)
            .and_then(Result::ok)
            .and_then(|d| with_extent(&d, axis, len, false))
            .ok_or_else(|| unsupported(name, &key, "unreadable .zarray"))?;
        docs.push((key, doc));
    }
    let key = format!("{dim}/.zarray");
    let doc = refs
        .get_json(&key)
        .and_then(Result::ok)
        .and_then(|d| with_extent(&d, 0, len, true))
        .ok_or_else(|| unsupported(name, &key, "unreadable .zarray"))?;
    docs.push((key, doc));
    for (key, doc) in docs {
        refs.insert_json(key, &doc);
    }
    let key = format!("{dim}/0");
    let cut = refs
        .get(&key)
        .and_then(Ref::inline_bytes)
        .and_then(|b| {
            let end = usize::try_from(len).ok()?.checked_mul(l.item)?;
            b.get(..end).map(<[u8]>::to_vec)
        })
        .ok_or_else(|| unsupported(name, &key, "coordinate chunk not inline or too short"))?;
    refs.insert(key, Ref::inline(&cut));
    Ok(refs)
}

/// Positions `range` of a combined reference set along `dim` as a reference
/// set of its own (see the module documentation).
pub fn slice_concat(
    name: &str,
    refs: &RefSet,
    dim: &str,
    range: Range<u64>,
) -> Result<RefSet, CombineError> {
    let l = layout(name, refs, dim)?;
    if range.start >= range.end || range.end > l.n {
        return Err(unsupported(
            name,
            dim,
            format!("cannot cut {range:?} out of {} positions", l.n),
        ));
    }
    let len = range.end - range.start;
    let mut out = RefSet::new();
    for (key, r) in &refs.refs {
        let (prefix, leaf) = split_key(key);
        if prefix == dim {
            match leaf {
                ".zarray" => {
                    let doc = refs
                        .get_json(key)
                        .and_then(Result::ok)
                        .and_then(|d| with_extent(&d, 0, len, true))
                        .ok_or_else(|| unsupported(name, key, "unreadable .zarray"))?;
                    out.insert_json(key.clone(), &doc);
                }
                "0" => {
                    let bytes = r
                        .inline_bytes()
                        .ok_or_else(|| unsupported(name, key, "coordinate chunk not inline"))?;
                    let cut = usize::try_from(range.start)
                        .ok()
                        .zip(usize::try_from(range.end).ok())
                        .and_then(|(a, b)| {
                            bytes.get(a.checked_mul(l.item)?..b.checked_mul(l.item)?)
                        })
                        .ok_or_else(|| unsupported(name, key, "coordinate chunk too short"))?;
                    out.insert(key.clone(), Ref::inline(cut));
                }
                _ if leaf.starts_with(".z") => out.insert(key.clone(), r.clone()),
                _ => return Err(unsupported(name, key, "more than one coordinate chunk")),
            }
            continue;
        }
        let Some(&(axis, rank)) = l.concat.get(prefix) else {
            out.insert(key.clone(), r.clone());
            continue;
        };
        if leaf == ".zarray" {
            let doc = refs
                .get_json(key)
                .and_then(Result::ok)
                .and_then(|d| with_extent(&d, axis, len, false))
                .ok_or_else(|| unsupported(name, key, "unreadable .zarray"))?;
            out.insert_json(key.clone(), &doc);
            continue;
        }
        if leaf.starts_with(".z") {
            out.insert(key.clone(), r.clone());
            continue;
        }
        let mut idx =
            chunk_index(leaf, rank).ok_or_else(|| unsupported(name, key, "bad chunk key"))?;
        let Some(p) = idx.get_mut(axis) else {
            continue;
        };
        if !range.contains(p) {
            continue;
        }
        *p -= range.start;
        let leaf: Vec<String> = idx.iter().map(u64::to_string).collect();
        out.insert(format!("{prefix}/{}", leaf.join(".")), r.clone());
    }
    Ok(out)
}

/// The chunk keys of `prefix` at `pos` along `axis` of a chunk grid.
fn keys_at(prefix: &str, grid: &[u64], axis: usize, pos: u64) -> Vec<String> {
    let mut out = vec![String::new()];
    for (a, &count) in grid.iter().enumerate() {
        let values: Vec<u64> = if a == axis {
            vec![pos]
        } else {
            (0..count).collect()
        };
        out = out
            .iter()
            .flat_map(|head| {
                values.iter().map(move |v| {
                    if head.is_empty() && a == 0 {
                        v.to_string()
                    } else {
                        format!("{head}.{v}")
                    }
                })
            })
            .collect();
    }
    out.into_iter()
        .map(|leaf| format!("{prefix}/{leaf}"))
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn set_extent(
    base: &RefSet,
    out: &mut RefSet,
    name: &str,
    key: &str,
    axis: usize,
    extent: u64,
    chunk: bool,
) -> Result<(), CombineError> {
    // A document already edited (a tail-only array) is edited again.
    let doc = out
        .get_json(key)
        .or_else(|| base.get_json(key))
        .and_then(Result::ok)
        .and_then(|d| with_extent(&d, axis, extent, chunk))
        .ok_or_else(|| unsupported(name, key, "unreadable .zarray"))?;
    out.insert_json(key.to_string(), &doc);
    Ok(())
}

/// A combined reference set `base` whose positions from `p` on are
/// replaced by `tail`: the combine of base's position `p - 1` (the anchor,
/// [`slice_concat`]`(base, p-1..p)`) with whatever follows it. Equal to
/// combining everything again, at the cost of the tail: base keeps its
/// first input (static arrays, attributes, metadata); chunks of the tail
/// are renumbered after position `p - 1`; arrays, groups and attributes
/// only the tail has are taken from it; every concatenated extent becomes
/// the new length. The tail's position 0 must be the anchor (same
/// coordinate bytes), else an error (combine from scratch).
pub fn graft(
    name: &str,
    mut base: RefSet,
    dim: &str,
    p: u64,
    tail: &RefSet,
) -> Result<RefSet, CombineError> {
    let edits = graft_edits(name, &base, dim, p, tail)?;
    for key in &edits.remove {
        base.refs.remove(key);
    }
    base.refs.extend(edits.set.refs);
    Ok(base)
}

/// What [`graft`] changes in `base`: keys to remove and keys to set. `base`
/// needs its metadata, its coordinate and its chunks from position `p - 1`
/// on; chunks before that are not read (so a caller can apply the edits to
/// the stored JSON text without parsing all of it, see
/// [`crate::refs_text::RefsText`]).
#[derive(Debug, Default)]
pub struct GraftEdits {
    pub remove: std::collections::HashSet<String>,
    pub set: RefSet,
}

/// The edits of [`graft`].
pub fn graft_edits(
    name: &str,
    base: &RefSet,
    dim: &str,
    p: u64,
    tail: &RefSet,
) -> Result<GraftEdits, CombineError> {
    let lb = layout(name, base, dim)?;
    let mut edits = GraftEdits::default();
    let lt = layout(name, tail, dim)?;
    if p == 0 || p > lb.n || lt.n == 0 || lb.item != lt.item {
        return Err(unsupported(
            name,
            dim,
            format!("cannot graft at {p} of {}", lb.n),
        ));
    }
    let coord = format!("{dim}/0");
    let dtype = |r: &RefSet| {
        r.get_json(&format!("{dim}/.zarray"))
            .and_then(Result::ok)
            .and_then(|d| d.get("dtype").cloned())
    };
    let base_coord = base
        .get(&coord)
        .and_then(Ref::inline_bytes)
        .map(|b| b.into_owned());
    let tail_coord = tail
        .get(&coord)
        .and_then(Ref::inline_bytes)
        .map(|b| b.into_owned());
    let (Some(base_coord), Some(tail_coord)) = (base_coord, tail_coord) else {
        return Err(unsupported(name, dim, "coordinate chunk not inline"));
    };
    let item = lb.item;
    let anchor = usize::try_from(p - 1)
        .ok()
        .and_then(|a| a.checked_mul(item));
    let (Some(anchor), true) = (anchor, dtype(base) == dtype(tail)) else {
        return Err(unsupported(name, dim, "coordinate types differ"));
    };
    if base_coord.get(anchor..anchor + item) != tail_coord.get(..item) || tail_coord.len() < item {
        return Err(unsupported(
            name,
            dim,
            "the tail does not start at the anchor",
        ));
    }
    let total = p - 1 + lt.n;
    // Positions from p on leave the base.
    for (prefix, &(axis, _)) in &lb.concat {
        let grid = lb.grids.get(prefix).map(Vec::as_slice).unwrap_or_default();
        // Chunks per position, bounded by what the set holds (a damaged
        // shape cannot make this enumerate billions of keys).
        let per_position = grid
            .iter()
            .enumerate()
            .filter(|(a, _)| *a != axis)
            .try_fold(1u64, |acc, (_, &c)| acc.checked_mul(c));
        let removed = per_position.and_then(|c| c.checked_mul(lb.n - p));
        if removed.is_none_or(|r| r > base.refs.len() as u64 + tail.refs.len() as u64) {
            return Err(unsupported(name, prefix, "more chunk keys than references"));
        }
        for q in p..lb.n {
            edits.remove.extend(keys_at(prefix, grid, axis, q));
        }
    }
    let base_arrays: std::collections::HashSet<String> = metadata_keys(base)
        .filter_map(|k| k.strip_suffix("/.zarray").map(str::to_string))
        .collect();
    for (key, r) in &tail.refs {
        let (prefix, leaf) = split_key(key);
        if prefix == dim {
            continue;
        }
        if let Some(&(axis, rank)) = lt.concat.get(prefix) {
            if let Some(&(b_axis, _)) = lb.concat.get(prefix)
                && b_axis != axis
            {
                return Err(unsupported(name, prefix, "concatenated along another axis"));
            }
            if leaf.starts_with(".z") {
                if !base_arrays.contains(prefix) {
                    edits.set.insert(key.clone(), r.clone());
                }
                continue;
            }
            let mut idx =
                chunk_index(leaf, rank).ok_or_else(|| unsupported(name, key, "bad chunk key"))?;
            let Some(q) = idx.get_mut(axis) else { continue };
            if *q == 0 {
                continue;
            }
            *q += p - 1;
            let leaf: Vec<String> = idx.iter().map(u64::to_string).collect();
            edits
                .set
                .insert(format!("{prefix}/{}", leaf.join(".")), r.clone());
        } else if !base_arrays.contains(prefix) && !base.refs.contains_key(key) {
            edits.set.insert(key.clone(), r.clone());
        }
    }
    // Every concatenated extent (and the coordinate) becomes the new length.
    let mut concat: BTreeMap<&str, usize> =
        lt.concat.iter().map(|(k, v)| (k.as_str(), v.0)).collect();
    concat.extend(lb.concat.iter().map(|(k, v)| (k.as_str(), v.0)));
    for (prefix, axis) in concat {
        set_extent(
            base,
            &mut edits.set,
            name,
            &format!("{prefix}/.zarray"),
            axis,
            total,
            false,
        )?;
    }
    set_extent(
        base,
        &mut edits.set,
        name,
        &format!("{dim}/.zarray"),
        0,
        total,
        true,
    )?;
    let mut bytes = base_coord;
    bytes.truncate(anchor);
    bytes.extend_from_slice(&tail_coord);
    edits.set.insert(coord, Ref::inline(&bytes));
    Ok(edits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::combine::{CombineOptions, combine};

    fn zarray(shape: &[u64], chunks: &[u64], dtype: &str) -> Ref {
        Ref::Text(format!(
            r#"{{"chunks":{chunks:?},"compressor":null,"dtype":"{dtype}","fill_value":null,"filters":null,"order":"C","shape":{shape:?},"zarr_format":2}}"#
        ))
    }
    fn zattrs(dims: &[&str]) -> Ref {
        Ref::Text(format!(r#"{{"_ARRAY_DIMENSIONS":{dims:?}}}"#))
    }

    /// A one-step input at time `t` from `url`: `t` inline, `zeta(t, y)`
    /// chunks `[1, 2]`, `it(t)` with an overhanging chunk (trimmed by the
    /// combine), a static `h(y)` and root attributes that name the input
    /// (so the output shows which input came first).
    fn input(url: &str, t: f64) -> (String, RefSet) {
        let mut s = RefSet::new();
        s.insert(".zgroup", Ref::Text(r#"{"zarr_format":2}"#.into()));
        s.insert(".zattrs", Ref::Text(format!(r#"{{"title":"{url}"}}"#)));
        s.insert("t/.zarray", zarray(&[1], &[1], "<f8"));
        s.insert("t/.zattrs", zattrs(&["t"]));
        s.insert("t/0", Ref::Binary(t.to_le_bytes().to_vec()));
        s.insert("zeta/.zarray", zarray(&[1, 4], &[1, 2], "<f4"));
        s.insert("zeta/.zattrs", zattrs(&["t", "y"]));
        s.insert(
            "zeta/0.0",
            Ref::Range {
                url: url.into(),
                offset: 1000,
                length: 800,
            },
        );
        s.insert(
            "zeta/0.1",
            Ref::Range {
                url: url.into(),
                offset: 2000,
                length: 800,
            },
        );
        s.insert("it/.zarray", zarray(&[1], &[1024], "<i4"));
        s.insert("it/.zattrs", zattrs(&["t"]));
        s.insert(
            "it/0",
            Ref::Range {
                url: url.into(),
                offset: 5000,
                length: 4096,
            },
        );
        s.insert("h/.zarray", zarray(&[4], &[4], "<f8"));
        s.insert("h/.zattrs", zattrs(&["y"]));
        s.insert(
            "h/0",
            Ref::Range {
                url: url.into(),
                offset: 10,
                length: 32,
            },
        );
        (format!("{url}.json"), s)
    }

    fn member(i: usize, t: f64) -> (String, RefSet) {
        input(&format!("s3://b/m{i}.nc"), t)
    }

    fn opts() -> CombineOptions {
        let mut o = CombineOptions::new("t");
        o.inline_threshold = 0;
        o
    }

    /// `old` combined from `before`; `after` = `before` without the inputs
    /// at `removed` (positions) plus `new`: the pieces of `old` around the
    /// removed positions combined with `new` equal `after` combined.
    fn check(before: &[(String, RefSet)], removed: &[u64], new: (String, RefSet)) {
        let old = combine(before, &opts()).unwrap();
        let n = before.len() as u64;
        let mut inputs = Vec::new();
        // Runs of kept positions, also cut where the new input goes.
        let t_new = f64::from_le_bytes(
            new.1.get("t/0").and_then(Ref::inline_bytes).unwrap()[..8]
                .try_into()
                .unwrap(),
        );
        let t_of = |i: u64| {
            let b = before[i as usize]
                .1
                .get("t/0")
                .and_then(Ref::inline_bytes)
                .unwrap();
            f64::from_le_bytes(b[..8].try_into().unwrap())
        };
        let mut run: Option<u64> = None;
        for i in 0..=n {
            let keep = i < n && !removed.contains(&i);
            let cut = !keep || (i > 0 && t_of(i - 1) < t_new && t_new < t_of(i));
            if let Some(start) = run.filter(|_| cut) {
                inputs.push((
                    format!("piece {start}"),
                    slice_concat("old", &old, "t", start..i).unwrap(),
                ));
                run = None;
            }
            if keep && run.is_none() {
                run = Some(i);
            }
        }
        // The graft: the first run stays, the rest is combined after its
        // last position (when the first run starts at 0 and is not all).
        let grafted = match inputs.first() {
            Some((name, first)) if name == "piece 0" => {
                let p = layout("x", first, "t").unwrap().n;
                let mut tail = vec![(
                    "anchor".to_string(),
                    slice_concat("old", &old, "t", p - 1..p).unwrap(),
                )];
                tail.extend(inputs[1..].iter().cloned());
                tail.push(new.clone());
                let tail = combine(&tail, &opts()).unwrap();
                // The same edits applied to the JSON text, computed from
                // the entries from the anchor on only.
                let text = old.to_json();
                let rt = crate::refs_text::RefsText::scan(&text).unwrap();
                let (_, arrays) = concat_arrays("old", &old, "t").unwrap();
                let sub = rt
                    .subset(|key| {
                        let (prefix, leaf) = split_key(key);
                        match arrays.iter().find(|a| a.0 == prefix) {
                            Some((_, axis, rank)) if !leaf.starts_with(".z") => {
                                position(leaf, *rank, *axis).is_none_or(|q| q + 1 >= p)
                            }
                            _ => true,
                        }
                    })
                    .unwrap();
                let edits = graft_edits("old", &sub, "t", p, &tail).ok();
                let g = graft("old", old.clone(), "t", p, &tail).ok();
                assert_eq!(edits.is_some(), g.is_some());
                if let (Some(g), Some(edits)) = (&g, edits) {
                    assert_eq!(
                        rt.apply(&edits.remove, &edits.set),
                        g.to_json(),
                        "text graft"
                    );
                }
                g
            }
            _ => None,
        };
        inputs.push(new.clone());
        let spliced = combine(&inputs, &opts()).unwrap();
        let mut after: Vec<(String, RefSet)> = before
            .iter()
            .enumerate()
            .filter(|(i, _)| !removed.contains(&(*i as u64)))
            .map(|(_, x)| x.clone())
            .collect();
        after.push(new);
        let scratch = combine(&after, &opts()).unwrap();
        assert_eq!(spliced.to_json(), scratch.to_json());
        if let Some(g) = grafted {
            assert_eq!(g.to_json(), scratch.to_json(), "graft");
            *GRAFTS.lock().unwrap() += 1;
        }
    }

    static GRAFTS: std::sync::Mutex<usize> = std::sync::Mutex::new(0);

    #[test]
    fn splicing_pieces_equals_combining_from_scratch() {
        let before: Vec<_> = (0..6).map(|i| member(i, i as f64 * 10.0)).collect();
        // A member with an array and a root attribute group the others lack.
        let mut odd = member(9, 70.0);
        odd.1.insert("extra/.zarray", zarray(&[1], &[1], "<f4"));
        odd.1.insert("extra/.zattrs", zattrs(&["t"]));
        odd.1.insert(
            "extra/0",
            Ref::Range {
                url: "s3://b/m9.nc".into(),
                offset: 7,
                length: 900,
            },
        );
        odd.1
            .insert("g/.zgroup", Ref::Text(r#"{"zarr_format":2}"#.into()));
        check(&before, &[], odd);
        check(&before, &[], member(9, 60.0)); // append
        check(&before, &[], member(9, -10.0)); // new first input
        check(&before, &[], member(9, 25.0)); // insert in the middle
        check(&before, &[2], member(9, 20.0)); // replace in the middle
        check(&before, &[0], member(9, 0.0)); // replace the first
        check(&before, &[5], member(9, 50.0)); // replace the last
        check(&before, &[1, 3], member(9, 30.0)); // drop one, replace one
        check(&before, &[4], member(9, 45.0)); // drop one, insert after it
        // The cases with a first run from 0 went through the graft too.
        assert!(*GRAFTS.lock().unwrap() >= 6);
    }

    #[test]
    fn metadata_keys_skip_chunks_only() {
        let mut s = input("s3://b/x.nc", 1.0).1;
        s.insert("g/.zgroup", Ref::Text("{}".into()));
        s.insert("g/v/.zarray", zarray(&[1], &[1], "<f4"));
        s.insert("g/v/0", Ref::Text("x".into()));
        s.insert("g/w/.zattrs", Ref::Text("{}".into()));
        let want: Vec<&String> = s
            .refs
            .keys()
            .filter(|k| {
                let (p, l) = split_key(k);
                l.starts_with(".z") || p.is_empty()
            })
            .collect();
        assert_eq!(metadata_keys(&s).collect::<Vec<_>>(), want);
        let zeta: Vec<&String> = chunk_keys(&s, "zeta").map(|(k, _)| k).collect();
        assert_eq!(zeta, ["zeta/0.0", "zeta/0.1"]);
    }

    #[test]
    fn owned_prefix_equals_the_copy() {
        let before: Vec<_> = (0..5).map(|i| member(i, i as f64)).collect();
        let old = combine(&before, &opts()).unwrap();
        for end in 1..=5 {
            let a = slice_concat("old", &old, "t", 0..end).unwrap();
            let b = slice_concat_owned("old", old.clone(), "t", 0..end).unwrap();
            assert_eq!(a, b, "0..{end}");
        }
        assert!(slice_concat_owned("old", old.clone(), "t", 0..6).is_err());
        assert_eq!(
            slice_concat_owned("old", old.clone(), "t", 2..4).unwrap(),
            slice_concat("old", &old, "t", 2..4).unwrap()
        );
    }

    #[test]
    fn positions_name_each_input_and_refuse_what_cannot_be_cut() {
        let before: Vec<_> = (0..3).map(|i| member(i, i as f64)).collect();
        let old = combine(&before, &opts()).unwrap();
        let p = concat_positions("old", &old, "t").unwrap();
        assert_eq!(
            p,
            (0..3)
                .map(|i| Some(format!("s3://b/m{i}.nc")))
                .collect::<Vec<_>>()
        );
        assert!(slice_concat("old", &old, "t", 2..2).is_err());
        assert!(slice_concat("old", &old, "t", 1..4).is_err());
        // a shape the inline coordinate does not back is refused
        let mut huge = old.clone();
        huge.insert("t/.zarray", zarray(&[1 << 40], &[1 << 40], "<f8"));
        assert!(concat_positions("huge", &huge, "t").is_err());
        // chunk 2 along the concat axis cannot be cut
        let mut two = old.clone();
        two.insert("zeta/.zarray", zarray(&[3, 4], &[2, 2], "<f4"));
        assert!(concat_positions("two", &two, "t").is_err());
        // two URLs at one position
        // (arrays are read until every position is named: `it` would name
        // them all first)
        let mut mixed = old.clone();
        mixed.refs.retain(|k, _| !k.starts_with("it/"));
        mixed.insert(
            "zeta/1.1",
            Ref::Range {
                url: "s3://b/x.nc".into(),
                offset: 0,
                length: 9,
            },
        );
        assert!(concat_positions("mixed", &mixed, "t").is_err());
    }
}
