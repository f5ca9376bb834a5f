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
//! fetches those through a [`Fetcher`] (only the bytes holding values);
//! [`coordinate_ranges`] + [`combine_with`] is the same in two explicit
//! steps; [`combine`] works without I/O when every coordinate chunk is inline.
//! With a fetcher, remote chunk references of concatenated arrays shorter
//! than `inline_threshold` are fetched and inlined, as MZZ does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read as _;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hdf5_lite::source::BoxFuture;

use crate::json::Json;
use crate::refs::{Ref, RefSet};

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
    /// With a fetcher: remote chunk references of concatenated arrays
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
    #[error("fetching {url}: {msg}")]
    Fetch { url: String, msg: String },
}

/// One byte range to fetch.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FetchRange {
    pub url: String,
    pub offset: u64,
    pub length: u64,
}

/// Bytes fetched for [`FetchRange`]s.
pub type Fetched = HashMap<FetchRange, Bytes>;

/// Reads byte ranges of the objects chunk references point to.
pub trait Fetcher: Send + Sync {
    /// Read `ranges` of `url`; one result per range, in order. A short
    /// result is treated as an error by the caller.
    fn fetch<'a>(
        &'a self,
        url: &'a str,
        ranges: &'a [Range<u64>],
    ) -> BoxFuture<'a, Result<Vec<Bytes>, String>>;
}

/// A [`Fetcher`] over `hdf5_lite::open_url` (local paths, `file://`, and
/// `http(s)://`/`s3://` when hdf5-lite is built with those features), one
/// source per URL, kept open for the life of the fetcher.
#[derive(Default)]
pub struct UrlFetcher {
    pub options: hdf5_lite::SourceOptions,
    sources: Mutex<HashMap<String, Arc<dyn hdf5_lite::RangeSource>>>,
}

impl UrlFetcher {
    pub fn new(options: hdf5_lite::SourceOptions) -> Self {
        UrlFetcher {
            options,
            sources: Mutex::default(),
        }
    }

    /// Use `source` for `url` instead of opening it.
    pub fn insert(&self, url: impl Into<String>, source: Arc<dyn hdf5_lite::RangeSource>) {
        if let Ok(mut m) = self.sources.lock() {
            m.insert(url.into(), source);
        }
    }
}

impl Fetcher for UrlFetcher {
    fn fetch<'a>(
        &'a self,
        url: &'a str,
        ranges: &'a [Range<u64>],
    ) -> BoxFuture<'a, Result<Vec<Bytes>, String>> {
        Box::pin(async move {
            let cached = self
                .sources
                .lock()
                .map_err(|e| e.to_string())?
                .get(url)
                .cloned();
            let src = match cached {
                Some(s) => s,
                None => {
                    let s = hdf5_lite::open_url(url, &self.options)
                        .await
                        .map_err(|e| e.to_string())?;
                    self.insert(url, s.clone());
                    s
                }
            };
            src.get_ranges(ranges).await.map_err(|e| e.to_string())
        })
    }
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

/// Combine, fetching remote coordinate chunks (and inlining small remote
/// chunks) through `fetcher`. One `fetch` call per URL, up to 32 at once.
pub async fn combine_fetching(
    inputs: &[(String, RefSet)],
    opts: &CombineOptions,
    fetcher: &dyn Fetcher,
) -> Result<RefSet, CombineError> {
    let wanted = coordinate_ranges(inputs, opts)?;
    let fetched = fetch_all(fetcher, wanted).await?;
    let mut out = combine_with(inputs, opts, &fetched)?;
    if !out.inline_candidates.is_empty() {
        let mut wanted = Vec::new();
        for k in &out.inline_candidates {
            if let Some(Ref::Range {
                url,
                offset,
                length,
            }) = out.refs.get(k)
            {
                wanted.push(FetchRange {
                    url: url.clone(),
                    offset: *offset,
                    length: *length,
                });
            }
        }
        let small = fetch_all(fetcher, wanted).await?;
        for k in std::mem::take(&mut out.inline_candidates) {
            let Some(Ref::Range {
                url,
                offset,
                length,
            }) = out.refs.get(&k)
            else {
                continue;
            };
            let fr = FetchRange {
                url: url.clone(),
                offset: *offset,
                length: *length,
            };
            if let Some(b) = small.get(&fr) {
                out.refs.insert(k, Ref::inline(b));
            }
        }
    }
    Ok(out.refs)
}

/// Fetch every range (grouped per URL, up to 32 URLs concurrently).
pub async fn fetch_all(
    fetcher: &dyn Fetcher,
    wanted: Vec<FetchRange>,
) -> Result<Fetched, CombineError> {
    let mut per_url: BTreeMap<String, Vec<Range<u64>>> = BTreeMap::new();
    for w in wanted {
        per_url
            .entry(w.url)
            .or_default()
            .push(w.offset..w.offset + w.length);
    }
    let jobs: Vec<(String, Vec<Range<u64>>)> = per_url
        .into_iter()
        .map(|(u, mut r)| {
            r.sort_by_key(|x| (x.start, x.end));
            r.dedup();
            (u, r)
        })
        .collect();
    let mut out = Fetched::new();
    for batch in jobs.chunks(32) {
        let futs: Vec<_> = batch
            .iter()
            .map(|(url, ranges)| fetcher.fetch(url, ranges))
            .collect();
        let results = join_all(futs).await;
        for ((url, ranges), res) in batch.iter().zip(results) {
            let data = res.map_err(|msg| CombineError::Fetch {
                url: url.clone(),
                msg,
            })?;
            if data.len() != ranges.len() {
                return Err(CombineError::Fetch {
                    url: url.clone(),
                    msg: format!("{} results for {} ranges", data.len(), ranges.len()),
                });
            }
            for (r, b) in ranges.iter().zip(data) {
                if (b.len() as u64) < r.end - r.start {
                    return Err(CombineError::Fetch {
                        url: url.clone(),
                        msg: format!(
                            "short read at {}: wanted {} bytes, got {}",
                            r.start,
                            r.end - r.start,
                            b.len()
                        ),
                    });
                }
                out.insert(
                    FetchRange {
                        url: url.clone(),
                        offset: r.start,
                        length: r.end - r.start,
                    },
                    b,
                );
            }
        }
    }
    Ok(out)
}

async fn join_all<'a, T>(mut futs: Vec<BoxFuture<'a, T>>) -> Vec<T> {
    use std::task::Poll;
    let mut done: Vec<Option<T>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futs.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    done.into_iter().flatten().collect()
}

// ---------------------------------------------------------------------------
// Indexing the inputs
// ---------------------------------------------------------------------------

struct ArrayIn<'a> {
    zarray: BTreeMap<String, Json>,
    shape: Vec<u64>,
    chunks: Vec<u64>,
    dims: Option<Vec<String>>,
    /// `(chunk index, key, ref)`
    chunk_refs: Vec<(Vec<u64>, &'a str, &'a Ref)>,
}

struct Input<'a> {
    name: &'a str,
    set: &'a RefSet,
    arrays: HashMap<&'a str, ArrayIn<'a>>,
}

