//! Reading raw data: only for the few places an indexer must look at values
//! (embedding vlen strings, which have no byte-range representation;
//! decoding n-bit / scale-offset datasets, which no numcodecs codec reads;
//! tests). Chunk bytes are fetched in one batch, filters undone (deflate,
//! shuffle, fletcher32, n-bit, scale-offset), and elements decoded, with vlen data resolved from
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
            FILTER_NBIT => nbit_decode(&data, &f.client_data)?,
            FILTER_SCALEOFFSET => scaleoffset_decode(&data, &f.client_data)?,
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

/// Reads a bit stream most significant bit first, as HDF5's n-bit and
/// scale-offset filters pack values (each value's bits from its most
/// significant one down, values back to back, no padding between them).
struct BitReader<'a> {
    buf: &'a [u8],
    bit: u64,
}

impl BitReader<'_> {
    /// The next `n` (<= 64) bits as an unsigned number.
    fn read(&mut self, mut n: u32) -> Result<u64, String> {
        let mut v = 0u64;
        while n > 0 {
            let byte = *self
                .buf
                .get((self.bit / 8) as usize)
                .ok_or("packed data truncated")?;
            let avail = 8 - (self.bit % 8) as u32;
            let take = avail.min(n);
            let bits = (u64::from(byte) >> (avail - take)) & ((1u64 << take) - 1);
            v = (v << take) | bits;
            self.bit += u64::from(take);
            n -= take;
        }
        Ok(v)
    }
}

/// `value` as `size` (<= 8) bytes in the given order.
fn put_uint(out: &mut Vec<u8>, value: u64, size: usize, big_endian: bool) {
    let le = value.to_le_bytes();
    let bytes = &le[..size.min(8)];
    if big_endian {
        out.extend(bytes.iter().rev());
    } else {
        out.extend_from_slice(bytes);
    }
}

/// Output bytes of `nelmts` elements of `size` bytes, refused above
/// [`MAX_RAW_BYTES`] (the counts come from the file).
fn decoded_len(what: &str, nelmts: u32, size: u32) -> Result<usize, String> {
    let total = u64::from(nelmts) * u64::from(size);
    if total > MAX_RAW_BYTES {
        return Err(format!(
            "{what}: {nelmts} elements of {size} bytes exceed the {MAX_RAW_BYTES}-byte limit"
        ));
    }
    Ok(total as usize)
}

/// Undo HDF5's n-bit filter (`H5Z_FILTER_NBIT`, H5Znbit.c) for atomic
/// (integer and floating-point) datatypes. Client data: `[nparms,
/// need_not_compress, nelmts, class (1 atomic), size, order (0 LE, 1 BE),
/// precision, offset]`. Each element's `precision` significant bits
/// (starting at bit `offset`) are packed back to back; decoding puts them
/// back at `offset` with every padding bit 0, i.e. the bytes of the file
/// datatype (a reader's conversion to a full-width type, such as sign
/// extension, is [`fixed_point_to_full`]). Array and compound datatypes
/// (classes 2, 3) are refused.
pub fn nbit_decode(data: &[u8], cd: &[u32]) -> Result<Vec<u8>, String> {
    let c = |i: usize| {
        cd.get(i)
            .copied()
            .ok_or_else(|| format!("nbit: client data {cd:?} too short"))
    };
    if usize::try_from(c(0)?).ok() != Some(cd.len()) {
        return Err(format!(
            "nbit: client data {cd:?} does not hold cd[0] values"
        ));
    }
    if c(1)? != 0 {
        // "need not compress": the datatype has no padding bits; stored as is
        return Ok(data.to_vec());
    }
    let nelmts = c(2)?;
    match c(3)? {
        1 => {}
        2 | 3 => {
            return Err(
                "nbit: array and compound datatypes are not supported (only integers and floats)"
                    .into(),
            );
        }
        k => return Err(format!("nbit: unknown datatype class code {k}")),
    }
    let (size, order, precision, offset) = (c(4)?, c(5)?, c(6)?, c(7)?);
    if size == 0 || size > 8 {
        return Err(format!("nbit: element size {size} is not 1..=8 bytes"));
    }
    if precision > size * 8 || offset > size * 8 - precision {
        return Err(format!(
            "nbit: precision {precision} at offset {offset} does not fit {size} bytes"
        ));
    }
    if order > 1 {
        return Err(format!("nbit: unknown byte order code {order}"));
    }
    let total = decoded_len("nbit", nelmts, size)?;
    if u64::from(nelmts) * u64::from(precision) > data.len() as u64 * 8 {
        return Err(format!(
            "nbit: {} bytes cannot hold {nelmts} values of {precision} bits",
            data.len()
        ));
    }
    let mut out = Vec::with_capacity(total);
    let mut bits = BitReader { buf: data, bit: 0 };
    for _ in 0..nelmts {
        let v = bits.read(precision)?;
        put_uint(&mut out, v << offset, size as usize, order == 1);
    }
    Ok(out)
}

