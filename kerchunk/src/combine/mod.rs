//! Concatenate single-file reference sets along one dimension (time), like
//! kerchunk 0.2.7's `MultiZarrToZarr(concat_dims=[dim], identical_dims=...)`.
//!
//! # What happens to each array
//!
//! | array | output |
//! |---|---|
//! | the concat coordinate (`ocean_time`, `time`) | values of every input decoded, de-duplicated, sorted, written inline as **one** uncompressed chunk (`chunks == shape == [n]`), dtype = input dtype in little-endian, `fill_value` as MZZ (`null` for ints, else the input's), attributes of the first input plus `_ARRAY_DIMENSIONS` |
//! | `_ARRAY_DIMENSIONS` contains the concat dim | concatenated: chunk keys renumbered along that axis by the position of the input's first value in the sorted coordinate |
//! | listed in `identical_dims` | taken from the first input (in time order) that has it |
//! | a coordinate (its name appears in some `_ARRAY_DIMENSIONS` of the first input, e.g. `s_rho`) | taken from the first input (MZZ does the same) |
//! | any other array (grid, scalars: `h`, `dt`, ...) | [`StaticVars::First`] (default): from the earliest input (inputs are ordered by their first coordinate value, so the result does not depend on listing order). [`StaticVars::Stack`]: MZZ's behaviour, a new leading concat axis, each input's copy at its time position |
//! | root and group `.zgroup`/`.zattrs` | from the first input that has them |
//!
//! # Checks (errors name the input and the array)
//!
//! For concatenated arrays every input must agree on dtype, fill_value,
//! compressor, filters, order, `_ARRAY_DIMENSIONS`, shape and chunks of the
//! other dimensions; its extent along the concat dim must equal its number
//! of coordinate values. For arrays taken from the first input, shape and
//! dtype must agree (this catches mixing two models or grids). Each input's
//! coordinate values must be strictly increasing and must occupy
//! consecutive positions of the combined sorted coordinate (otherwise
//! renumbered chunks would land on the wrong times; MZZ silently produces
//! wrong data there).
//!
//! # Chunks along the concat dimension
//!
//! The output chunk size along the concat dim is the inputs' (it must be
//! the same for every input; 1 for netCDF record variables). An input's
//! first value must sit at a multiple of it, and only an input ending at the
//! end of the combined axis may end in a partial chunk.
//!
//! netCDF-C gives 1-D record variables a chunk much longer than a one-record
//! file (`Itime`: shape `[1]`, chunks `[1024]`). MZZ keeps chunks `[1024]`,
//! so every input maps to chunk 0 and the last one overwrites it: all but
//! one time read garbage. Here such an input chunk (one chunk along the
//! concat axis, longer than the input's extent) is **trimmed**: when the
//! array is uncompressed, unfiltered, C-ordered and every chunk dimension
//! before the concat axis is 1, the valid values are the first bytes of the
//! chunk, so the reference's length is cut to them and the output chunk along
//! the axis becomes the input's extent. Otherwise it is an error.
//!
//! # Duplicate coordinate values
//!
//! MZZ collects values in a set (one output position per value) and writes
//! chunk references input by input into one dict, so for a time present in
//! several inputs the **later input's chunks win** (verified against
//! kerchunk 0.2.7 in `tests/python/combine_check.py`). [`Duplicates::LastWins`]
//! (default) matches that, but per position: all arrays at that time come
//! from the same input, even where the winner lacks a chunk (MZZ would then
//! mix in the earlier input's chunk). [`Duplicates::FirstWins`] is the
//! opposite. The FMRC helpers order inputs so that the preferred member is
//! the only one per time anyway.
//!
//! # Remote coordinate chunks
//!
//! kerchunk only inlines chunks under 500 bytes, and the netCDF default chunk
//! of a 1-D record coordinate is 4 KiB, so `ocean_time/0` of a real OFS
//! translation is a `[url, offset, 4096]` reference. [`combine_fetching`]
//! fetches those through a [`Resolver`] (only the bytes holding values);
//! [`coordinate_ranges`] + [`combine_with`] is the same in two explicit
//! steps; [`combine`] works without I/O when every coordinate chunk is inline.
//! With a resolver, remote chunk references of concatenated arrays shorter
//! than `inline_threshold` are fetched and inlined, as MZZ does.

mod concat;
mod coord;
mod fetch;
mod input;
mod load;
mod slice;

use std::collections::{BTreeMap, HashSet};

use crate::json::Json;
use crate::refs::{Ref, RefSet};

pub use coord::coordinate_ranges;
pub use fetch::{
    FetchRange, Fetched, Resolver, SourceCache, UrlResolver, combine_fetching, fetch_all,
};
pub use load::{parse_inputs, read_inputs};
pub use slice::{
    GraftEdits, concat_arrays, concat_positions, graft, graft_edits, position, slice_concat,
    slice_concat_owned,
};