fn parse_err(input: &str, key: &str, msg: impl Into<String>) -> CombineError {
    CombineError::Parse {
        input: input.to_string(),
        key: key.to_string(),
        msg: msg.into(),
    }
}

fn u64_list(v: Option<&Json>) -> Option<Vec<u64>> {
    match v? {
        Json::Array(a) => a.iter().map(Json::as_u64).collect(),
        _ => None,
    }
}

fn split_key(key: &str) -> (&str, &str) {
    key.rsplit_once('/').unwrap_or(("", key))
}

fn index_input<'a>(name: &'a str, set: &'a RefSet) -> Result<Input<'a>, CombineError> {
    let mut arrays: HashMap<&'a str, ArrayIn<'a>> = HashMap::new();
    for (key, r) in &set.refs {
        let (prefix, leaf) = split_key(key);
        if leaf != ".zarray" {
            continue;
        }
        if prefix.is_empty() {
            return Err(parse_err(name, key, "a root-level array is not supported"));
        }
        let doc = r
            .inline_bytes()
            .ok_or_else(|| parse_err(name, key, "metadata is not inline"))?;
        let doc = std::str::from_utf8(&doc)
            .map_err(|e| e.to_string())
            .and_then(Json::parse)
            .map_err(|e| parse_err(name, key, e))?;
        let Json::Object(zarray) = doc else {
            return Err(parse_err(name, key, "not a JSON object"));
        };
        let shape =
            u64_list(zarray.get("shape")).ok_or_else(|| parse_err(name, key, "bad shape"))?;
        let chunks =
            u64_list(zarray.get("chunks")).ok_or_else(|| parse_err(name, key, "bad chunks"))?;
        if chunks.len() != shape.len() || chunks.contains(&0) {
            return Err(parse_err(name, key, "chunks do not match shape"));
        }
        if let Some(sep) = zarray.get("dimension_separator").and_then(Json::as_str)
            && sep != "."
        {
            return Err(parse_err(
                name,
                key,
                format!("dimension_separator {sep:?} is not supported"),
            ));
        }
        let zattrs_key = format!("{prefix}/.zattrs");
        let dims = match set.get_json(&zattrs_key) {
            None => None,
            Some(Err(e)) => return Err(parse_err(name, &zattrs_key, e)),
            Some(Ok(a)) => match a.get("_ARRAY_DIMENSIONS") {
                None => None,
                Some(Json::Array(d)) => Some(
                    d.iter()
                        .map(|x| x.as_str().map(String::from))
                        .collect::<Option<Vec<_>>>()
                        .filter(|d| d.len() == shape.len())
                        .ok_or_else(|| parse_err(name, &zattrs_key, "bad _ARRAY_DIMENSIONS"))?,
                ),
                Some(_) => return Err(parse_err(name, &zattrs_key, "bad _ARRAY_DIMENSIONS")),
            },
        };
        arrays.insert(
            prefix,
            ArrayIn {
                zarray,
                shape,
                chunks,
                dims,
                chunk_refs: Vec::new(),
            },
        );
    }
    for (key, r) in &set.refs {
        let (prefix, leaf) = split_key(key);
        if leaf.starts_with(".z") {
            continue;
        }
        let Some(a) = arrays.get_mut(prefix) else {
            continue;
        };
        let idx: Vec<u64> = if a.shape.is_empty() {
            if leaf != "0" {
                return Err(parse_err(name, key, "bad chunk key of a 0-d array"));
            }
            Vec::new()
        } else {
            leaf.split('.')
                .map(|p| p.parse::<u64>().ok())
                .collect::<Option<Vec<_>>>()
                .filter(|v| v.len() == a.shape.len())
                .ok_or_else(|| parse_err(name, key, "bad chunk key"))?
        };
        a.chunk_refs.push((idx, key.as_str(), r));
    }
    Ok(Input { name, set, arrays })
}

// ---------------------------------------------------------------------------
// Coordinate values
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumKind {
    Int,
    UInt,
    Float,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NumType {
    kind: NumKind,
    size: usize,
    big: bool,
}

impl NumType {
    fn parse(dtype: &Json) -> Option<NumType> {
        let s = dtype.as_str()?;
        let mut c = s.chars();
        let order = c.next()?;
        let kind = match c.next()? {
            'i' => NumKind::Int,
            'u' => NumKind::UInt,
            'f' => NumKind::Float,
            _ => return None,
        };
        let size: usize = c.as_str().parse().ok()?;
        let ok = match kind {
            NumKind::Float => matches!(size, 4 | 8),
            _ => matches!(size, 1 | 2 | 4 | 8),
        };
        if !ok {
            return None;
        }
        Some(NumType {
            kind,
            size,
            big: order == '>',
        })
    }

    /// numpy's native (little-endian) spelling, what MZZ's `np.array` gives.
    fn native(&self) -> String {
        let k = match self.kind {
            NumKind::Int => 'i',
            NumKind::UInt => 'u',
            NumKind::Float => 'f',
        };
        let o = if self.size == 1 { '|' } else { '<' };
        format!("{o}{k}{}", self.size)
    }

    /// `(sort key, little-endian bytes)`, or None for NaN.
    fn decode(&self, raw: &[u8]) -> Option<(i128, [u8; 8])> {
        let mut le = [0u8; 8];
        le[..self.size].copy_from_slice(raw.get(..self.size)?);
        if self.big {
            le[..self.size].reverse();
        }
        let key = match (self.kind, self.size) {
            (NumKind::Int, 1) => i128::from(le[0] as i8),
            (NumKind::Int, 2) => i128::from(i16::from_le_bytes([le[0], le[1]])),
            (NumKind::Int, 4) => i128::from(i32::from_le_bytes([le[0], le[1], le[2], le[3]])),
            (NumKind::Int, _) => i128::from(i64::from_le_bytes(le)),
            (NumKind::UInt, _) => i128::from(u64::from_le_bytes(le)),
            (NumKind::Float, s) => {
                let mut f = if s == 4 {
                    f64::from(f32::from_le_bytes([le[0], le[1], le[2], le[3]]))
                } else {
                    f64::from_le_bytes(le)
                };
                if f.is_nan() {
                    return None;
                }
                if f == 0.0 {
                    // numpy's set treats -0.0 == 0.0
                    f = 0.0;
                    le = [0; 8];
                }
                let b = f.to_bits() as i64;
                i128::from(if b < 0 { b ^ i64::MAX } else { b })
            }
        };
        Some((key, le))
    }
}

fn decode_codecs(arr: &ArrayIn<'_>, mut data: Vec<u8>, elem: usize) -> Result<Vec<u8>, String> {
    let mut codecs: Vec<&Json> = Vec::new();
    match arr.zarray.get("filters") {
        None | Some(Json::Null) => {}
        Some(Json::Array(f)) => codecs.extend(f.iter()),
        Some(other) => return Err(format!("bad filters {}", other.to_compact())),
    }
    match arr.zarray.get("compressor") {
        None | Some(Json::Null) => {}
        Some(c) => codecs.push(c),
    }
    for c in codecs.iter().rev() {
        data = match c.get("id").and_then(Json::as_str) {
            Some("zlib") | Some("gzip") => {
                let mut out = Vec::new();
                let r = if c.get("id").and_then(Json::as_str) == Some("gzip") {
                    flate2::read::GzDecoder::new(data.as_slice()).read_to_end(&mut out)
                } else {
                    flate2::read::ZlibDecoder::new(data.as_slice()).read_to_end(&mut out)
                };
                r.map_err(|e| format!("inflate failed: {e}"))?;
                out
            }
            Some("shuffle") => {
                let es = c
                    .get("elementsize")
                    .and_then(Json::as_u64)
                    .map(|x| x as usize)
                    .unwrap_or(elem);
                hdf5_lite::data::unshuffle(&data, es)
            }
            _ => return Err(format!("codec {} is not supported", c.to_compact())),
        };
    }
    Ok(data)
}

fn has_codecs(z: &BTreeMap<String, Json>) -> bool {
    let set = |k: &str| match z.get(k) {
        None | Some(Json::Null) => false,
        Some(Json::Array(a)) => !a.is_empty(),
        Some(_) => true,
    };
    set("filters") || set("compressor")
}

/// The coordinate array of one input: type, and for each chunk the
/// number of leading bytes that hold values (the rest is padding).
fn coord_layout<'i>(
    inp: &'i Input<'_>,
    dim: &str,
) -> Result<(&'i ArrayIn<'i>, NumType, u64), CombineError> {
    let arr = inp
        .arrays
        .get(dim)
        .ok_or_else(|| CombineError::NoCoordinate {
            input: inp.name.to_string(),
            dim: dim.to_string(),
        })?;
    let cerr = |msg: String| CombineError::Coordinate {
        input: inp.name.to_string(),
        var: dim.to_string(),
        msg,
    };
    if arr.shape.len() != 1 {
        return Err(cerr(format!("is {}-d, not 1-d", arr.shape.len())));
    }
    let dtype = arr.zarray.get("dtype").cloned().unwrap_or(Json::Null);
    let nt = NumType::parse(&dtype).ok_or_else(|| {
        cerr(format!(
            "dtype {} is not a plain number type",
            dtype.to_compact()
        ))
    })?;
    Ok((arr, nt, arr.chunks[0]))
}