/// What HDF5's integer conversion gives a reader of a fixed-point type
/// whose precision is less than its size (or whose bit offset is not 0),
/// as n-bit datasets have: every element's `bit_precision` bits at
/// `bit_offset`, moved to bit 0 and sign-extended (signed types) or
/// zero-extended to the full size, in place. A no-op for other types.
pub fn fixed_point_to_full(bytes: &mut [u8], dt: &Datatype) {
    let Datatype::FixedPoint {
        size,
        order,
        signed,
        bit_offset,
        bit_precision,
    } = dt
    else {
        return;
    };
    let (size, off, prec) = (
        *size as usize,
        u32::from(*bit_offset),
        u32::from(*bit_precision),
    );
    if size == 0 || size > 8 || (off == 0 && prec as usize == size * 8) || prec == 0 {
        return;
    }
    if off + prec > size as u32 * 8 {
        return;
    }
    let be = *order == ByteOrder::BigEndian;
    for e in bytes.chunks_exact_mut(size) {
        let mut le = [0u8; 8];
        le[..size].copy_from_slice(e);
        if be {
            le[..size].reverse();
        }
        let v = (u64::from_le_bytes(le) >> off) & (u64::MAX >> (64 - prec));
        let v = if *signed && prec < 64 && (v >> (prec - 1)) & 1 == 1 {
            v | (u64::MAX << prec)
        } else {
            v
        };
        let mut b = v.to_le_bytes();
        if be {
            b[..size].reverse();
        }
        e.copy_from_slice(&b[..size]);
    }
}