use concat::{Array, Combine, Mode, Output};
use coord::{CoordValues, Timeline};
use input::{Input, Memo, index_input, split_key};

/// What to do with arrays that have no concat dimension and are neither
/// coordinates nor listed in `identical_dims`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StaticVars {
    /// Take them from the first input (they do not vary within a run).
    #[default]
    First,
    /// MZZ: add a leading concat axis (chunk 1) and place each input's copy
    /// at its first time position.
    Stack,
}

/// Which input supplies a time position present in several inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Duplicates {
    /// The later input in `inputs` order (MZZ's effective behaviour).
    #[default]
    LastWins,
    FirstWins,
}

#[derive(Debug, Clone)]
pub struct CombineOptions {
    /// Dimension (and coordinate array) to concatenate along.
    pub concat_dim: String,
    /// Arrays copied from the first input without concatenation.
    pub identical_dims: Vec<String>,
    /// With a resolver: remote chunk references of concatenated arrays
    /// shorter than this many bytes are fetched and inlined (MZZ: 500).
    /// 0 disables it. The concat coordinate is always written inline.
    pub inline_threshold: u64,
    pub static_vars: StaticVars,
    pub duplicates: Duplicates,
}

impl CombineOptions {
    pub fn new(concat_dim: impl Into<String>) -> Self {
        CombineOptions {
            concat_dim: concat_dim.into(),
            identical_dims: Vec::new(),
            inline_threshold: 500,
            static_vars: StaticVars::default(),
            duplicates: Duplicates::default(),
        }
    }

    /// The original OFS pipeline's settings for ROMS (`ocean_time`, grid
    /// coordinates identical).
    pub fn roms() -> Self {
        let mut o = Self::new("ocean_time");
        o.identical_dims = [
            "eta_rho", "xi_rho", "s_rho", "eta_psi", "xi_psi", "s_w", "eta_u", "xi_u", "eta_v",
            "xi_v", "lat_rho", "lat_psi", "lat_u", "lat_v", "lon_rho", "lon_psi", "lon_u", "lon_v",
        ]
        .map(String::from)
        .to_vec();
        o
    }

    /// The `ingest_tools` settings for FVCOM (`time`).
    pub fn fvcom() -> Self {
        let mut o = Self::new("time");
        o.identical_dims = [
            "lon", "lat", "lonc", "latc", "siglay", "siglev", "nele", "node",
        ]
        .map(String::from)
        .to_vec();
        o
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CombineError {
    #[error("no inputs to combine")]
    NoInputs,
    #[error("{input}: {key}: cannot parse: {msg}")]
    Parse {
        input: String,
        key: String,
        msg: String,
    },
    #[error("{input}: no concat coordinate array {dim:?}")]
    NoCoordinate { input: String, dim: String },
    #[error("{input}: coordinate {var}: {msg}")]
    Coordinate {
        input: String,
        var: String,
        msg: String,
    },
    #[error(
        "{input}: {var}: {what} differs from the first input: expected {expected}, found {found}"
    )]
    Inconsistent {
        input: String,
        var: String,
        what: String,
        expected: String,
        found: String,
    },
    #[error("{input}: {var}: {msg}")]
    Unsupported {
        input: String,
        var: String,
        msg: String,
    },
    #[error("{input}: coordinate chunk {key} is a remote reference ({url}); use combine_fetching")]
    NeedsFetch {
        input: String,
        key: String,
        url: String,
    },
    #[error("fetching {url}: {error}")]
    Fetch {
        url: String,
        error: hdf5_lite::SourceError,
    },
    #[error("{input}: {msg}")]
    Read { input: String, msg: String },
}

/// Result of [`combine_with`]: the references plus the keys of remote
/// chunk references shorter than `inline_threshold` (MZZ inlines those).
#[derive(Debug, Clone, Default)]
pub struct Combined {
    pub refs: RefSet,
    pub inline_candidates: Vec<String>,
}

/// Combine without any I/O. Fails with [`CombineError::NeedsFetch`] when a
/// coordinate chunk is a remote reference; small remote chunks stay remote.
pub fn combine(inputs: &[(String, RefSet)], opts: &CombineOptions) -> Result<RefSet, CombineError> {
    Ok(combine_with(inputs, opts, &Fetched::new())?.refs)
}