/// Ranges [`combine_with`] needs: remote chunks of each input's concat
/// coordinate (only the bytes that hold values when uncompressed).
pub fn coordinate_ranges(
    inputs: &[(String, RefSet)],
    opts: &CombineOptions,
) -> Result<Vec<FetchRange>, CombineError> {
    let mut out = Vec::new();
    for (name, set) in inputs {
        // only the coordinate array is needed here; index cheaply
        let zkey = format!("{}/.zarray", opts.concat_dim);
        let Some(Ok(Json::Object(zarray))) = set.get_json(&zkey) else {
            return Err(CombineError::NoCoordinate {
                input: name.clone(),
                dim: opts.concat_dim.clone(),
            });
        };
        let shape = u64_list(zarray.get("shape")).unwrap_or_default();
        let chunks = u64_list(zarray.get("chunks")).unwrap_or_default();
        let (Some(&n), Some(&c)) = (shape.first(), chunks.first()) else {
            continue;
        };
        if c == 0 {
            continue;
        }
        let elem = zarray
            .get("dtype")
            .and_then(NumType::parse)
            .map_or(0, |t| t.size as u64);
        let raw = !has_codecs(&zarray);
        for j in 0..n.div_ceil(c) {
            let key = format!("{}/{j}", opts.concat_dim);
            if let Some(Ref::Range {
                url,
                offset,
                length,
            }) = set.get(&key)
            {
                let need = if raw && elem > 0 {
                    (*length).min(c.min(n - j * c) * elem)
                } else {
                    *length
                };
                out.push(FetchRange {
                    url: url.clone(),
                    offset: *offset,
                    length: need,
                });
            }
        }
    }
    Ok(out)
}

struct CoordValues {
    ty: NumType,
    /// `(sort key, LE bytes)` per value, in file order.
    values: Vec<(i128, [u8; 8])>,
}

fn coord_values(
    inp: &Input<'_>,
    dim: &str,
    fetched: &Fetched,
) -> Result<CoordValues, CombineError> {
    let (arr, ty, c) = coord_layout(inp, dim)?;
    let cerr = |msg: String| CombineError::Coordinate {
        input: inp.name.to_string(),
        var: dim.to_string(),
        msg,
    };
    let n = arr.shape[0];
    let raw = !has_codecs(&arr.zarray);
    let mut values = Vec::with_capacity(n as usize);
    for j in 0..n.div_ceil(c) {
        let key = format!("{dim}/{j}");
        let take = c.min(n - j * c);
        let need = take * ty.size as u64;
        let bytes: Vec<u8> = match inp.set.get(&key) {
            None => return Err(cerr(format!("chunk {key} is missing"))),
            Some(Ref::Text(s)) => s.as_bytes().to_vec(),
            Some(Ref::Binary(b)) => b.clone(),
            Some(Ref::Url(u)) => {
                return Err(cerr(format!("chunk {key} references a whole object ({u})")));
            }
            Some(Ref::Range {
                url,
                offset,
                length,
            }) => {
                let want = FetchRange {
                    url: url.clone(),
                    offset: *offset,
                    length: if raw { (*length).min(need) } else { *length },
                };
                match fetched.get(&want) {
                    Some(b) => b.to_vec(),
                    None => {
                        return Err(CombineError::NeedsFetch {
                            input: inp.name.to_string(),
                            key,
                            url: url.clone(),
                        });
                    }
                }
            }
        };
        let bytes = if raw {
            bytes
        } else {
            decode_codecs(arr, bytes, ty.size).map_err(|e| cerr(format!("{key}: {e}")))?
        };
        if (bytes.len() as u64) < need {
            return Err(cerr(format!(
                "chunk {key} holds {} bytes, {need} needed",
                bytes.len()
            )));
        }
        for e in bytes[..need as usize].chunks_exact(ty.size) {
            values.push(
                ty.decode(e)
                    .ok_or_else(|| cerr("NaN coordinate value".to_string()))?,
            );
        }
    }
    if values.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(cerr("values are not strictly increasing".to_string()));
    }
    Ok(CoordValues { ty, values })
}

