//! Planning one dataset: which zarr array (or embedded / raw-read array)
//! it becomes, its chunk references and the chunks fetched to inline.

use super::*;

/// How a [`RawPlan`]'s bytes are turned into what readers get.
pub(super) enum RawConvert {
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
pub(super) struct RawPlan {
    pub(super) prefix: String,
    pub(super) key: String,
    pub(super) convert: RawConvert,
    pub(super) meta: ArrayMeta,
    pub(super) attrs: Json,
}

pub(super) struct EmbedPlan {
    /// `None`: vlen strings, numcodecs JSON; `Some(base)`: a vlen sequence
    /// of numbers, numcodecs `VLenArray` of `base`.
    pub(super) vlen_base: Option<ZDtype>,
    pub(super) prefix: String,
    pub(super) shape: Vec<u64>,
    pub(super) chunks: Vec<u64>,
    pub(super) meta: Json,
    pub(super) attrs: Json,
}

pub(super) struct ArrayPlan {
    pub(super) prefix: String,
    pub(super) meta: ArrayMeta,
    pub(super) attrs: Json,
    pub(super) refs: Vec<(String, Ref)>,
    pub(super) fetches: Vec<Fetch>,
    /// Warnings about a dataset that is still translated.
    pub(super) notes: Vec<String>,
}

pub(super) enum Planned {
    Array(ArrayPlan),
    Embed(EmbedPlan),
    Raw(RawPlan),
    Skip,
}

pub(super) fn contains_vlen_string(dt: &Datatype) -> bool {
    match dt {
        Datatype::VlenString { .. } => true,
        Datatype::Compound { members, .. } => {
            members.iter().any(|m| contains_vlen_string(&m.datatype))
        }
        _ => false,
    }
}

pub(super) fn has_storage(layout: &Layout) -> bool {
    match layout {
        Layout::Compact { .. } => true,
        Layout::Contiguous { address, .. } => address.is_some(),
        Layout::Chunked { chunks, .. } => !chunks.is_empty(),
        Layout::Virtual | Layout::External { .. } => false,
    }
}

/// zarr chunk shape for an unchunked array: the shape, with zero-length
/// dimensions given a chunk of 1 (zarr cannot divide by a zero chunk).
pub(super) fn whole_chunks(shape: &[u64]) -> Vec<u64> {
    shape.iter().map(|d| (*d).max(1)).collect()
}

/// A dataset inlined whole as one unfiltered chunk, its bytes converted by
/// `convert` after the read (what readers get differs from what is stored).
fn whole_raw(
    ds: &Dataset,
    zd: &ZDtype,
    prefix: String,
    shape: Vec<u64>,
    convert: RawConvert,
    attrs: Json,
) -> Planned {
    Planned::Raw(RawPlan {
        key: chunk_key(&prefix, &vec![0; shape.len()]),
        prefix,
        convert,
        meta: ArrayMeta {
            chunks: whole_chunks(&shape),
            shape,
            dtype: zd.json.clone(),
            fill_value: fill_value(ds, zd, true),
            filters: vec![],
        },
        attrs,
    })
}

pub(super) fn plan_dataset(ds: &Dataset, ctx: &Ctx) -> Result<Planned, String> {
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
        return Ok(whole_raw(
            ds,
            &zd,
            prefix,
            shape,
            RawConvert::Decoded,
            attrs,
        ));
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
        return Ok(whole_raw(
            ds,
            &zd,
            prefix,
            shape,
            RawConvert::SpacePad(zd.size as usize),
            attrs,
        ));
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
pub(super) fn uniform_fill(ds: &Dataset, part: u32) -> bool {
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
pub(super) fn fill_chunk(
    ds: &Dataset,
    zd: &ZDtype,
    nbytes: u64,
    opts: &TranslateOptions,
) -> Option<Vec<u8>> {
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
