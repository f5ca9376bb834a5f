//! hdf5-lite model to reference set: the equivalent of kerchunk 0.2.7's
//! `SingleHdf5ToZarr(h5f, url, inline_threshold=500, vlen_encode="embed")
//! .translate()`, with the deliberate differences listed in the README.
//!
//! Every dataset either becomes a complete zarr array (`.zarray`,
//! `.zattrs`, chunk references) or a [`Warning`] saying why not; no partial
//! arrays are emitted. The only datasets skipped without a warning are the
//! ones kerchunk skips by design: dimension scales with no stored data
//! (netCDF's "dimension without a variable").

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use hdf5_lite::{Dataset, Datatype, File, Group, Layout, OtherLink, RangeSource, Value};

use crate::attrs::{attrs_to_json, fill_value_attr, str_attr};
use crate::codecs;
use crate::dims::{AddressBook, Dim, is_scale, resolve_dimensions};
use crate::error::Error;
use crate::json::{Json, object};
use crate::refs::{Ref, RefSet};
use crate::zarr::{self, ArrayMeta, Kind, ZDtype, chunk_key};

/// Knobs of one translation.
#[derive(Debug, Clone)]
pub struct TranslateOptions {
    /// URL written into every `[url, offset, length]` reference.
    pub url: String,
    /// Chunks (and contiguous data) stored in fewer bytes than this are
    /// inlined. 0 disables inlining. kerchunk's default is 500.
    pub inline_threshold: u64,
    /// Split large uncompressed contiguous datasets into pieces of at most
    /// about this many bytes along the first axis (kerchunk issue #124), so
    /// readers can fetch parts. The piece row count divides the first
    /// dimension exactly (zarr needs full-size uncompressed chunks). Off by
    /// default, which matches kerchunk.
    pub split_contiguous: Option<u64>,
    /// Largest chunk that may be fetched and re-encoded because its filter
    /// mask skipped filters (see [`crate::codecs`]); larger ones make the
    /// dataset unrepresentable.
    pub max_reencode_bytes: u64,
    /// Embed variable-length sequences of numbers (netCDF vlen types) as
    /// numcodecs `VLenArray` chunks. zarr 2 reads them exactly (object
    /// arrays of numpy arrays, as h5py and netCDF4-python), but xarray
    /// 2025.6 cannot open a zarr group holding one: its cftime sniffing
    /// calls `.item()` on the first element, which fails for any sequence
    /// not of length 1, so the whole group would become unreadable in
    /// xarray. Off by default: such datasets get a warning.
    pub vlen_sequences: bool,
}

impl TranslateOptions {
    pub fn new(url: impl Into<String>) -> Self {
        TranslateOptions {
            url: url.into(),
            ..Default::default()
        }
    }
}

impl Default for TranslateOptions {
    fn default() -> Self {
        TranslateOptions {
            url: String::new(),
            inline_threshold: 500,
            split_contiguous: None,
            max_reencode_bytes: 4 * 1024 * 1024,
            vlen_sequences: false,
        }
    }
}

/// An object that was not (fully) translated, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default)]
pub struct Translation {
    pub refs: RefSet,
    pub warnings: Vec<Warning>,
}

impl Translation {
    /// The reference set as JSON, with the warnings listed in it.
    pub fn to_json(&self) -> String {
        let w: Vec<(String, String)> = self
            .warnings
            .iter()
            .map(|w| (w.path.clone(), w.reason.clone()))
            .collect();
        self.refs.to_json_with_warnings(&w)
    }
}

/// The `numcodecs.JSON()` configuration kerchunk uses for embedded values.
pub fn json_codec() -> Json {
    object([
        ("id", Json::from("json2")),
        ("encoding", Json::from("utf-8")),
        ("skipkeys", Json::Bool(false)),
        ("ensure_ascii", Json::Bool(true)),
        ("check_circular", Json::Bool(true)),
        ("allow_nan", Json::Bool(true)),
        ("indent", Json::Null),
        (
            "separators",
            Json::Array(vec![Json::from(","), Json::from(":")]),
        ),
        ("sort_keys", Json::Bool(true)),
        ("strict", Json::Bool(true)),
    ])
}

