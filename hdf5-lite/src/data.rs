//! Reading raw data: only for the few places an indexer must look at values
//! (embedding vlen strings, which have no byte-range representation, and
//! tests). Chunk bytes are fetched in one batch, filters undone (deflate,
//! shuffle, fletcher32), and elements decoded, with vlen data resolved from
//! global heap collections fetched in as many rounds as nesting requires.

use std::collections::HashMap;

use bytes::Bytes;

use crate::error::{Error, FormatError};
use crate::global_heap;
use crate::model::*;
use crate::parse::Ctx;
use crate::source::RangeSource;
use crate::value;

/// Refuse to materialise more than this many bytes of raw data.
pub const MAX_RAW_BYTES: u64 = 512 * 1024 * 1024;

fn err(file: &File, ds: &Dataset, reason: impl Into<String>) -> Error {
    Error::Format {
        file: file.source.clone(),
        error: FormatError::new(
            "dataset data",
            ds.address,
            format!("{}: {}", ds.path, reason.into()),
        ),
    }
}

async fn fetch(
    src: &dyn RangeSource,
    file: &File,
    ranges: &[std::ops::Range<u64>],
) -> Result<Vec<Bytes>, Error> {
    src.get_ranges(ranges).await.map_err(|error| Error::Source {
        file: file.source.clone(),
        error,
    })
}

/// Undo a chunk's filters (those not skipped by `filter_mask`), in reverse.
pub fn unfilter(
    mut data: Vec<u8>,
    filters: &[Filter],
    filter_mask: u32,
    element_size: usize,
) -> Result<Vec<u8>, String> {
    for (k, f) in filters.iter().enumerate().rev() {
        if filter_mask & (1 << k) != 0 {
            continue;
        }
        data = match f.id {
            FILTER_DEFLATE => {
                use std::io::Read;
                let mut out = Vec::new();
                flate2::read::ZlibDecoder::new(&data[..])
                    .take(MAX_RAW_BYTES)
                    .read_to_end(&mut out)
                    .map_err(|e| format!("deflate: {e}"))?;
                out
            }
            FILTER_SHUFFLE => {
                let es = f
                    .client_data
                    .first()
                    .map(|v| *v as usize)
                    .unwrap_or(element_size);
                unshuffle(&data, es)
            }
            FILTER_FLETCHER32 => {
                let Some(split) = data.len().checked_sub(4) else {
                    return Err("fletcher32 chunk shorter than its checksum".into());
                };
                let stored = u32::from_le_bytes([
                    data[split],
                    data[split + 1],
                    data[split + 2],
                    data[split + 3],
                ]);
                if stored != crate::checksum::fletcher32(&data[..split]) {
                    return Err("fletcher32 checksum mismatch".into());
                }
                data.truncate(split);
                data
            }
            id => {
                return Err(format!(
                    "filter {id} ({}) is not supported",
                    f.name.clone().unwrap_or_default()
                ));
            }
        };
    }
    Ok(data)
}

/// Undo HDF5's byte shuffle of `es`-byte elements; a trailing partial
/// element is kept as is.
pub fn unshuffle(data: &[u8], es: usize) -> Vec<u8> {
    if es <= 1 {
        return data.to_vec();
    }
    let n = data.len() / es;
    let mut out = data.to_vec();
    for (i, b) in data[..n * es].iter().enumerate() {
        let (byte, elem) = (i / n, i % n);
        out[elem * es + byte] = *b;
    }
    out
}

/// The dataset's elements as stored (C order, file byte order), with
/// unwritten regions holding the fill value.
pub async fn read_raw(src: &dyn RangeSource, file: &File, ds: &Dataset) -> Result<Vec<u8>, Error> {
    let es = ds.datatype.size() as usize;
    let shape = ds.dataspace.shape();
    let n = ds.dataspace.num_elements();
    let total = n
        .checked_mul(es as u64)
        .filter(|t| *t <= MAX_RAW_BYTES)
        .ok_or_else(|| err(file, ds, "too large to read"))?;
    let fill: Vec<u8> = match &ds.fill_value.value {
        Some(v) if v.len() == es => v.clone(),
        _ => vec![0; es],
    };
    let mut out: Vec<u8> = fill.iter().copied().cycle().take(total as usize).collect();
    match &ds.layout {
        Layout::Compact { data, .. } => {
            let m = data.len().min(out.len());
            out[..m].copy_from_slice(&data[..m]);
        }
        Layout::Contiguous {
            address: Some(a), ..
        } => {
            let got = fetch(src, file, &[*a..*a + total]).await?;
            let b = got.into_iter().next().unwrap_or_default();
            if (b.len() as u64) < total {
                return Err(err(file, ds, "contiguous data truncated"));
            }
            out.copy_from_slice(&b[..total as usize]);
        }
        Layout::Contiguous { address: None, .. } => {}
        Layout::Chunked {
            chunk_shape,
            chunks,
            ..
        } => {
            let ranges: Vec<_> = chunks
                .iter()
                .map(|c| c.address..c.address + c.size)
                .collect();
            let got = fetch(src, file, &ranges).await?;
            let chunk_elems: u64 = chunk_shape.iter().product();
            for (c, b) in chunks.iter().zip(got) {
                if (b.len() as u64) < c.size {
                    return Err(err(
                        file,
                        ds,
                        format!("chunk at {:#x} truncated", c.address),
                    ));
                }
                let raw = unfilter(b.to_vec(), &ds.filters, c.filter_mask, es)
                    .map_err(|e| err(file, ds, e))?;
                if (raw.len() as u64) < chunk_elems * es as u64 {
                    return Err(err(
                        file,
                        ds,
                        format!("chunk at {:#x} decodes to {} bytes", c.address, raw.len()),
                    ));
                }
                copy_chunk(&mut out, &shape, &raw, chunk_shape, &c.offset, es);
            }
        }
        Layout::Virtual | Layout::External { .. } => {
            return Err(err(
                file,
                ds,
                ds.error
                    .clone()
                    .unwrap_or_else(|| "storage not supported".into()),
            ));
        }
    }
    Ok(out)
}