/// Undo HDF5's scale-offset filter (`H5Z_FILTER_SCALEOFFSET`,
/// H5Zscaleoffset.c). Client data: `[scale_type (0 float D-scale, 1 float
/// E-scale, 2 integer), scale_factor, nelmts, class (0 integer, 1 float),
/// size, sign (0 unsigned, 1 two's complement), order (0 LE, 1 BE),
/// fill_defined, fill value...]`. A chunk starts with a 21-byte header
/// (minbits as 4 LE bytes, the byte size of minval, minval LE) followed by
/// each element's `minbits` low bits packed back to back. Integers are
/// `packed + minval`; D-scaled floats `packed / 10^D + min` in the type's
/// own precision, as HDF5 computes them; with a fill value defined, the
/// all-ones packed value stands for it. E-scaling is refused (HDF5 cannot
/// write it either). HDF5 works on the writer's native byte order (minval,
/// fill value, full-precision chunks): little-endian writers are assumed,
/// as every platform HDF5 supports today is.
pub fn scaleoffset_decode(data: &[u8], cd: &[u32]) -> Result<Vec<u8>, String> {
    let c = |i: usize| {
        cd.get(i)
            .copied()
            .ok_or_else(|| format!("scaleoffset: client data {cd:?} too short"))
    };
    let (scale_type, scale_factor, nelmts) = (c(0)?, c(1)? as i32, c(2)?);
    let (class, size, order, fill_defined) = (c(3)?, c(4)?, c(6)?, c(7)? == 1);
    if !matches!(size, 1 | 2 | 4 | 8) || (class == 1 && !matches!(size, 4 | 8)) {
        return Err(format!("scaleoffset: element size {size} is not supported"));
    }
    if order > 1 {
        return Err(format!("scaleoffset: unknown byte order code {order}"));
    }
    let bits_per = size * 8;
    let be = order == 1;
    // the fill value, as HDF5 copies it into cd[8..] (native, LE)
    let fill = u64::from(cd.get(8).copied().unwrap_or(0))
        | if size == 8 {
            u64::from(cd.get(9).copied().unwrap_or(0)) << 32
        } else {
            0
        };
    match (class, scale_type) {
        (0, 2) => {
            if scale_factor >= 0 && scale_factor as u32 == bits_per {
                // minimum bits = full precision: the filter stored the data as is
                return Ok(data.to_vec());
            }
            if scale_factor > bits_per as i32 {
                return Err(format!(
                    "scaleoffset: minimum bits {scale_factor} exceed the {bits_per}-bit type"
                ));
            }
        }
        (1, 0) => {}
        (1, 1) => return Err("scaleoffset: E-scaling is not supported (nor by HDF5)".into()),
        (k, t) => {
            return Err(format!(
                "scaleoffset: scale type {t} with datatype class {k} is invalid"
            ));
        }
    }
    let total = decoded_len("scaleoffset", nelmts, size)?;
    let header = data
        .get(..21)
        .ok_or("scaleoffset: chunk shorter than its 21-byte header")?;
    let minbits = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let minval_size = usize::from(header[4]).min(8);
    let minval = header[5..5 + minval_size]
        .iter()
        .rev()
        .fold(0u64, |v, b| (v << 8) | u64::from(*b));
    if minbits > bits_per {
        return Err(format!(
            "scaleoffset: {minbits} bits per value exceed the {bits_per}-bit type"
        ));
    }
    let packed = &data[21..];
    if minbits == bits_per {
        let raw = packed
            .get(..total)
            .ok_or("scaleoffset: full-precision chunk truncated")?;
        let mut out = raw.to_vec();
        if be {
            for e in out.chunks_exact_mut(size as usize) {
                e.reverse();
            }
        }
        return Ok(out);
    }
    if u64::from(nelmts) * u64::from(minbits) > packed.len() as u64 * 8 {
        return Err(format!(
            "scaleoffset: {} bytes cannot hold {nelmts} values of {minbits} bits",
            packed.len()
        ));
    }
    let type_mask = u64::MAX >> (64 - bits_per);
    let fill_mark = (1u64 << minbits) - 1; // minbits < 64 here
    let mut bits = BitReader {
        buf: packed,
        bit: 0,
    };
    let mut out = Vec::with_capacity(total);
    for _ in 0..nelmts {
        let v = bits.read(minbits)?;
        let value = if fill_defined && v == fill_mark {
            fill & type_mask
        } else if class == 0 {
            v.wrapping_add(minval) & type_mask
        } else {
            let d = scale_factor;
            if size == 4 {
                let min = f32::from_bits(minval as u32);
                ((v as u32 as i32 as f32) / 10f32.powf(d as f32) + min).to_bits() as u64
            } else {
                let min = f64::from_bits(minval);
                ((v as i64 as f64) / 10f64.powf(f64::from(d)) + min).to_bits()
            }
        };
        put_uint(&mut out, value, size as usize, be);
    }
    Ok(out)
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
            // n-bit / scale-offset decode cd[2] elements per chunk: HDF5
            // sets it to the chunk's element count; anything else is corrupt
            for f in &ds.filters {
                if matches!(f.id, FILTER_NBIT | FILTER_SCALEOFFSET)
                    && f.client_data.get(2).map(|n| u64::from(*n)) != Some(chunk_elems)
                {
                    return Err(err(
                        file,
                        ds,
                        format!(
                            "filter {} client data {:?} does not give the chunk's {chunk_elems} elements",
                            f.id, f.client_data
                        ),
                    ));
                }
            }
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
    if let Datatype::FloatingPoint {
        size,
        bit_offset,
        bit_precision,
        ..
    } = &ds.datatype
        && (*bit_offset != 0 || u32::from(*bit_precision) != size * 8)
    {
        return Err(err(
            file,
            ds,
            "floating point of reduced precision (needs HDF5's float conversion) is not supported",
        ));
    }
    let mut raw = read_raw(src, file, ds).await?;
    // reduced-precision integers (n-bit datasets) read as HDF5 converts them
    fixed_point_to_full(&mut raw, &ds.datatype);
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
                // a collection numbers its objects with 16 bits; a larger index
                // names no object (`as u16` would pick another one's bytes)
                .and_then(|c| c.objects.get(&u16::try_from(id.1).ok()?).cloned())
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
        // A collection already read that still lacks the object: the
        // reference names none (re-reading it would not help).
        if let Some(a) = d.missing.iter().find(|a| heaps.contains_key(a)) {
            return Err(err(
                file,
                ds,
                format!(
                    "a variable-length value names no object of the global heap collection at {a:#x}"
                ),
            ));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    fn int(size: u32, order: ByteOrder, prec: u16) -> Datatype {
        Datatype::FixedPoint {
            size,
            order,
            signed: true,
            bit_offset: 0,
            bit_precision: prec,
        }
    }

    // Chunks, client data and values below are h5py 3.15 / HDF5 1.14.6:
    // `read_direct_chunk`, `get_create_plist().get_filter(0)` and `d[...]`.
    const WANT: [i32; 6] = [-32768, 32767, -1, 0, 5, -300];

    #[test]
    fn nbit_integers_match_h5py() {
        // i32 LE with 16 bits of precision
        let mut got = nbit_decode(
            &hex("80007fffffff00000005fed400"),
            &[8, 0, 6, 1, 4, 0, 16, 0],
        )
        .unwrap();
        fixed_point_to_full(&mut got, &int(4, ByteOrder::LittleEndian, 16));
        let vals: Vec<i32> = got
            .chunks(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(vals, WANT);
        // i32 BE with 24 bits
        let mut got = nbit_decode(
            &hex("ff8000007fffffffff000000000005fffed400"),
            &[8, 0, 6, 1, 4, 1, 24, 0],
        )
        .unwrap();
        fixed_point_to_full(&mut got, &int(4, ByteOrder::BigEndian, 24));
        let vals: Vec<i32> = got
            .chunks(4)
            .map(|c| i32::from_be_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(vals, WANT);
        // need_not_compress: as is
        assert_eq!(
            nbit_decode(&[1, 2], &[8, 1, 6, 1, 4, 0, 32, 0]).unwrap(),
            [1, 2]
        );
    }

    #[test]
    fn nbit_hostile_client_data() {
        let d = hex("80007fffffff00000005fed400");
        for cd in [
            &[8, 0, 6, 1, 4, 0, 16][..],      // cd[0] != len
            &[8, 0, 6, 1, 4, 0, 40, 0],       // precision > size
            &[8, 0, 6, 1, 4, 0, 16, 20],      // offset + precision > size
            &[8, 0, 6, 1, 0, 0, 0, 0],        // size 0
            &[8, 0, 6, 1, 16, 0, 16, 0],      // size > 8
            &[8, 0, 7, 1, 4, 0, 16, 0],       // more values than bytes
            &[8, 0, u32::MAX, 1, 8, 0, 1, 0], // output over the cap
            &[8, 0, 6, 3, 4, 0, 16, 0],       // compound
            &[8, 0, 6, 1, 4, 2, 16, 0],       // byte order
        ] {
            assert!(nbit_decode(&d, cd).is_err(), "{cd:?}");
        }
    }

    const SO_CD_TAIL: [u32; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 935761856, 0, 20, 0];

    fn so_cd(head: [u32; 8]) -> Vec<u32> {
        head.iter().chain(&SO_CD_TAIL).copied().collect()
    }

    #[test]
    fn scaleoffset_integers_match_h5py() {
        let got = scaleoffset_decode(
            &hex("0700000008fbffffffffffffff0000000000000000003348011fc88e00"),
            &so_cd([2, 0, 8, 0, 2, 1, 0, 1]),
        )
        .unwrap();
        let vals: Vec<i16> = got
            .chunks(2)
            .map(|c| i16::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(vals, [-5, 7, 100, -5, 3, 0, 12, 9]);
        let got = scaleoffset_decode(
            &hex("0600000008c800000000000000000000000000000000adc100"),
            &so_cd([2, 0, 4, 0, 1, 0, 0, 1]),
        )
        .unwrap();
        assert_eq!(got, [200, 210, 255, 201]);
    }

    #[test]
    fn scaleoffset_floats_match_h5py() {
        // D-scale 2 (lossy: h5py reads 1.23, 3.1399999, and 0 for -0.001,
        // which is within 10^-2 of the fill value 0)
        let got = scaleoffset_decode(
            &hex("0b00000008000020c00000000000000000000000002ea003ffa349c5ffc0"),
            &so_cd([0, 2, 6, 1, 4, 0, 0, 1]),
        )
        .unwrap();
        let bits: Vec<u32> = got
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(bits, [1067282596, 3223322624, 0, 1078523330, 1092616192, 0]);
        let got = scaleoffset_decode(
            &hex("0e0000000800000000000004c000000000000000003a58000a09960a00"),
            &so_cd([0, 3, 4, 1, 8, 0, 0, 1]),
        )
        .unwrap();
        let bits: Vec<u64> = got
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(
            bits,
            [
                4608236261112822104,
                13836183955189006336,
                4620443267902809834,
                4614257573814616458
            ]
        );
    }

    #[test]
    fn scaleoffset_hostile_input() {
        let d = hex("0700000008fbffffffffffffff0000000000000000003348011fc88e00");
        let ok = so_cd([2, 0, 8, 0, 2, 1, 0, 1]);
        assert!(scaleoffset_decode(&d[..20], &ok).is_err()); // short header
        assert!(scaleoffset_decode(&d[..23], &ok).is_err()); // packed data truncated
        let mut big = d.clone();
        big[0] = 40; // minbits > 16
        assert!(scaleoffset_decode(&big, &ok).is_err());
        for cd in [
            so_cd([2, 0, 8, 0, 3, 1, 0, 1]),        // size 3
            so_cd([1, 4, 8, 1, 4, 0, 0, 1]),        // E-scale
            so_cd([0, 2, 8, 0, 2, 1, 0, 1]),        // D-scale on integers
            so_cd([2, 0, u32::MAX, 0, 8, 1, 0, 1]), // output over the cap
            so_cd([2, 0, 8, 0, 2, 1, 5, 1]),        // byte order
            so_cd([2, 99, 8, 0, 2, 1, 0, 1]),       // minimum bits > size
            vec![2, 0, 8],                          // too short
        ] {
            assert!(scaleoffset_decode(&d, &cd).is_err(), "{cd:?}");
        }
    }
}