/// Translate a walked file. `source` is only used to fetch the bytes of
/// inlined chunks (all in one `get_ranges` call) and, for vlen strings, the
/// values to embed.
pub async fn translate(
    file: &File,
    source: &dyn RangeSource,
    opts: &TranslateOptions,
) -> Result<Translation, Error> {
    let book = AddressBook::from_root(&file.root);
    let ctx = Ctx {
        dim_lengths: netcdf_dim_lengths(&file.root, &book),
        book,
        opts,
    };
    let mut st = State::default();
    let mut embeds: Vec<(&Dataset, EmbedPlan)> = Vec::new();
    let mut raws: Vec<(&Dataset, RawPlan)> = Vec::new();
    visit_group(&file.root, &ctx, &mut st, &mut embeds, &mut raws);

    // space-padded strings: read, convert the padding, inline
    for (ds, plan) in raws {
        match hdf5_lite::data::read_raw(source, file, ds).await {
            Ok(mut bytes) => {
                match plan.convert {
                    RawConvert::SpacePad(elem) => spacepad_to_nullpad(&mut bytes, elem),
                    RawConvert::Decoded => {
                        hdf5_lite::data::fixed_point_to_full(&mut bytes, &ds.datatype)
                    }
                }
                st.refs
                    .insert_json(format!("{}/.zarray", plan.prefix), &plan.meta.to_json());
                st.refs
                    .insert_json(format!("{}/.zattrs", plan.prefix), &plan.attrs);
                st.refs.insert(plan.key, Ref::inline(&bytes));
            }
            Err(e) => st.warn(&ds.path, e.to_string()),
        }
    }

    // vlen strings: read the values and embed them
    for (ds, plan) in embeds {
        match read_values(source, file, ds).await {
            Ok(values) => match match &plan.vlen_base {
                None => embed(&plan, &values).map(|c| {
                    c.into_iter()
                        .map(|(k, text)| (k, text.into_bytes()))
                        .collect::<Vec<_>>()
                }),
                Some(base) => embed_vlen_array(&plan, &values, base),
            } {
                Ok(chunks) => {
                    st.refs
                        .insert_json(format!("{}/.zarray", plan.prefix), &plan.meta);
                    st.refs
                        .insert_json(format!("{}/.zattrs", plan.prefix), &plan.attrs);
                    for (k, bytes) in chunks {
                        st.refs.insert(k, Ref::inline(&bytes));
                    }
                }
                Err(reason) => st.warn(&ds.path, reason),
            },
            Err(reason) => st.warn(&ds.path, reason),
        }
    }

    // inline and re-encoded chunks: one fetch for all of them
    if !st.fetches.is_empty() {
        let ranges: Vec<Range<u64>> = st
            .fetches
            .iter()
            .map(|f| f.offset..f.offset.saturating_add(f.length))
            .collect();
        let got = source
            .get_ranges(&ranges)
            .await
            .map_err(|error| Error::Source {
                file: source.name().to_string(),
                error,
            })?;
        let fetches = std::mem::take(&mut st.fetches);
        let mut failed: BTreeMap<String, String> = BTreeMap::new();
        for (f, bytes) in fetches.into_iter().zip(
            got.into_iter()
                .chain(std::iter::repeat_with(Default::default)),
        ) {
            if bytes.len() as u64 != f.length {
                return Err(Error::ShortRead {
                    file: source.name().to_string(),
                    key: f.key,
                    offset: f.offset,
                    wanted: f.length,
                    got: bytes.len() as u64,
                });
            }
            match &f.reencode {
                None => st.refs.insert(f.key, Ref::inline(&bytes)),
                Some(r) => match codecs::reencode(&r.filters, r.mask, &bytes, r.elem_size) {
                    Ok(data) => st.refs.insert(f.key, Ref::inline(&data)),
                    Err(e) => {
                        failed.entry(f.dataset.clone()).or_insert_with(|| {
                            format!("chunk {} with skipped filters: {e}", f.key)
                        });
                    }
                },
            }
        }
        for (path, reason) in failed {
            let prefix = format!("{}/", path.trim_start_matches('/'));
            st.refs.refs.retain(|k, _| !k.starts_with(&prefix));
            st.warn(&path, reason);
        }
    }
    Ok(Translation {
        refs: st.refs,
        warnings: st.warnings,
    })
}

/// The single place where values are read for embedding.
async fn read_values(
    source: &dyn RangeSource,
    file: &File,
    ds: &Dataset,
) -> Result<Vec<Value>, String> {
    hdf5_lite::data::read_values(source, file, ds)
        .await
        .map_err(|e| e.to_string())
}

#[derive(Default)]
struct State {
    refs: RefSet,
    warnings: Vec<Warning>,
    fetches: Vec<Fetch>,
}

impl State {
    fn warn(&mut self, path: &str, reason: impl Into<String>) {
        self.warnings.push(Warning {
            path: path.to_string(),
            reason: reason.into(),
        });
    }
}

struct Fetch {
    dataset: String,
    key: String,
    offset: u64,
    length: u64,
    reencode: Option<Reencode>,
}

struct Reencode {
    filters: Vec<hdf5_lite::Filter>,
    mask: u32,
    elem_size: u32,
}

/// What every dataset plan needs to know about the file.
struct Ctx<'a> {
    book: AddressBook,
    opts: &'a TranslateOptions,
    /// netCDF-4 unlimited dimensions: scale path -> netCDF length.
    dim_lengths: HashMap<String, u64>,
}

/// How a [`RawPlan`]'s bytes are turned into what readers get.
enum RawConvert {
    /// Space-padded fixed strings of this many bytes: HDF5 reads the
    /// trailing spaces as NULs.
    SpacePad(usize),
    /// Decoded from n-bit / scale-offset chunks: reduced-precision integers
    /// are widened as HDF5's conversion does (sign extension).
    Decoded,
}

/// A dataset whose bytes must be converted or decoded before zarr can
/// serve them (space-padded fixed strings; filters without a numcodecs
/// codec): read whole, converted, inlined as chunk 0.
struct RawPlan {
    prefix: String,
    key: String,
    convert: RawConvert,
    meta: ArrayMeta,
    attrs: Json,
}

struct EmbedPlan {
    /// `None`: vlen strings, numcodecs JSON; `Some(base)`: a vlen sequence
    /// of numbers, numcodecs `VLenArray` of `base`.
    vlen_base: Option<ZDtype>,
    prefix: String,
    shape: Vec<u64>,
    chunks: Vec<u64>,
    meta: Json,
    attrs: Json,
}