/// Copy the in-extent part of a chunk into the C-order array.
fn copy_chunk(
    out: &mut [u8],
    shape: &[u64],
    chunk: &[u8],
    cshape: &[u64],
    offset: &[u64],
    es: usize,
) {
    let rank = shape.len();
    if rank == 0 {
        let m = es.min(chunk.len()).min(out.len());
        out[..m].copy_from_slice(&chunk[..m]);
        return;
    }
    // Iterate over rows (all dims but the last) of the chunk.
    let last = rank - 1;
    let row_len = cshape[last].min(shape[last].saturating_sub(offset[last])) as usize;
    let rows: u64 = cshape[..last].iter().product();
    let mut idx = vec![0u64; last];
    for _ in 0..rows {
        let inside = (0..last).all(|d| offset[d] + idx[d] < shape[d]);
        if inside {
            let mut src_lin = 0u64;
            let mut dst_lin = 0u64;
            for d in 0..last {
                src_lin = src_lin * cshape[d] + idx[d];
                dst_lin = dst_lin * shape[d] + offset[d] + idx[d];
            }
            let s = (src_lin * cshape[last]) as usize * es;
            let t = (dst_lin * shape[last] + offset[last]) as usize * es;
            if let (Some(src), Some(dst)) = (
                chunk.get(s..s + row_len * es),
                out.get_mut(t..t + row_len * es),
            ) {
                dst.copy_from_slice(src);
            }
        }
        for d in (0..last).rev() {
            idx[d] += 1;
            if idx[d] < cshape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// All elements of a dataset, decoded (vlen strings and sequences resolved).
pub async fn read_values(
    src: &dyn RangeSource,
    file: &File,
    ds: &Dataset,
) -> Result<Vec<Value>, Error> {
    let raw = read_raw(src, file, ds).await?;
    let ctx = Ctx::new(
        file.size_of_offsets,
        file.size_of_lengths,
        file.base_address,
    );
    let mut heaps: HashMap<u64, global_heap::Collection> = HashMap::new();
    for _round in 0..16 {
        let lookup = |id: value::GlobalId| {
            heaps
                .get(&id.0)
                .and_then(|c| c.objects.get(&(id.1 as u16)).cloned())
        };
        let d = value::decode(
            &ds.datatype,
            ds.dataspace.num_elements(),
            &raw,
            &ctx,
            &lookup,
        )
        .map_err(|e| err(file, ds, e))?;
        if d.missing.is_empty() {
            return Ok(d.values);
        }
        // Collections are at least 4 KiB; read that, then the rest if larger.
        let mut want: Vec<(u64, u64)> = d
            .missing
            .iter()
            .map(|a| (*a, global_heap::MIN_COLLECTION))
            .collect();
        for _ in 0..2 {
            let ranges: Vec<_> = want.iter().map(|(a, l)| *a..a.saturating_add(*l)).collect();
            let got = fetch(src, file, &ranges).await?;
            let mut again = Vec::new();
            for ((a, _), b) in want.iter().zip(got) {
                match global_heap::parse(&b, *a, &ctx) {
                    Ok(c) => {
                        heaps.insert(*a, c);
                    }
                    Err(crate::parse::StructError::Short { need: Some(n) })
                        if n > b.len() as u64 && n <= MAX_RAW_BYTES =>
                    {
                        again.push((*a, n))
                    }
                    Err(e) => {
                        return Err(Error::Format {
                            file: file.source.clone(),
                            error: e.into_format("global heap collection", *a, b.len()),
                        });
                    }
                }
            }
            if again.is_empty() {
                break;
            }
            want = again;
        }
    }
    Err(err(file, ds, "vlen data nested too deeply"))
}