// ---------------------------------------------------------------------------
// The combine
// ---------------------------------------------------------------------------

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
    let idx: Vec<Input<'_>> = inputs
        .iter()
        .map(|(n, s)| index_input(n, s))
        .collect::<Result<_, _>>()?;

    // --- coordinate values, positions, owners
    let coords: Vec<CoordValues> = idx
        .iter()
        .map(|i| coord_values(i, dim, fetched))
        .collect::<Result<_, _>>()?;

    let ty = coords[0].ty;
    for (i, c) in idx.iter().zip(&coords).skip(1) {
        if c.ty != ty {
            return Err(CombineError::Inconsistent {
                input: i.name.to_string(),
                var: dim.to_string(),
                what: "dtype".into(),
                expected: ty.native(),
                found: c.ty.native(),
            });
        }
    }
    // Work in time order, so "the first input" (static arrays, attributes)
    // is the earliest one whatever order the caller listed them in: the
    // pipeline's aggregates must not depend on S3 listing or delivery order.
    // The sort is stable, so inputs with equal times keep their order and
    // `Duplicates` keeps its meaning.
    let mut paired: Vec<(Input<'_>, CoordValues)> = idx.into_iter().zip(coords).collect();
    paired.sort_by_key(|(_, c)| c.values.first().map(|v| v.0));
    let (idx, coords): (Vec<Input<'_>>, Vec<CoordValues>) = paired.into_iter().unzip();
    let mut all: Vec<(i128, [u8; 8])> = coords
        .iter()
        .flat_map(|c| c.values.iter().copied())
        .collect();
    all.sort_unstable_by_key(|v| v.0);
    all.dedup_by_key(|v| v.0);
    if all.is_empty() {
        return Err(CombineError::Coordinate {
            input: idx[0].name.to_string(),
            var: dim.to_string(),
            msg: "no coordinate values in any input".into(),
        });
    }
    let total = all.len() as u64;
    let mut pos = Vec::with_capacity(idx.len());
    for (inp, c) in idx.iter().zip(&coords) {
        let Some(first) = c.values.first() else {
            pos.push(None);
            continue;
        };
        let p = all.partition_point(|v| v.0 < first.0);
        for (j, v) in c.values.iter().enumerate() {
            if all.get(p + j).map(|a| a.0) != Some(v.0) {
                return Err(CombineError::Coordinate {
                    input: inp.name.to_string(),
                    var: dim.to_string(),
                    msg: "values are interleaved with another input's (not a contiguous block of the combined coordinate)".into(),
                });
            }
        }
        pos.push(Some(p as u64));
    }
    let mut owner: Vec<Option<usize>> = vec![None; all.len()];
    for (i, (p, c)) in pos.iter().zip(&coords).enumerate() {
        let Some(p) = *p else { continue };
        for slot in &mut owner[p as usize..p as usize + c.values.len()] {
            if opts.duplicates == Duplicates::LastWins || slot.is_none() {
                *slot = Some(i);
            }
        }
    }

    let mut out = RefSet::new();
    let mut inline_candidates = Vec::new();

    // --- the coordinate
    {
        let first = &idx[0];
        let src = &first.arrays[dim];
        let mut bytes = Vec::with_capacity(all.len() * ty.size);
        for (_, le) in &all {
            bytes.extend_from_slice(&le[..ty.size]);
        }
        let fill = if ty.kind == NumKind::Float {
            src.zarray.get("fill_value").cloned().unwrap_or(Json::Null)
        } else {
            Json::Null
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
        out.insert(format!("{dim}/0"), Ref::inline(&bytes));
    }

    // --- groups: root and nested .zgroup/.zattrs from the first input having them
    let arrays_anywhere: HashSet<&str> =
        idx.iter().flat_map(|i| i.arrays.keys().copied()).collect();
    for inp in &idx {
        for (key, r) in &inp.set.refs {
            let (prefix, leaf) = split_key(key);
            let is_group_meta =
                leaf == ".zgroup" || (leaf == ".zattrs" && !arrays_anywhere.contains(prefix));
            if is_group_meta && !out.refs.contains_key(key.as_str()) {
                out.insert(key.clone(), r.clone());
            }
        }
    }

    // --- classify arrays (by the first input having each)
    let first_dims: HashSet<&str> = idx[0]
        .arrays
        .values()
        .flat_map(|a| a.dims.iter().flatten().map(String::as_str))
        .collect();
    let identical: HashSet<&str> = opts.identical_dims.iter().map(String::as_str).collect();
    let mut names: Vec<&str> = arrays_anywhere
        .iter()
        .copied()
        .filter(|n| *n != dim)
        .collect();
    names.sort_unstable();

    for name in names {
        let holders: Vec<usize> = (0..idx.len())
            .filter(|&i| idx[i].arrays.contains_key(name))
            .collect();
        let Some(&h0) = holders.first() else { continue };
        let reference = &idx[h0].arrays[name];
        let concat_axis = reference
            .dims
            .as_ref()
            .and_then(|d| d.iter().position(|x| x == dim));
        let is_coord = first_dims.contains(name);
        let mode = if identical.contains(name) || is_coord {
            Mode::First
        } else if let Some(a) = concat_axis {
            Mode::Concat(a)
        } else if opts.static_vars == StaticVars::Stack {
            Mode::Stack
        } else {
            Mode::First
        };
        match mode {
            Mode::First => {
                for &i in &holders[1..] {
                    let a = &idx[i].arrays[name];
                    check_same(&idx[i], name, "shape", &reference.shape, &a.shape)?;
                    check_field(&idx[i], name, "dtype", &reference.zarray, &a.zarray)?;
                }
                let inp = &idx[h0];
                for key in [format!("{name}/.zarray"), format!("{name}/.zattrs")] {
                    if let Some(r) = inp.set.get(&key) {
                        out.insert(key, r.clone());
                    }
                }
                for (_, key, r) in &reference.chunk_refs {
                    out.insert(*key, (*r).clone());
                }
            }
            Mode::Concat(_) | Mode::Stack => {
                concat_array(
                    &idx,
                    &holders,
                    name,
                    mode,
                    dim,
                    &pos,
                    &coords,
                    &owner,
                    total,
                    opts,
                    &mut out,
                    &mut inline_candidates,
                )?;
            }
        }
    }
    Ok(Combined {
        refs: out,
        inline_candidates,
    })
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    First,
    Concat(usize),
    Stack,
}

fn show(v: &[u64]) -> String {
    format!("{v:?}")
}

fn check_same(
    inp: &Input<'_>,
    var: &str,
    what: &str,
    expected: &[u64],
    found: &[u64],
) -> Result<(), CombineError> {
    if expected != found {
        return Err(CombineError::Inconsistent {
            input: inp.name.to_string(),
            var: var.to_string(),
            what: what.to_string(),
            expected: show(expected),
            found: show(found),
        });
    }
    Ok(())
}

fn check_field(
    inp: &Input<'_>,
    var: &str,
    field: &str,
    expected: &BTreeMap<String, Json>,
    found: &BTreeMap<String, Json>,
) -> Result<(), CombineError> {
    let e = expected.get(field);
    let f = found.get(field);
    // absent and null mean the same for codecs
    let norm = |j: Option<&Json>| match j {
        None => Json::Null,
        Some(v) => v.clone(),
    };
    if norm(e) != norm(f) {
        return Err(CombineError::Inconsistent {
            input: inp.name.to_string(),
            var: var.to_string(),
            what: field.to_string(),
            expected: norm(e).to_compact(),
            found: norm(f).to_compact(),
        });
    }
    Ok(())
}

/// Bytes per element of a zarr dtype string (`<f4`, `|S26`, `|b1`).
fn itemsize(dtype: Option<&Json>) -> Option<u64> {
    let s = dtype?.as_str()?;
    let k = s.get(1..2)?;
    let n: u64 = s.get(2..)?.parse().ok()?;
    match k {
        "U" => Some(4 * n),
        _ => Some(n),
    }
}

#[allow(clippy::too_many_arguments)]
fn concat_array(
    idx: &[Input<'_>],
    holders: &[usize],
    name: &str,
    mode: Mode,
    dim: &str,
    pos: &[Option<u64>],
    coords: &[CoordValues],
    owner: &[Option<usize>],
    total: u64,
    opts: &CombineOptions,
    out: &mut RefSet,
    inline_candidates: &mut Vec<String>,
) -> Result<(), CombineError> {
    let h0 = holders[0];
    let reference = &idx[h0].arrays[name];
    let rank = reference.shape.len();
    let unsup = |inp: &Input<'_>, msg: String| CombineError::Unsupported {
        input: inp.name.to_string(),
        var: name.to_string(),
        msg,
    };

    // effective chunk along the axis, and trimming, per holder
    let mut out_chunk: Option<u64> = None;
    struct Plan {
        input: usize,
        trim_bytes: Option<u64>,
    }
    let mut plans = Vec::with_capacity(holders.len());
    for &i in holders {
        let inp = &idx[i];
        let a = &inp.arrays[name];
        for f in [
            "dtype",
            "fill_value",
            "compressor",
            "filters",
            "order",
            "zarr_format",
        ] {
            check_field(inp, name, f, &reference.zarray, &a.zarray)?;
        }
        if a.dims != reference.dims {
            return Err(CombineError::Inconsistent {
                input: inp.name.to_string(),
                var: name.to_string(),
                what: "_ARRAY_DIMENSIONS".into(),
                expected: format!("{:?}", reference.dims),
                found: format!("{:?}", a.dims),
            });
        }
        let n_i = coords[i].values.len() as u64;
        let (c_eff, trim_bytes) = match mode {
            Mode::Concat(ax) => {
                let mut s_ref = reference.shape.clone();
                let mut s_a = a.shape.clone();
                s_ref[ax] = 0;
                s_a[ax] = 0;
                check_same(inp, name, "shape (other dims)", &s_ref, &s_a)?;
                let mut c_ref = reference.chunks.clone();
                let mut c_a = a.chunks.clone();
                c_ref[ax] = 0;
                c_a[ax] = 0;
                check_same(inp, name, "chunks (other dims)", &c_ref, &c_a)?;
                if a.shape[ax] != n_i {
                    return Err(unsup(
                        inp,
                        format!(
                            "extent {} along {dim} but the input has {n_i} {dim} values",
                            a.shape[ax]
                        ),
                    ));
                }
                let c = a.chunks[ax];
                if c > n_i && n_i > 0 {
                    // one chunk overhanging the file's extent: trim it
                    let contiguous = a.chunks[..ax].iter().all(|&x| x == 1);
                    let c_order = a.zarray.get("order").and_then(Json::as_str) == Some("C");
                    if has_codecs(&a.zarray) || !contiguous || !c_order {
                        return Err(unsup(
                            inp,
                            format!(
                                "its chunk along {dim} ({c}) is longer than its extent ({n_i}) and cannot be trimmed (compressed, filtered, F order or not the leading chunked axis)"
                            ),
                        ));
                    }
                    let elem = itemsize(a.zarray.get("dtype")).ok_or_else(|| {
                        unsup(inp, "cannot trim a structured dtype chunk".to_string())
                    })?;
                    let row: u64 = a.chunks[ax + 1..].iter().product();
                    (n_i, Some(n_i * row * elem))
                } else {
                    (c, None)
                }
            }
            _ => {
                check_same(inp, name, "shape", &reference.shape, &a.shape)?;
                check_same(inp, name, "chunks", &reference.chunks, &a.chunks)?;
                (1, None)
            }
        };
        match out_chunk {
            None => out_chunk = Some(c_eff),
            Some(c) if c != c_eff => {
                return Err(CombineError::Inconsistent {
                    input: inp.name.to_string(),
                    var: name.to_string(),
                    what: format!("chunk size along {dim}"),
                    expected: c.to_string(),
                    found: c_eff.to_string(),
                });
            }
            _ => {}
        }
        if let (Mode::Concat(_), Some(p)) = (mode, pos[i]) {
            if p % c_eff != 0 {
                return Err(unsup(
                    inp,
                    format!(
                        "its first {dim} value is at position {p}, not a multiple of the chunk size {c_eff}"
                    ),
                ));
            }
            if !n_i.is_multiple_of(c_eff) && p + n_i != total {
                return Err(unsup(
                    inp,
                    format!(
                        "ends in a partial chunk along {dim} but is not the last input in {dim} order"
                    ),
                ));
            }
        }
        plans.push(Plan {
            input: i,
            trim_bytes,
        });
    }
    let big_c = out_chunk.unwrap_or(1);

    // metadata from the first holder
    let mut zarray = reference.zarray.clone();
    let (shape, chunks, dims) = match mode {
        Mode::Concat(ax) => {
            let mut s = reference.shape.clone();
            let mut c = reference.chunks.clone();
            s[ax] = total;
            c[ax] = big_c;
            (s, c, None)
        }
        _ => {
            let mut s = vec![total];
            s.extend(&reference.shape);
            let mut c = vec![1];
            c.extend(&reference.chunks);
            let mut d = vec![dim.to_string()];
            match &reference.dims {
                Some(x) => d.extend(x.iter().cloned()),
                None => d.extend("ikjlm".chars().take(rank).map(String::from)),
            }
            (s, c, Some(d))
        }
    };
    let nums = |v: &[u64]| Json::Array(v.iter().map(|x| Json::UInt(*x)).collect());
    zarray.insert("shape".into(), nums(&shape));
    zarray.insert("chunks".into(), nums(&chunks));
    out.insert_json(format!("{name}/.zarray"), &Json::Object(zarray));
    let zattrs_key = format!("{name}/.zattrs");
    match (dims, idx[h0].set.get_json(&zattrs_key)) {
        (None, _) => {
            if let Some(r) = idx[h0].set.get(&zattrs_key) {
                out.insert(zattrs_key, r.clone());
            }
        }
        (Some(d), attrs) => {
            let mut m = match attrs {
                Some(Ok(Json::Object(m))) => m,
                _ => BTreeMap::new(),
            };
            m.insert(
                "_ARRAY_DIMENSIONS".into(),
                Json::Array(d.into_iter().map(Json::Str).collect()),
            );
            out.insert_json(zattrs_key, &Json::Object(m));
        }
    }

    // chunks
    let mut key = String::with_capacity(name.len() + 16);
    for plan in plans {
        let i = plan.input;
        let inp = &idx[i];
        let Some(p) = pos[i] else { continue };
        let a = &inp.arrays[name];
        for (cidx, _, r) in &a.chunk_refs {
            let (out_pos, out_idx_along) = match mode {
                Mode::Concat(ax) => {
                    let along = p / big_c + cidx[ax];
                    (along * big_c, along)
                }
                _ => (p, p),
            };
            if out_pos >= total || owner.get(out_pos as usize).copied().flatten() != Some(i) {
                continue;
            }
            key.clear();
            key.push_str(name);
            key.push('/');
            let mut parts: Vec<u64> = match mode {
                Mode::Concat(_) => cidx.clone(),
                _ => {
                    let mut v = Vec::with_capacity(rank + 1);
                    v.push(0);
                    v.extend(cidx);
                    v
                }
            };
            let ax = match mode {
                Mode::Concat(ax) => ax,
                _ => 0,
            };
            parts[ax] = out_idx_along;
            for (n, x) in parts.iter().enumerate() {
                if n > 0 {
                    key.push('.');
                }
                key.push_str(&x.to_string());
            }
            let r = match (plan.trim_bytes, r) {
                (None, r) => (*r).clone(),
                (
                    Some(t),
                    Ref::Range {
                        url,
                        offset,
                        length,
                    },
                ) => {
                    if *length < t {
                        return Err(unsup(
                            inp,
                            format!("chunk reference of {length} bytes, {t} expected"),
                        ));
                    }
                    Ref::Range {
                        url: url.clone(),
                        offset: *offset,
                        length: t,
                    }
                }
                (Some(t), Ref::Text(_) | Ref::Binary(_)) => {
                    let b = r.inline_bytes().unwrap_or_default();
                    let b = b.get(..t as usize).ok_or_else(|| {
                        unsup(inp, format!("inline chunk shorter than {t} bytes"))
                    })?;
                    Ref::inline(b)
                }
                (Some(_), Ref::Url(_)) => {
                    return Err(unsup(
                        inp,
                        "cannot trim a whole-object reference".to_string(),
                    ));
                }
            };
            if let Ref::Range { length, .. } = &r
                && opts.inline_threshold > 0
                && *length < opts.inline_threshold
            {
                inline_candidates.push(key.clone());
            }
            out.insert(key.clone(), r);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zarray(shape: &[u64], chunks: &[u64], dtype: &str, fill: &str) -> Ref {
        Ref::Text(format!(
            r#"{{"chunks":{chunks:?},"compressor":null,"dtype":"{dtype}","fill_value":{fill},"filters":null,"order":"C","shape":{shape:?},"zarr_format":2}}"#
        ))
    }
    fn zattrs(dims: &[&str]) -> Ref {
        Ref::Text(format!(r#"{{"_ARRAY_DIMENSIONS":{:?},"units":"x"}}"#, dims))
    }
    fn range(url: &str, offset: u64, length: u64) -> Ref {
        Ref::Range {
            url: url.into(),
            offset,
            length,
        }
    }

    /// A small ROMS-like input: `t` (times, inline, chunk 512), `zeta(t, y)`
    /// chunks `[1, 2]` of shape `[n, 4]`, `h(y)`, `y(y)` coordinate,
    /// `it(t)` int32 with chunk 1024 (overhang), `dt` scalar.
    fn input(url: &str, times: &[f64]) -> RefSet {
        let n = times.len() as u64;
        let mut s = RefSet::new();
        s.insert(".zgroup", Ref::Text(r#"{"zarr_format":2}"#.into()));
        s.insert(".zattrs", Ref::Text(r#"{"title":"x"}"#.into()));
        s.insert("t/.zarray", zarray(&[n], &[512], "<f8", "null"));
        s.insert("t/.zattrs", zattrs(&["t"]));
        let mut b = Vec::new();
        for t in times {
            b.extend_from_slice(&t.to_le_bytes());
        }
        b.resize(512 * 8, 0);
        s.insert("t/0", Ref::Binary(b));
        s.insert("zeta/.zarray", zarray(&[n, 4], &[1, 2], "<f4", "1e37"));
        s.insert("zeta/.zattrs", zattrs(&["t", "y"]));
        for j in 0..n {
            s.insert(format!("zeta/{j}.0"), range(url, 1000 + 100 * j, 8));
            s.insert(format!("zeta/{j}.1"), range(url, 1050 + 100 * j, 800));
        }
        s.insert("h/.zarray", zarray(&[4], &[4], "<f8", "null"));
        s.insert("h/.zattrs", zattrs(&["y"]));
        s.insert("h/0", range(url, 10, 32));
        s.insert("y/.zarray", zarray(&[4], &[4], "<f8", "null"));
        s.insert("y/.zattrs", zattrs(&["y"]));
        s.insert("y/0", range(url, 50, 32));
        s.insert("it/.zarray", zarray(&[n], &[1024], "<i4", "null"));
        s.insert("it/.zattrs", zattrs(&["t"]));
        s.insert("it/0", range(url, 5000, 4096));
        s.insert("dt/.zarray", zarray(&[], &[], "<f8", "0.0"));
        s.insert("dt/.zattrs", zattrs(&[]));
        s.insert("dt/0", Ref::Binary(10f64.to_le_bytes().to_vec()));
        s
    }

    fn named(sets: Vec<(&str, RefSet)>) -> Vec<(String, RefSet)> {
        sets.into_iter().map(|(n, s)| (n.to_string(), s)).collect()
    }

    fn times_of(out: &RefSet) -> Vec<f64> {
        let b = out.get("t/0").and_then(Ref::inline_bytes).unwrap();
        b.chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    fn url_of(out: &RefSet, key: &str) -> String {
        match out.get(key) {
            Some(Ref::Range { url, .. }) => url.clone(),
            other => panic!("{key}: {other:?}"),
        }
    }

    #[test]
    fn concatenates_sorted_and_renumbers() {
        let ins = named(vec![
            ("c", input("u:c", &[30.0])),
            ("a", input("u:a", &[10.0])),
            ("b", input("u:b", &[20.0])),
        ]);
        let out = combine(&ins, &CombineOptions::new("t")).unwrap();
        assert_eq!(times_of(&out), vec![10.0, 20.0, 30.0]);
        assert_eq!(
            out.get("t/.zarray"),
            Some(&Ref::Text(
                r#"{"chunks":[3],"compressor":null,"dtype":"<f8","fill_value":null,"filters":null,"order":"C","shape":[3],"zarr_format":2}"#.into()
            ))
        );
        assert_eq!(
            out.get_json("t/.zattrs").unwrap().unwrap().to_compact(),
            r#"{"_ARRAY_DIMENSIONS":["t"],"units":"x"}"#
        );
        assert_eq!(url_of(&out, "zeta/0.0"), "u:a");
        assert_eq!(url_of(&out, "zeta/1.1"), "u:b");
        assert_eq!(url_of(&out, "zeta/2.0"), "u:c");
        let z = out.get_json("zeta/.zarray").unwrap().unwrap();
        assert_eq!(z.get("shape").unwrap().to_compact(), "[3,4]");
        assert_eq!(z.get("chunks").unwrap().to_compact(), "[1,2]");
        // static and coordinate arrays from the earliest input (not the
        // first listed), unchanged
        assert_eq!(url_of(&out, "h/0"), "u:a");
        assert_eq!(url_of(&out, "y/0"), "u:a");
        assert_eq!(out.get("dt/0"), ins[0].1.get("dt/0"));
        assert_eq!(
            out.get("h/.zarray"),
            ins[0].1.get("h/.zarray"),
            "static .zarray untouched"
        );
        assert!(out.get(".zgroup").is_some());
        assert!(out.get(".zattrs").is_some());
        // overhanging int chunk trimmed to 4 bytes, chunk 1
        assert_eq!(out.get("it/1"), Some(&range("u:b", 5000, 4)));
        let it = out.get_json("it/.zarray").unwrap().unwrap();
        assert_eq!(it.get("chunks").unwrap().to_compact(), "[1]");
        assert_eq!(it.get("shape").unwrap().to_compact(), "[3]");
        // deterministic and independent of input order
        let mut rev = ins.clone();
        rev.reverse();
        let out2 = combine(&rev, &CombineOptions::new("t")).unwrap();
        assert_eq!(times_of(&out2), times_of(&out));
        assert_eq!(out2.get("zeta/2.1"), out.get("zeta/2.1"));
    }

    #[test]
    fn multi_value_inputs_and_partial_last_chunk() {
        let no_it = |mut s: RefSet| {
            s.refs.retain(|k, _| !k.starts_with("it/"));
            s
        };
        let ins = named(vec![
            ("a", no_it(input("u:a", &[1.0, 2.0]))),
            ("b", no_it(input("u:b", &[3.0, 4.0, 5.0]))),
        ]);
        let out = combine(&ins, &CombineOptions::new("t")).unwrap();
        assert_eq!(times_of(&out), vec![1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(url_of(&out, "zeta/1.0"), "u:a");
        assert_eq!(url_of(&out, "zeta/4.1"), "u:b");
        // `it` (chunk 1024) trims to the extent: 2 in a, 3 in b
        let ins = named(vec![
            ("a", input("u:a", &[1.0, 2.0])),
            ("b", input("u:b", &[3.0, 4.0, 5.0])),
        ]);
        let msg = combine(&ins, &CombineOptions::new("t"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("b: it:") && msg.contains("chunk size along t"),
            "{msg}"
        );
        // equal extents: output chunk 2
        let ins = named(vec![
            ("b", input("u:b", &[3.0, 4.0])),
            ("a", input("u:a", &[1.0, 2.0])),
        ]);
        let out = combine(&ins, &CombineOptions::new("t")).unwrap();
        assert_eq!(out.get("it/1"), Some(&range("u:b", 5000, 8)));
        // a partial chunk in the middle is rejected
        let mut a = input("u:a", &[1.0, 2.0, 3.0]);
        a.insert("zeta/.zarray", zarray(&[3, 4], &[2, 2], "<f4", "1e37"));
        let mut b = input("u:b", &[4.0, 5.0]);
        b.insert("zeta/.zarray", zarray(&[2, 4], &[2, 2], "<f4", "1e37"));
        let ins = named(vec![("a", no_it(a)), ("b", no_it(b))]);
        let msg = combine(&ins, &CombineOptions::new("t"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("partial chunk"), "{msg}");
    }

    #[test]
    fn duplicates_last_or_first_wins() {
        let no_it = |mut s: RefSet| {
            s.refs.retain(|k, _| !k.starts_with("it/"));
            s
        };
        let ins = named(vec![
            ("a", no_it(input("u:a", &[1.0, 2.0]))),
            ("b", no_it(input("u:b", &[2.0, 3.0]))),
        ]);
        let out = combine(&ins, &CombineOptions::new("t")).unwrap();
        assert_eq!(times_of(&out), vec![1.0, 2.0, 3.0]);
        assert_eq!(url_of(&out, "zeta/0.0"), "u:a");
        assert_eq!(url_of(&out, "zeta/1.0"), "u:b");
        assert_eq!(url_of(&out, "zeta/1.1"), "u:b");
        assert_eq!(url_of(&out, "zeta/2.0"), "u:b");
        let mut o = CombineOptions::new("t");
        o.duplicates = Duplicates::FirstWins;
        let out = combine(&ins, &o).unwrap();
        assert_eq!(url_of(&out, "zeta/1.0"), "u:a");
        assert_eq!(url_of(&out, "zeta/2.0"), "u:b");
        // exact duplicate input
        let ins = named(vec![
            ("a", input("u:a", &[1.0])),
            ("a2", input("u:a2", &[1.0])),
        ]);
        let out = combine(&ins, &CombineOptions::new("t")).unwrap();
        assert_eq!(times_of(&out), vec![1.0]);
        assert_eq!(url_of(&out, "zeta/0.0"), "u:a2");
    }

    #[test]
    fn stack_mode_is_mzz() {
        let ins = named(vec![
            ("b", input("u:b", &[2.0])),
            ("a", input("u:a", &[1.0])),
        ]);
        let mut o = CombineOptions::new("t");
        o.static_vars = StaticVars::Stack;
        o.identical_dims = vec!["y".into()];
        let out = combine(&ins, &o).unwrap();
        assert_eq!(url_of(&out, "h/0.0"), "u:a");
        assert_eq!(url_of(&out, "h/1.0"), "u:b");
        assert!(out.get("h/0").is_none());
        let h = out.get_json("h/.zarray").unwrap().unwrap();
        assert_eq!(h.get("shape").unwrap().to_compact(), "[2,4]");
        assert_eq!(h.get("chunks").unwrap().to_compact(), "[1,4]");
        assert_eq!(
            out.get_json("h/.zattrs").unwrap().unwrap().to_compact(),
            r#"{"_ARRAY_DIMENSIONS":["t","y"],"units":"x"}"#
        );
        assert!(out.get("dt/0").is_some() && out.get("dt/1").is_some());
        assert_eq!(
            out.get_json("dt/.zattrs").unwrap().unwrap().to_compact(),
            r#"{"_ARRAY_DIMENSIONS":["t"],"units":"x"}"#
        );
        // coordinates come from the earliest input, whatever the listing order
        assert_eq!(url_of(&out, "y/0"), "u:a");
    }

    #[test]
    fn rejects_inconsistent_inputs_naming_input_and_variable() {
        let base = || input("u:a", &[1.0]);
        type Edit = Box<dyn Fn(&mut RefSet)>;
        let cases: Vec<(&str, Edit, &str)> = vec![
            (
                "dtype",
                Box::new(|s: &mut RefSet| {
                    s.insert("zeta/.zarray", zarray(&[1, 4], &[1, 2], "<f8", "1e37"))
                }),
                "dtype",
            ),
            (
                "fill",
                Box::new(|s: &mut RefSet| {
                    s.insert("zeta/.zarray", zarray(&[1, 4], &[1, 2], "<f4", "0.0"))
                }),
                "fill_value",
            ),
            (
                "shape",
                Box::new(|s: &mut RefSet| {
                    s.insert("zeta/.zarray", zarray(&[1, 6], &[1, 2], "<f4", "1e37"))
                }),
                "shape (other dims)",
            ),
            (
                "chunks",
                Box::new(|s: &mut RefSet| {
                    s.insert("zeta/.zarray", zarray(&[1, 4], &[1, 4], "<f4", "1e37"))
                }),
                "chunks (other dims)",
            ),
            (
                "codec",
                Box::new(|s: &mut RefSet| {
                    s.insert("zeta/.zarray", Ref::Text(r#"{"chunks":[1,2],"compressor":{"id":"zlib","level":4},"dtype":"<f4","fill_value":1e37,"filters":null,"order":"C","shape":[1,4],"zarr_format":2}"#.into()))
                }),
                "compressor",
            ),
            (
                "static shape",
                Box::new(|s: &mut RefSet| s.insert("h/.zarray", zarray(&[5], &[5], "<f8", "null"))),
                "shape",
            ),
            (
                "coord dtype",
                Box::new(|s: &mut RefSet| {
                    s.insert("t/.zarray", zarray(&[1], &[512], "<i8", "null"));
                    s.insert("t/0", Ref::Binary(3i64.to_le_bytes().to_vec()));
                }),
                "dtype",
            ),
        ];
        for (label, f, what) in cases {
            let mut bad = input("u:bad", &[2.0]);
            f(&mut bad);
            let e = combine(
                &named(vec![("first.json", base()), ("bad.json", bad)]),
                &CombineOptions::new("t"),
            )
            .unwrap_err()
            .to_string();
            assert!(e.starts_with("bad.json: "), "{label}: {e}");
            assert!(e.contains(what), "{label}: {e}");
        }
    }

    #[test]
    fn rejects_interleaved_unsorted_missing_and_nan() {
        let e = combine(
            &named(vec![
                ("a", input("u:a", &[1.0, 3.0])),
                ("b", input("u:b", &[2.0])),
            ]),
            &CombineOptions::new("t"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("interleaved"), "{e}");
        let e = combine(
            &named(vec![("a", input("u:a", &[3.0, 1.0]))]),
            &CombineOptions::new("t"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("strictly increasing"), "{e}");
        let e = combine(
            &named(vec![("a", input("u:a", &[f64::NAN]))]),
            &CombineOptions::new("t"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("NaN"), "{e}");
        let mut s = input("u:a", &[1.0]);
        s.refs.retain(|k, _| !k.starts_with("t/"));
        let e = combine(&named(vec![("a", s)]), &CombineOptions::new("t")).unwrap_err();
        assert!(matches!(e, CombineError::NoCoordinate { .. }), "{e}");
        assert!(matches!(
            combine(&[], &CombineOptions::new("t")),
            Err(CombineError::NoInputs)
        ));
        // a chunk reference below the extent cannot be trimmed
        let mut s = input("u:a", &[1.0]);
        s.insert("it/0", range("u:a", 5000, 2));
        assert!(combine(&named(vec![("a", s)]), &CombineOptions::new("t")).is_err());
    }

    struct Mem(HashMap<String, Vec<u8>>, Mutex<usize>);
    impl Fetcher for Mem {
        fn fetch<'a>(
            &'a self,
            url: &'a str,
            ranges: &'a [Range<u64>],
        ) -> BoxFuture<'a, Result<Vec<Bytes>, String>> {
            Box::pin(async move {
                if let Ok(mut n) = self.1.lock() {
                    *n += 1;
                }
                let d = self.0.get(url).ok_or("no such url")?;
                Ok(ranges
                    .iter()
                    .map(|r| {
                        Bytes::copy_from_slice(&d[r.start as usize..(r.end as usize).min(d.len())])
                    })
                    .collect())
            })
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn remote_coordinates_are_fetched() {
        let mut files = HashMap::new();
        let mut ins = Vec::new();
        for (i, t) in [5.0f64, 4.0].iter().enumerate() {
            let url = format!("mem:{i}");
            let mut s = input(&url, &[*t]);
            let mut data = vec![0u8; 6000];
            data[100..108].copy_from_slice(&t.to_le_bytes());
            s.insert("t/0", range(&url, 100, 4096));
            files.insert(url.clone(), data);
            ins.push((url, s));
        }
        let o = CombineOptions::new("t");
        let e = combine(&ins, &o).unwrap_err();
        assert!(matches!(e, CombineError::NeedsFetch { .. }), "{e}");
        let want = coordinate_ranges(&ins, &o).unwrap();
        assert_eq!(
            want[0],
            FetchRange {
                url: "mem:0".into(),
                offset: 100,
                length: 8
            }
        );
        let mem = Mem(files, Mutex::new(0));
        let out = block_on(combine_fetching(&ins, &o, &mem)).unwrap();
        assert_eq!(times_of(&out), vec![4.0, 5.0]);
        // zeta/*.0 (8 bytes) and it/* (4 bytes after trimming) were inlined
        assert!(matches!(
            out.get("zeta/0.0"),
            Some(Ref::Text(_) | Ref::Binary(_))
        ));
        assert!(matches!(
            out.get("it/1"),
            Some(Ref::Text(_) | Ref::Binary(_))
        ));
        assert_eq!(url_of(&out, "zeta/0.1"), "mem:1");
        // 2 urls x 2 passes
        assert_eq!(*mem.1.lock().unwrap(), 4);
        let mut no_inline = o.clone();
        no_inline.inline_threshold = 0;
        let out = block_on(combine_fetching(&ins, &no_inline, &mem)).unwrap();
        assert_eq!(url_of(&out, "zeta/0.0"), "mem:1");
    }

    #[test]
    fn coordinate_codecs_and_types() {
        // big-endian int32 coordinate, zlib compressed
        let mut s = input("u:a", &[1.0]);
        s.refs.retain(|k, _| !k.starts_with("it/"));
        let raw: Vec<u8> = [7i32, 9].iter().flat_map(|v| v.to_be_bytes()).collect();
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(4));
        std::io::Write::write_all(&mut enc, &raw).unwrap();
        s.insert("t/.zarray", Ref::Text(r#"{"chunks":[2],"compressor":{"id":"zlib","level":4},"dtype":">i4","fill_value":-1,"filters":null,"order":"C","shape":[2],"zarr_format":2}"#.into()));
        s.insert("t/0", Ref::Binary(enc.finish().unwrap()));
        s.insert("zeta/.zarray", zarray(&[2, 4], &[1, 2], "<f4", "1e37"));
        let out = combine(&named(vec![("a", s)]), &CombineOptions::new("t")).unwrap();
        let z = out.get_json("t/.zarray").unwrap().unwrap();
        assert_eq!(z.get("dtype").unwrap().to_compact(), r#""<i4""#);
        assert_eq!(z.get("fill_value"), Some(&Json::Null));
        let b = out.get("t/0").and_then(Ref::inline_bytes).unwrap();
        assert_eq!(b.as_ref(), &[7, 0, 0, 0, 9, 0, 0, 0]);
    }

    #[test]
    fn linear_time_144_inputs() {
        let ins: Vec<(String, RefSet)> = (0..144)
            .map(|i| (format!("f{i}"), input(&format!("u:{i}"), &[f64::from(i)])))
            .collect();
        let out = combine(&ins, &CombineOptions::new("t")).unwrap();
        assert_eq!(times_of(&out).len(), 144);
        assert_eq!(url_of(&out, "zeta/143.1"), "u:143");
    }
}