fn prefix_of(path: &str) -> String {
    path.trim_start_matches('/').to_string()
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

fn link_path(group: &str, name: &str) -> String {
    format!("{}/{name}", group.trim_end_matches('/'))
}

fn visit_group<'a>(
    g: &'a Group,
    ctx: &Ctx,
    st: &mut State,
    embeds: &mut Vec<(&'a Dataset, EmbedPlan)>,
    raws: &mut Vec<(&'a Dataset, RawPlan)>,
) {
    let prefix = prefix_of(&g.path);
    st.refs
        .insert_json(join(&prefix, ".zgroup"), &zarr::zgroup());
    let attrs = attrs_to_json(&g.attributes);
    // zarr writes `.zattrs` only once an attribute is set
    if !attrs.is_empty() {
        st.refs
            .insert_json(join(&prefix, ".zattrs"), &Json::Object(attrs));
    }
    for ds in &g.datasets {
        match plan_dataset(ds, ctx) {
            Ok(Planned::Array(p)) => {
                for n in &p.notes {
                    st.warn(&ds.path, n.clone());
                }
                st.refs
                    .insert_json(format!("{}/.zarray", p.prefix), &p.meta.to_json());
                st.refs
                    .insert_json(format!("{}/.zattrs", p.prefix), &p.attrs);
                for (k, r) in p.refs {
                    st.refs.insert(k, r);
                }
                st.fetches.extend(p.fetches);
            }
            Ok(Planned::Embed(e)) => embeds.push((ds, e)),
            Ok(Planned::Raw(r)) => raws.push((ds, r)),
            Ok(Planned::Skip) => {}
            Err(reason) => st.warn(&ds.path, reason),
        }
    }
    for link in &g.other_links {
        match link {
            OtherLink::Soft { name, target, .. } => st.warn(
                &link_path(&g.path, name),
                format!("soft link to {target} not translated (kerchunk's default)"),
            ),
            OtherLink::External { name, file, object } => st.warn(
                &link_path(&g.path, name),
                format!("external link to {file}:{object} not followed"),
            ),
            // the object is translated under its first path, as h5py's
            // visititems does
            OtherLink::Hard { .. } => {}
        }
    }
    for c in &g.groups {
        visit_group(c, ctx, st, embeds, raws);
    }
}

struct ArrayPlan {
    prefix: String,
    meta: ArrayMeta,
    attrs: Json,
    refs: Vec<(String, Ref)>,
    fetches: Vec<Fetch>,
    /// Warnings about a dataset that is still translated.
    notes: Vec<String>,
}

enum Planned {
    Array(ArrayPlan),
    Embed(EmbedPlan),
    Raw(RawPlan),
    Skip,
}

fn contains_vlen_string(dt: &Datatype) -> bool {
    match dt {
        Datatype::VlenString { .. } => true,
        Datatype::Compound { members, .. } => {
            members.iter().any(|m| contains_vlen_string(&m.datatype))
        }
        _ => false,
    }
}

fn has_storage(layout: &Layout) -> bool {
    match layout {
        Layout::Compact { .. } => true,
        Layout::Contiguous { address, .. } => address.is_some(),
        Layout::Chunked { chunks, .. } => !chunks.is_empty(),
        Layout::Virtual | Layout::External { .. } => false,
    }
}

/// zarr chunk shape for an unchunked array: the shape, with zero-length
/// dimensions given a chunk of 1 (zarr cannot divide by a zero chunk).
fn whole_chunks(shape: &[u64]) -> Vec<u64> {
    shape.iter().map(|d| (*d).max(1)).collect()
}

fn plan_dataset(ds: &Dataset, ctx: &Ctx) -> Result<Planned, String> {
    let opts = ctx.opts;
    if let Some(e) = &ds.error {
        return Err(format!("storage could not be indexed: {e}"));
    }
    match &ds.layout {
        Layout::Virtual => return Err("virtual dataset (VDS): data lives in other datasets".into()),
        Layout::External { files } => {
            return Err(format!(
                "raw data stored in {} external file(s), not in this file",
                files.len()
            ));
        }
        _ => {}
    }
    let prefix = prefix_of(&ds.path);
    let shape = ds.dataspace.shape();
    let rank = shape.len();
    let dims = resolve_dimensions(ds, rank, &ctx.book)?;
    // H5T_ARRAY elements: trailing zarr dimensions (as h5py reads them)
    let extra: Vec<u64> = match &ds.datatype {
        Datatype::Array { dims, .. } => dims.iter().map(|d| u64::from(*d)).collect(),
        _ => vec![],
    };
    let mut attrs = attrs_to_json(&ds.attributes);
    let base = prefix.rsplit('/').next().unwrap_or_default();
    attrs.insert(
        "_ARRAY_DIMENSIONS".into(),
        Json::Array(
            dims.iter()
                .map(|d| Json::Str(d.name.clone()))
                .chain((0..extra.len()).map(|i| Json::Str(format!("{base}_element_dim_{i}"))))
                .collect(),
        ),
    );
    if let Ok(zd) = zarr::zarr_dtype(&ds.datatype)
        && let Some(kept) = attr_fill_kept(ds, &zd)
    {
        attrs.insert("_FillValue".into(), kept);
    }
    let attrs = Json::Object(attrs);
    let compact = matches!(ds.layout, Layout::Compact { .. });
    if !compact && is_scale(ds) && !has_storage(&ds.layout) {
        return Ok(Planned::Skip);
    }

    let vlen_base = match &ds.datatype {
        Datatype::VlenSequence { .. } if !opts.vlen_sequences => {
            return Err("variable-length sequences of numbers: embedded only with TranslateOptions::vlen_sequences (xarray cannot open a zarr group holding them)".into());
        }
        Datatype::VlenSequence { base, .. } => {
            let z = zarr::zarr_dtype(base)
                .map_err(|e| format!("vlen sequence of a type without numpy dtype: {e}"))?;
            let numeric = match z.kind {
                Kind::Int | Kind::UInt => true,
                Kind::Float => matches!(z.size, 4 | 8),
                _ => false,
            };
            if !numeric {
                return Err(format!(
                    "vlen sequences of {} have no numcodecs VLenArray form here",
                    z.json.to_compact()
                ));
            }
            Some(z)
        }
        _ => None,
    };
    if vlen_base.is_some() || contains_vlen_string(&ds.datatype) {
        let chunks = match &ds.layout {
            Layout::Chunked { chunk_shape, .. } if chunk_shape.len() == rank => chunk_shape.clone(),
            _ => whole_chunks(&shape),
        };
        let meta = object([
            (
                "chunks",
                Json::Array(chunks.iter().map(|c| Json::UInt(*c)).collect()),
            ),
            ("compressor", Json::Null),
            ("dtype", Json::from("|O")),
            ("fill_value", Json::Null),
            (
                "filters",
                Json::Array(vec![match &vlen_base {
                    None => json_codec(),
                    Some(z) => {
                        object([("id", Json::from("vlen-array")), ("dtype", z.json.clone())])
                    }
                }]),
            ),
            ("order", Json::from("C")),
            (
                "shape",
                Json::Array(shape.iter().map(|c| Json::UInt(*c)).collect()),
            ),
            ("zarr_format", Json::UInt(2)),
        ]);
        return Ok(Planned::Embed(EmbedPlan {
            vlen_base,
            prefix,
            shape,
            chunks,
            meta,
            attrs,
        }));
    }

    let zd = match &ds.datatype {
        Datatype::Array { base, .. } => {
            let zd = zarr::zarr_dtype(base)?;
            if zd.kind == Kind::Void || zd.kind == Kind::Bytes {
                return Err(
                    "H5T_ARRAY of strings, compounds or opaque elements is not translated".into(),
                );
            }
            zd
        }
        dt => zarr::zarr_dtype(dt)?,
    };
    // bytes of one HDF5 element (the whole array for H5T_ARRAY): sizes,
    // shuffle's element size, re-encoding
    let elem = u64::from(zd.size).saturating_mul(extra.iter().product());
    let h5_elem = u32::try_from(elem).map_err(|_| "element size overflows".to_string())?;
    let nbytes = ds.dataspace.num_elements().saturating_mul(elem);

    if needs_decoding(ds, &zd, &extra, nbytes, opts)? {
        // n-bit / scale-offset: no numcodecs codec, so the whole dataset is
        // decoded here and inlined as one unfiltered chunk
        return Ok(Planned::Raw(RawPlan {
            key: chunk_key(&prefix, &vec![0; rank]),
            prefix,
            convert: RawConvert::Decoded,
            meta: ArrayMeta {
                chunks: whole_chunks(&shape),
                shape,
                dtype: zd.json.clone(),
                fill_value: fill_value(ds, &zd, true),
                filters: vec![],
            },
            attrs,
        }));
    }
    if is_spacepad_string(&ds.datatype) {
        // HDF5 converts space padding to the reader's padding (h5py: NUL),
        // so the stored bytes are not what readers get
        if nbytes > opts.max_reencode_bytes {
            return Err(format!(
                "space-padded strings ({nbytes} bytes, more than max_reencode_bytes) must be converted: HDF5 reads trailing spaces as NULs"
            ));
        }
        if matches!(ds.layout, Layout::Chunked { .. }) && !codecs::can_reencode(&ds.filters) {
            return Err("space-padded strings behind filters we cannot decode".into());
        }
        return Ok(Planned::Raw(RawPlan {
            key: chunk_key(&prefix, &vec![0; rank]),
            prefix,
            convert: RawConvert::SpacePad(zd.size as usize),
            meta: ArrayMeta {
                chunks: whole_chunks(&shape),
                shape,
                dtype: zd.json.clone(),
                fill_value: fill_value(ds, &zd, true),
                filters: vec![],
            },
            attrs,
        }));
    }
    let mut refs = Vec::new();
    let mut fetches = Vec::new();
    let mut notes = Vec::new();
    // zarr shape: the HDF5 extent, or the netCDF dimension lengths
    let mut zshape = shape.clone();
    let place = |key: String,
                 offset: u64,
                 length: u64,
                 refs: &mut Vec<(String, Ref)>,
                 fetches: &mut Vec<Fetch>| {
        if opts.inline_threshold > 0 && length < opts.inline_threshold {
            fetches.push(Fetch {
                dataset: ds.path.clone(),
                key,
                offset,
                length,
                reencode: None,
            });
        } else {
            refs.push((
                key,
                Ref::Range {
                    url: opts.url.clone(),
                    offset,
                    length,
                },
            ));
        }
    };

    let (chunks, filters, complete) = match &ds.layout {
        Layout::Compact { data, .. } => {
            let Some(bytes) = data.get(..nbytes as usize) else {
                return Err(format!(
                    "compact data holds {} bytes, the dataspace needs {nbytes}",
                    data.len()
                ));
            };
            refs.push((chunk_key(&prefix, &vec![0; rank]), Ref::inline(bytes)));
            (whole_chunks(&shape), vec![], true)
        }
        Layout::Contiguous { address, size } => {
            let mut chunks = whole_chunks(&shape);
            if let Some(addr) = address
                && nbytes > 0
            {
                let split = opts
                    .split_contiguous
                    .filter(|_| ds.filters.is_empty() && rank >= 1 && *size == nbytes)
                    .and_then(|target| split_rows(&shape, elem, target));
                match split {
                    Some(rows) => {
                        let row_bytes = nbytes / shape[0];
                        chunks[0] = rows;
                        for i in 0..shape[0] / rows {
                            let mut idx = vec![0; rank];
                            idx[0] = i;
                            place(
                                chunk_key(&prefix, &idx),
                                addr + i * rows * row_bytes,
                                rows * row_bytes,
                                &mut refs,
                                &mut fetches,
                            );
                        }
                    }
                    None => place(
                        chunk_key(&prefix, &vec![0; rank]),
                        *addr,
                        *size,
                        &mut refs,
                        &mut fetches,
                    ),
                }
            }
            let mut complete = address.is_some() || nbytes == 0;
            if !complete && let Some(chunk) = fill_chunk(ds, &zd, nbytes, opts) {
                refs.push((chunk_key(&prefix, &vec![0; rank]), Ref::inline(&chunk)));
                complete = true;
            }
            (chunks, vec![], complete)
        }
        Layout::Chunked {
            chunk_shape,
            chunks: stored,
            ..
        } => {
            if chunk_shape.len() != rank || chunk_shape.contains(&0) {
                return Err(format!(
                    "chunk shape {chunk_shape:?} does not fit dataspace {shape:?}"
                ));
            }
            let codecs_json = codecs::pipeline(&ds.filters, h5_elem, chunk_shape.iter().product())
                .map_err(|e| e.to_string())?;
            let all_filters = if ds.filters.len() >= 32 {
                u32::MAX
            } else {
                (1u32 << ds.filters.len()) - 1
            };
            let mut in_grid = 0u64;
            for c in stored {
                let mut idx = Vec::with_capacity(rank);
                let mut inside = c.offset.len() == rank;
                for (d, off) in c.offset.iter().enumerate().take(rank) {
                    if off % chunk_shape[d] != 0 {
                        return Err(format!(
                            "chunk offset {:?} is not a multiple of the chunk shape {chunk_shape:?}",
                            c.offset
                        ));
                    }
                    inside &= *off < shape[d];
                    idx.push(off / chunk_shape[d]);
                }
                if !inside {
                    // left over from a shrunken extent: zarr never reads it
                    continue;
                }
                in_grid += 1;
                let key = chunk_key(&prefix, &idx);
                let mask = c.filter_mask & all_filters;
                if mask != 0 {
                    let skipped = codecs::skipped_names(&ds.filters, mask).join(", ");
                    if !codecs::can_reencode(&ds.filters) {
                        return Err(format!(
                            "chunk {key} was stored without {skipped}; zarr has one codec list per array and this pipeline cannot be re-encoded"
                        ));
                    }
                    if c.size > opts.max_reencode_bytes {
                        return Err(format!(
                            "chunk {key} was stored without {skipped} and is larger ({} bytes) than max_reencode_bytes",
                            c.size
                        ));
                    }
                    fetches.push(Fetch {
                        dataset: ds.path.clone(),
                        key,
                        offset: c.address,
                        length: c.size,
                        reencode: Some(Reencode {
                            filters: ds.filters.clone(),
                            mask,
                            elem_size: h5_elem,
                        }),
                    });
                } else {
                    place(key, c.address, c.size, &mut refs, &mut fetches);
                }
            }
            let ext = netcdf_shape(ds, &dims, &shape, chunk_shape, &zd, ctx);
            if let Err(n) = &ext {
                notes.push(n.clone());
            }
            zshape = ext.unwrap_or_else(|_| shape.clone());
            let grid: u64 = zshape
                .iter()
                .zip(chunk_shape)
                .map(|(s, c)| s.div_ceil(*c))
                .product();
            let mut complete = in_grid >= grid;
            let chunk_elems: u64 = chunk_shape.iter().product();
            if !complete
                && ds.filters.is_empty()
                && let Some(chunk) = fill_chunk(ds, &zd, chunk_elems.saturating_mul(elem), opts)
                && (grid - in_grid).saturating_mul(chunk.len() as u64) <= opts.max_reencode_bytes
            {
                let have: std::collections::HashSet<String> = refs
                    .iter()
                    .map(|(k, _)| k.clone())
                    .chain(fetches.iter().map(|f| f.key.clone()))
                    .collect();
                let zgrid: Vec<u64> = zshape
                    .iter()
                    .zip(chunk_shape)
                    .map(|(s, c)| s.div_ceil(*c))
                    .collect();
                for flat in 0..grid {
                    let mut idx = vec![0u64; rank];
                    let mut rem = flat;
                    for d in (0..rank).rev() {
                        idx[d] = rem % zgrid[d];
                        rem /= zgrid[d];
                    }
                    let key = chunk_key(&prefix, &idx);
                    if !have.contains(&key) {
                        refs.push((key, Ref::inline(&chunk)));
                    }
                }
                complete = true;
            }
            (chunk_shape.clone(), codecs_json, complete)
        }
        Layout::Virtual | Layout::External { .. } => {
            return Err("virtual/external layout".into());
        }
    };
    let fill_value = if compact {
        Json::Null
    } else {
        fill_value(ds, &zd, complete)
    };
    let (zshape, chunks) = if extra.is_empty() {
        (zshape, chunks)
    } else {
        if !complete && !uniform_fill(ds, zd.size) {
            return Err(
                "H5T_ARRAY fill value whose elements differ: no single zarr fill_value".into(),
            );
        }
        // each chunk holds whole elements: the extra axes have one chunk,
        // whose index 0 is appended to every key
        let suffix = ".0".repeat(extra.len());
        let rekey = |k: &mut String| {
            if rank == 0 {
                k.truncate(k.len().saturating_sub(1));
                k.push_str(&suffix[1..]);
            } else {
                k.push_str(&suffix);
            }
        };
        for (k, _) in &mut refs {
            rekey(k);
        }
        for f in &mut fetches {
            rekey(&mut f.key);
        }
        (
            zshape.iter().chain(&extra).copied().collect(),
            chunks.iter().chain(&extra).copied().collect(),
        )
    };
    Ok(Planned::Array(ArrayPlan {
        prefix,
        meta: ArrayMeta {
            shape: zshape,
            chunks,
            dtype: zd.json.clone(),
            fill_value,
            filters,
        },
        attrs,
        refs,
        fetches,
        notes,
    }))
}

/// True when the HDF5 fill of an H5T_ARRAY dataset repeats one
/// `part`-byte value (or is undefined: zeros), so one zarr `fill_value`
/// of the base type describes it.
fn uniform_fill(ds: &Dataset, part: u32) -> bool {
    let Some(fill) = ds.fill_value.value.as_deref() else {
        return true;
    };
    let part = part as usize;
    part > 0
        && fill
            .chunks(part)
            .all(|c| fill.get(..part).is_some_and(|first| c == first))
}

/// The bytes of one never-written chunk of `nbytes` of a fixed-length
/// string dataset whose fill reads as empty strings (netCDF char variables:
/// NC_FILL_CHAR is NUL), when it is small enough to inline.
///
/// zarr can only give absent chunks a `fill_value`, and xarray's zarr
/// backend masks every element equal to it: a never-written char variable
/// (SCHISM's `SCHISM_hgrid(one)`) would read as NaN, where netCDF4-python
/// and xarray's netCDF4 engine read `b""`. Inlining the fill bytes instead
/// lets `fill_value` stay `null`, so nothing is masked (kerchunk writes a
/// `" "` fill, which reads back as `b" "`). Only without a `_FillValue`
/// attribute (with one, masking is what netCDF readers do too).
fn fill_chunk(ds: &Dataset, zd: &ZDtype, nbytes: u64, opts: &TranslateOptions) -> Option<Vec<u8>> {
    if zd.kind != Kind::Bytes
        || fill_value_attr(&ds.attributes).is_some()
        || nbytes > opts.max_reencode_bytes
    {
        return None;
    }
    let fill = ds.fill_value.value.as_deref().unwrap_or(&[]);
    if fill.iter().any(|b| *b != 0) {
        return None;
    }
    Some(vec![0u8; usize::try_from(nbytes).ok()?])
}

/// For a chunked dataset whose pipeline has the n-bit or scale-offset
/// filter (no numcodecs codec exists for either): `true` when hdf5-lite
/// decodes it whole and it is inlined (at most `max_reencode_bytes`
/// decoded bytes, every filter one hdf5-lite undoes, a type whose decoded
/// bytes readers see once reduced-precision integers are widened); `Err`
/// (a warning) otherwise; `false` for other datasets.
fn needs_decoding(
    ds: &Dataset,
    zd: &ZDtype,
    extra: &[u64],
    nbytes: u64,
    opts: &TranslateOptions,
) -> Result<bool, String> {
    use hdf5_lite::{FILTER_NBIT, FILTER_SCALEOFFSET};
    if !matches!(ds.layout, Layout::Chunked { .. }) {
        return Ok(false);
    }
    let Some(f) = ds
        .filters
        .iter()
        .find(|f| matches!(f.id, FILTER_NBIT | FILTER_SCALEOFFSET))
    else {
        return Ok(false);
    };
    let name = if f.id == FILTER_NBIT {
        "n-bit"
    } else {
        "scale-offset"
    };
    if nbytes > opts.max_reencode_bytes {
        return Err(format!(
            "uses the {name} filter, which numcodecs cannot decode; datasets of at most max_reencode_bytes ({}) are decoded and inlined, this one holds {nbytes} bytes",
            opts.max_reencode_bytes
        ));
    }
    if let Some(other) = ds.filters.iter().find(|f| {
        !matches!(
            f.id,
            FILTER_NBIT
                | FILTER_SCALEOFFSET
                | hdf5_lite::FILTER_DEFLATE
                | hdf5_lite::FILTER_SHUFFLE
                | hdf5_lite::FILTER_FLETCHER32
        )
    }) {
        return Err(format!(
            "uses the {name} filter together with filter {}, which hdf5-lite cannot decode",
            other.id
        ));
    }
    // a reduced-precision float (n-bit) would need HDF5's float conversion
    let full_float = match &ds.datatype {
        Datatype::FloatingPoint {
            size,
            bit_offset,
            bit_precision,
            ..
        } => *bit_offset == 0 && u32::from(*bit_precision) == size * 8,
        _ => true,
    };
    if !extra.is_empty() || !full_float || !matches!(zd.kind, Kind::Int | Kind::UInt | Kind::Float)
    {
        return Err(format!(
            "uses the {name} filter on a {} element type; only integers and full-precision floats are decoded",
            zd.json.to_compact()
        ));
    }
    Ok(true)
}

/// True for a fixed-length string type with space padding (`H5T_STR_SPACEPAD`).
fn is_spacepad_string(dt: &Datatype) -> bool {
    matches!(
        dt,
        Datatype::String {
            padding: hdf5_lite::StringPadding::SpacePad,
            ..
        }
    )
}

/// What HDF5's string conversion does when h5py reads a space-padded
/// string as NUL-padded (`H5T__conv_s_s`): the trailing run of spaces of
/// every `elem`-byte element becomes NULs; everything before it (embedded
/// NULs included) is kept.
pub fn spacepad_to_nullpad(bytes: &mut [u8], elem: usize) {
    if elem == 0 {
        return;
    }
    for e in bytes.chunks_mut(elem) {
        for b in e.iter_mut().rev() {
            if *b != b' ' {
                break;
            }
            *b = 0;
        }
    }
}

/// True when the file was written by netCDF-4: `_NCProperties` on the root
/// group, or any dataset carrying netCDF-4's hidden `_Netcdf4Dimid` /
/// `_Netcdf4Coordinates` attributes.
pub fn is_netcdf4_file(root: &Group) -> bool {
    fn any_ds(g: &Group) -> bool {
        g.datasets.iter().any(|d| {
            d.attributes
                .iter()
                .any(|a| a.name == "_Netcdf4Dimid" || a.name == "_Netcdf4Coordinates")
        }) || g.groups.iter().any(any_ds)
    }
    root.attributes.iter().any(|a| a.name == "_NCProperties") || any_ds(root)
}

/// Lengths of the netCDF-4 unlimited dimensions, keyed by scale path.
///
/// netCDF-C (`nc4_find_dim_len`) defines an unlimited dimension's length
/// as the largest current extent along it over every variable that uses
/// it; a variable with fewer records has that length too, its unwritten
/// records reading as the fill value. Here: the maximum, over every
/// dataset with an unlimited axis named by a scale (the scale itself
/// included), of the extent along that axis. Empty for non-netCDF files.
fn netcdf_dim_lengths(root: &Group, book: &AddressBook) -> HashMap<String, u64> {
    fn walk(g: &Group, book: &AddressBook, out: &mut HashMap<String, u64>) {
        for ds in &g.datasets {
            let hdf5_lite::Dataspace::Simple { dims, max_dims } = &ds.dataspace else {
                continue;
            };
            let Ok(axes) = resolve_dimensions(ds, dims.len(), book) else {
                continue;
            };
            for ((len, max), axis) in dims.iter().zip(max_dims).zip(axes) {
                if let (None, Some(scale)) = (max, axis.scale) {
                    let e = out.entry(scale).or_insert(0);
                    *e = (*e).max(*len);
                }
            }
        }
        for c in &g.groups {
            walk(c, book, out);
        }
    }
    let mut out = HashMap::new();
    if is_netcdf4_file(root) {
        walk(root, book, &mut out);
    }
    out
}

/// zarr shape of a chunked dataset: its HDF5 extent, except that in a
/// netCDF-4 file an unlimited axis takes the netCDF dimension length (see
/// [`netcdf_dim_lengths`]), so a variable with fewer records than its
/// dimension reads like netCDF-C shows it: same length as its neighbours,
/// unwritten records = fill value (zarr's `fill_value` for the absent
/// chunks). `Err` (a warning; the HDF5 extent is kept) when that fill
/// would not be exact: HDF5 fill undefined, or different from the zarr
/// `fill_value`, or a partly used boundary chunk whose unused part HDF5
/// did not initialise with the fill value.
fn netcdf_shape(
    ds: &Dataset,
    dims: &[Dim],
    shape: &[u64],
    chunk_shape: &[u64],
    zd: &ZDtype,
    ctx: &Ctx,
) -> Result<Vec<u64>, String> {
    let hdf5_lite::Dataspace::Simple { max_dims, .. } = &ds.dataspace else {
        return Ok(shape.to_vec());
    };
    let mut out = shape.to_vec();
    let mut partial = false;
    for (d, axis) in dims.iter().enumerate() {
        if max_dims.get(d).is_some_and(Option::is_none)
            && let Some(len) = axis.scale.as_ref().and_then(|p| ctx.dim_lengths.get(p))
            && *len > shape[d]
        {
            out[d] = *len;
            partial |= !shape[d].is_multiple_of(chunk_shape[d]);
        }
    }
    if out == shape {
        return Ok(out);
    }
    let why = |r: &str| {
        Err(format!(
            "shape kept at the HDF5 extent {shape:?}, not the netCDF dimension lengths {out:?}: {r}"
        ))
    };
    if ds.fill_value.value.is_none() {
        return why("no HDF5 fill value defined for the unwritten records");
    }
    if fill_value(ds, zd, false) != hdf5_fill(ds, zd) {
        return why("the _FillValue attribute differs from the HDF5 fill value");
    }
    let fill_written = ds.fill_value.fill_time == 0
        || (ds.fill_value.fill_time == 2 && ds.fill_value.user_defined);
    if partial && !fill_written {
        return why("a boundary chunk's unused part was not initialised with the fill value");
    }
    Ok(out)
}

/// Rows per piece for `split_contiguous`: the largest divisor of the first
/// dimension whose piece fits in `target` bytes (at least one row); `None`
/// when no split is needed.
pub fn split_rows(shape: &[u64], elem: u64, target: u64) -> Option<u64> {
    let n = *shape.first()?;
    let row_bytes = shape[1..].iter().product::<u64>().saturating_mul(elem);
    if n <= 1 || row_bytes == 0 || n.saturating_mul(row_bytes) <= target {
        return None;
    }
    let limit = (target / row_bytes).max(1);
    let mut best = 1;
    let mut d = 1;
    while d * d <= n {
        if n % d == 0 {
            for cand in [d, n / d] {
                if cand <= limit && cand > best {
                    best = cand;
                }
            }
        }
        d += 1;
    }
    (best < n).then_some(best)
}

/// True for what kerchunk treats as a netCDF variable (any attribute name
/// containing `_Netcdf4`) or a CF time (`units` containing `since`).
pub fn is_netcdf_variable(ds: &Dataset) -> bool {
    ds.attributes.iter().any(|a| a.name.contains("_Netcdf4"))
        || str_attr(&ds.attributes, "units").is_some_and(|u| u.contains("since"))
}

/// The HDF5 fill value of a dataset as zarr JSON: the defined value, else
/// zeros (what HDF5 returns for unwritten elements).
fn hdf5_fill(ds: &Dataset, zd: &ZDtype) -> Json {
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
fn encode_attr_fill(v: &Value, zd: &ZDtype) -> Option<Json> {
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
fn attr_fill_kept(ds: &Dataset, zd: &ZDtype) -> Option<Json> {
    let v = fill_value_attr(&ds.attributes)?;
    if encode_attr_fill(v, zd).is_some() {
        return None;
    }
    let a = ds.attributes.iter().find(|a| a.name == "_FillValue")?;
    crate::attrs::attr_value_json(a)
}

/// One element as kerchunk embeds it (h5py value with bytes decoded).
fn embed_value(v: &Value) -> Json {
    match v {
        Value::Str(s) => Json::Str(s.clone()),
        Value::Null => Json::Str(String::new()),
        Value::Int(i) => Json::Int(*i),
        Value::UInt(u) => Json::UInt(*u),
        Value::Float(f) => Json::Float(*f),
        Value::Enum { value, .. } => Json::Int(*value),
        Value::Compound(members) => {
            Json::Array(members.iter().map(|(_, m)| embed_value(m)).collect())
        }
        Value::Array(items) | Value::Vlen(items) => {
            Json::Array(items.iter().map(embed_value).collect())
        }
        Value::Bytes(b) => Json::Str(String::from_utf8_lossy(b).into_owned()),
        Value::ObjectRef(_) | Value::OtherRef(_) => Json::Null,
    }
}

/// The values of every chunk of the grid, in C order: `(chunk index,
/// cells)`, a cell `None` past the array edge.
#[allow(clippy::type_complexity)]
fn chunk_cells<'v>(
    plan: &EmbedPlan,
    values: &'v [Value],
) -> Result<Vec<(Vec<u64>, Vec<Option<&'v Value>>)>, String> {
    let total: u64 = plan.shape.iter().product();
    if values.len() as u64 != total {
        return Err(format!(
            "read {} values, the dataspace has {total}",
            values.len()
        ));
    }
    let rank = plan.shape.len();
    let grid: Vec<u64> = plan
        .shape
        .iter()
        .zip(&plan.chunks)
        .map(|(s, c)| s.div_ceil(*c))
        .collect();
    let mut out = Vec::new();
    let nchunks: u64 = grid.iter().product();
    let per_chunk: u64 = plan.chunks.iter().product();
    for flat in 0..nchunks {
        // chunk index in C order
        let mut idx = vec![0u64; rank];
        let mut rem = flat;
        for d in (0..rank).rev() {
            idx[d] = rem % grid[d];
            rem /= grid[d];
        }
        let mut cells = Vec::with_capacity(per_chunk as usize);
        for within in 0..per_chunk {
            let mut pos = vec![0u64; rank];
            let mut r = within;
            for d in (0..rank).rev() {
                pos[d] = idx[d] * plan.chunks[d] + r % plan.chunks[d];
                r /= plan.chunks[d];
            }
            if pos.iter().zip(&plan.shape).any(|(p, s)| p >= s) {
                cells.push(None);
                continue;
            }
            let lin = pos
                .iter()
                .zip(&plan.shape)
                .fold(0u64, |acc, (p, s)| acc * s + p);
            cells.push(Some(
                values.get(lin as usize).ok_or("value index out of range")?,
            ));
        }
        out.push((idx, cells));
    }
    Ok(out)
}

/// numcodecs `JSON` chunks (`[v0, v1, ..., "|O", [chunk shape]]`) for every
/// chunk of the grid; positions past the array edge are `null`, as zarr
/// leaves them for object arrays without a fill value.
fn embed(plan: &EmbedPlan, values: &[Value]) -> Result<Vec<(String, String)>, String> {
    let rank = plan.shape.len();
    let mut out = Vec::new();
    for (idx, cells) in chunk_cells(plan, values)? {
        let mut items: Vec<Json> = cells
            .into_iter()
            .map(|c| c.map_or(Json::Null, embed_value))
            .collect();
        // numcodecs' JSON codec writes `chunk.tolist()` and decodes with
        // `out[:] = items[:-2]`: nested lists for 2-D and higher chunks
        if rank >= 2 {
            items = match crate::attrs::nest(items, &plan.chunks) {
                Json::Array(rows) => rows,
                other => vec![other],
            };
        }
        items.push(Json::from("|O"));
        items.push(Json::Array(
            plan.chunks.iter().map(|c| Json::UInt(*c)).collect(),
        ));
        out.push((
            chunk_key(&plan.prefix, &idx),
            Json::Array(items).to_compact(),
        ));
    }
    Ok(out)
}

/// numcodecs `VLenArray` chunks for a vlen sequence of numbers: a
/// little-endian u32 item count, then per item its byte length (u32 LE)
/// and its elements in `base`'s dtype. zarr 2 decodes them to an object
/// array of numpy arrays, as h5py and netCDF4-python read vlen data.
/// (numcodecs' JSON codec cannot carry them: `out[:] = items` broadcasts
/// equal-length sequences into an extra axis and fails.) Positions past
/// the array edge are empty sequences.
fn embed_vlen_array(
    plan: &EmbedPlan,
    values: &[Value],
    base: &ZDtype,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    for (idx, cells) in chunk_cells(plan, values)? {
        let n = u32::try_from(cells.len()).map_err(|_| "chunk too large")?;
        let mut buf = n.to_le_bytes().to_vec();
        for c in cells {
            let items: &[Value] = match c {
                None | Some(Value::Null) => &[],
                Some(Value::Vlen(items)) => items,
                Some(other) => return Err(format!("not a vlen sequence: {other:?}")),
            };
            let mut bytes = Vec::with_capacity(items.len() * base.size as usize);
            for v in items {
                bytes.extend(number_bytes(v, base).ok_or_else(|| {
                    format!("vlen element {v:?} is not a {}", base.json.to_compact())
                })?);
            }
            let len = u32::try_from(bytes.len()).map_err(|_| "vlen item too large")?;
            buf.extend_from_slice(&len.to_le_bytes());
            buf.extend(bytes);
        }
        out.push((chunk_key(&plan.prefix, &idx), buf));
    }
    Ok(out)
}

/// One decoded number in the byte layout of a numeric zarr dtype.
fn number_bytes(v: &Value, z: &ZDtype) -> Option<Vec<u8>> {
    let mut b = match (z.kind, z.size, v) {
        (Kind::Int, 1, Value::Int(i)) => i8::try_from(*i).ok()?.to_le_bytes().to_vec(),
        (Kind::Int, 2, Value::Int(i)) => i16::try_from(*i).ok()?.to_le_bytes().to_vec(),
        (Kind::Int, 4, Value::Int(i)) => i32::try_from(*i).ok()?.to_le_bytes().to_vec(),
        (Kind::Int, 8, Value::Int(i)) => i.to_le_bytes().to_vec(),
        (Kind::UInt, 1, Value::UInt(u)) => u8::try_from(*u).ok()?.to_le_bytes().to_vec(),
        (Kind::UInt, 2, Value::UInt(u)) => u16::try_from(*u).ok()?.to_le_bytes().to_vec(),
        (Kind::UInt, 4, Value::UInt(u)) => u32::try_from(*u).ok()?.to_le_bytes().to_vec(),
        (Kind::UInt, 8, Value::UInt(u)) => u.to_le_bytes().to_vec(),
        // decoded floats are exact widenings of the stored value
        (Kind::Float, 4, Value::Float(f)) => (*f as f32).to_le_bytes().to_vec(),
        (Kind::Float, 8, Value::Float(f)) => f.to_le_bytes().to_vec(),
        _ => return None,
    };
    if matches!(z.order, Some(hdf5_lite::ByteOrder::BigEndian)) {
        b.reverse();
    }
    Some(b)
}

#[cfg(test)]
mod tests;
