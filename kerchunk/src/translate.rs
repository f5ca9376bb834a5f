//! hdf5-lite model to reference set: the equivalent of kerchunk 0.2.7's
//! `SingleHdf5ToZarr(h5f, url, inline_threshold=500, vlen_encode="embed")
//! .translate()`, with the deliberate differences listed in the README.
//!
//! Every dataset either becomes a complete zarr array (`.zarray`,
//! `.zattrs`, chunk references) or a [`Warning`] saying why not; no partial
//! arrays are emitted. The only datasets skipped without a warning are the
//! ones kerchunk skips by design: dimension scales with no stored data
//! (netCDF's "dimension without a variable").
//!
//! Files by concern: this one walks the groups and runs the fetches;
//! `plan` decides what each dataset becomes (array, embedded or raw-read
//! plan, chunk references); `raw` the datasets whose bytes must be
//! converted first (filters without a numcodecs codec, space-padded
//! strings); `fill` the zarr `fill_value`; `netcdf` the netCDF-4
//! conventions; `embed` the chunks of embedded values.

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

mod embed;
mod fill;
mod netcdf;
mod plan;
mod raw;

use embed::*;
pub use fill::fill_value;
use fill::*;
use netcdf::*;
pub use netcdf::{is_netcdf_variable, is_netcdf4_file};
pub use plan::split_rows;
use plan::*;
pub use raw::spacepad_to_nullpad;
use raw::*;

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

#[cfg(test)]
mod tests;