/// Combine with coordinate bytes already fetched (see [`coordinate_ranges`]).
pub fn combine_with(
    inputs: &[(String, RefSet)],
    opts: &CombineOptions,
    fetched: &Fetched,
) -> Result<Combined, CombineError> {
    if inputs.is_empty() {
        return Err(CombineError::NoInputs);
    }
    let dim = opts.concat_dim.as_str();
    // Sequential: indexing on scoped threads (one memo per share) was
    // measured slower here (allocation-bound, and the memo is shared).
    let mut memo = Memo::default();
    let idx: Vec<Input<'_>> = inputs
        .iter()
        .map(|(n, s)| index_input(n, s, &mut memo))
        .collect::<Result<_, _>>()?;
    let coords: Vec<CoordValues> = idx
        .iter()
        .map(|i| coord::coord_values(i, dim, fetched))
        .collect::<Result<_, _>>()?;
    coord::check_types(&idx, &coords, dim)?;
    // Work in time order, so "the first input" (static arrays, attributes)
    // is the earliest one whatever order the caller listed them in: the
    // pipeline's aggregates must not depend on S3 listing or delivery order.
    // The sort is stable, so inputs with equal times keep their order and
    // `Duplicates` keeps its meaning.
    let mut paired: Vec<(Input<'_>, CoordValues)> = idx.into_iter().zip(coords).collect();
    paired.sort_by_key(|(_, c)| c.values.first().map(|v| v.0));
    let (idx, coords): (Vec<Input<'_>>, Vec<CoordValues>) = paired.into_iter().unzip();
    let timeline = Timeline::build(&idx, &coords, dim, opts.duplicates)?;
    let Some(first) = idx.first() else {
        return Err(CombineError::NoInputs);
    };

    let mut out = Output::default();
    write_coordinate(first, &timeline, dim, &mut out.refs);

    // groups: root and nested .zgroup/.zattrs from the first input having them
    let arrays_anywhere: HashSet<&str> =
        idx.iter().flat_map(|i| i.arrays.keys().copied()).collect();
    for inp in &idx {
        for &(key, prefix, r) in &inp.group_meta {
            let is_group_meta = split_key(key).1 == ".zgroup" || !arrays_anywhere.contains(prefix);
            if is_group_meta && !out.refs.refs.contains_key(key) {
                out.refs.insert(key, r.clone());
            }
        }
    }

    // classify arrays (by the first input having each) and write them
    let first_dims: HashSet<&str> = first
        .arrays
        .values()
        .flat_map(|a| a.dims.iter().flat_map(|d| d.iter()).map(String::as_str))
        .collect();
    let identical: HashSet<&str> = opts.identical_dims.iter().map(String::as_str).collect();
    let mut names: Vec<&str> = arrays_anywhere
        .iter()
        .copied()
        .filter(|n| *n != dim)
        .collect();
    names.sort_unstable();
    let ctx = Combine {
        inputs: &idx,
        coords: &coords,
        timeline: &timeline,
        opts,
    };
    let mut holders = Vec::with_capacity(idx.len());
    for name in names {
        holders.clear();
        holders.extend(
            idx.iter()
                .enumerate()
                .filter(|(_, inp)| inp.arrays.contains_key(name))
                .map(|(i, _)| i),
        );
        let Some(reference) = holders
            .first()
            .and_then(|&h| idx.get(h))
            .and_then(|inp| inp.arrays.get(name))
        else {
            continue;
        };
        let concat_axis = reference
            .dims
            .as_ref()
            .and_then(|d| d.iter().position(|x| x == dim));
        let mode = if identical.contains(name) || first_dims.contains(name) {
            Mode::First
        } else if let Some(a) = concat_axis {
            Mode::Concat(a)
        } else if opts.static_vars == StaticVars::Stack {
            Mode::Stack
        } else {
            Mode::First
        };
        ctx.write(
            &Array {
                name,
                holders: &holders,
                mode,
            },
            &mut out,
        )?;
    }
    Ok(Combined {
        refs: out.refs,
        inline_candidates: out.inline_candidates,
    })
}

/// The concat coordinate: every distinct value, sorted, inline as one
/// uncompressed little-endian chunk; attributes of the first input.
fn write_coordinate(first: &Input<'_>, timeline: &Timeline, dim: &str, out: &mut RefSet) {
    let ty = timeline.ty;
    let total = timeline.total;
    let fill = match first.arrays.get(dim) {
        Some(src) if ty.kind == coord::NumKind::Float => {
            src.meta.fill_value.clone().unwrap_or(Json::Null)
        }
        _ => Json::Null,
    };
    let zarray = crate::json::object([
        ("chunks", Json::Array(vec![Json::UInt(total)])),
        ("compressor", Json::Null),
        ("dtype", Json::Str(ty.native())),
        ("fill_value", fill),
        ("filters", Json::Null),
        ("order", Json::from("C")),
        ("shape", Json::Array(vec![Json::UInt(total)])),
        ("zarr_format", Json::UInt(2)),
    ]);
    let mut attrs = match first.set.get_json(&format!("{dim}/.zattrs")) {
        Some(Ok(Json::Object(m))) => m,
        _ => BTreeMap::new(),
    };
    attrs.insert(
        "_ARRAY_DIMENSIONS".into(),
        Json::Array(vec![Json::from(dim)]),
    );
    out.insert_json(format!("{dim}/.zarray"), &zarray);
    out.insert_json(format!("{dim}/.zattrs"), &Json::Object(attrs));
    out.insert(format!("{dim}/0"), Ref::inline(&timeline.bytes()));
}

#[cfg(test)]
mod tests;
