//! The concat coordinate: its numeric type, the byte ranges of remote
//! coordinate chunks, decoding each input's values (codecs undone through
//! `hdf5_lite::data::unfilter`, with its size cap), and the combined
//! timeline (sorted values, each input's position, each position's owner).

use std::io::Read as _;

use hdf5_lite::Filter;
use hdf5_lite::data::{MAX_RAW_BYTES, unfilter};

use super::fetch::{FetchRange, Fetched};
use super::input::{ArrayIn, Input};
use super::{CombineError, CombineOptions, Duplicates};
use crate::json::Json;
use crate::refs::{Ref, RefSet};
use crate::zarr::ZArray;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NumKind {
    Int,
    UInt,
    Float,
}

/// A plain numeric zarr dtype (`<f8`, `>i4`, `|u1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct NumType {
    pub kind: NumKind,
    pub size: usize,
    big: bool,
}

/// One coordinate value: `(sort key, little-endian bytes)`.
pub(super) type Value = (i128, [u8; 8]);

impl NumType {
    pub fn parse(dtype: &Json) -> Option<NumType> {
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
    pub fn native(&self) -> String {
        let k = match self.kind {
            NumKind::Int => 'i',
            NumKind::UInt => 'u',
            NumKind::Float => 'f',
        };
        let o = if self.size == 1 { '|' } else { '<' };
        format!("{o}{k}{}", self.size)
    }

    /// The value in `raw` (at least `size` bytes), or None for NaN.
    fn decode(&self, raw: &[u8]) -> Option<Value> {
        let mut le = [0u8; 8];
        le.get_mut(..self.size)?
            .copy_from_slice(raw.get(..self.size)?);
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

/// Undo a chunk's codecs (numcodecs `zlib`, `shuffle`, `gzip`), last first.
/// zlib and shuffle are HDF5's deflate and shuffle filters and go through
/// `unfilter` (one implementation, one size cap). gzip has no HDF5 filter,
/// so it is inflated here, under the same cap.
fn decode_codecs(meta: &ZArray, mut data: Vec<u8>, elem: usize) -> Result<Vec<u8>, String> {
    let filter = |id: u16, client_data: Vec<u32>| Filter {
        id,
        name: None,
        optional: false,
        client_data,
    };
    for c in meta.codecs()?.iter().rev() {
        data = match c.get("id").and_then(Json::as_str) {
            Some("zlib") => unfilter(data, &[filter(hdf5_lite::FILTER_DEFLATE, vec![])], 0, elem)
                .map_err(|e| format!("inflate failed: {e}"))?,
            Some("gzip") => {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(data.as_slice())
                    .take(MAX_RAW_BYTES)
                    .read_to_end(&mut out)
                    .map_err(|e| format!("inflate failed: {e}"))?;
                out
            }
            Some("shuffle") => {
                let es = match c.get("elementsize").and_then(Json::as_u64) {
                    None => vec![],
                    Some(es) => vec![u32::try_from(es).map_err(|_| "bad shuffle elementsize")?],
                };
                unfilter(data, &[filter(hdf5_lite::FILTER_SHUFFLE, es)], 0, elem)?
            }
            _ => return Err(format!("codec {} is not supported", c.to_compact())),
        };
    }
    Ok(data)
}

/// Ranges [`super::combine_with`] needs: remote chunks of each input's
/// concat coordinate (only the bytes that hold values when uncompressed).
pub fn coordinate_ranges(
    inputs: &[(String, RefSet)],
    opts: &CombineOptions,
) -> Result<Vec<FetchRange>, CombineError> {
    let mut out = Vec::new();
    let zkey = format!("{}/.zarray", opts.concat_dim);
    for (name, set) in inputs {
        let Some(Ok(Json::Object(zarray))) = set.get_json(&zkey) else {
            return Err(CombineError::NoCoordinate {
                input: name.clone(),
                dim: opts.concat_dim.clone(),
            });
        };
        // a malformed document is reported by the combine itself
        let Ok(meta) = ZArray::from_map(zarray) else {
            continue;
        };
        let (Some(&n), Some(&c)) = (meta.shape.first(), meta.chunks.first()) else {
            continue;
        };
        let elem = meta
            .dtype
            .as_ref()
            .and_then(NumType::parse)
            .map_or(0, |t| t.size as u64);
        let raw = !meta.has_codecs();
        for j in 0..n.div_ceil(c) {
            let key = format!("{}/{j}", opts.concat_dim);
            let r = match set.get(&key) {
                Some(r) => r,
                // the combine stops at the first missing chunk too; going
                // on would loop over a hostile shape's every chunk key
                None => break,
            };
            if let Ref::Range {
                url,
                offset,
                length,
            } = r
            {
                let need = if raw && elem > 0 {
                    (*length).min(c.min(n - j * c).saturating_mul(elem))
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

/// One input's coordinate values.
pub(super) struct CoordValues {
    pub ty: NumType,
    /// In file order (checked strictly increasing).
    pub values: Vec<Value>,
}

/// The coordinate array of one input and its numeric type.
fn coord_array<'i>(
    inp: &'i Input<'_>,
    dim: &str,
) -> Result<(&'i ArrayIn<'i>, NumType), CombineError> {
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
    if arr.rank() != 1 {
        return Err(cerr(format!("is {}-d, not 1-d", arr.rank())));
    }
    let dtype = arr.meta.dtype.clone().unwrap_or(Json::Null);
    let nt = NumType::parse(&dtype).ok_or_else(|| {
        cerr(format!(
            "dtype {} is not a plain number type",
            dtype.to_compact()
        ))
    })?;
    Ok((arr, nt))
}

pub(super) fn coord_values(
    inp: &Input<'_>,
    dim: &str,
    fetched: &Fetched,
) -> Result<CoordValues, CombineError> {
    let (arr, ty) = coord_array(inp, dim)?;
    let cerr = |msg: String| CombineError::Coordinate {
        input: inp.name.to_string(),
        var: dim.to_string(),
        msg,
    };
    let (n, c) = match (arr.meta.shape.first(), arr.meta.chunks.first()) {
        (Some(&n), Some(&c)) => (n, c),
        _ => return Err(cerr("is not 1-d".to_string())),
    };
    let raw = !arr.meta.has_codecs();
    let mut values = Vec::with_capacity(usize::try_from(n).unwrap_or(0).min(1 << 20));
    for j in 0..n.div_ceil(c) {
        let key = format!("{dim}/{j}");
        let take = c.min(n - j * c);
        let need = take.saturating_mul(ty.size as u64);
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
            decode_codecs(&arr.meta, bytes, ty.size).map_err(|e| cerr(format!("{key}: {e}")))?
        };
        let Some(valid) = usize::try_from(need).ok().and_then(|n| bytes.get(..n)) else {
            return Err(cerr(format!(
                "chunk {key} holds {} bytes, {need} needed",
                bytes.len()
            )));
        };
        for e in valid.chunks_exact(ty.size) {
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

/// Every input's coordinate must have the first listed input's type.
pub(super) fn check_types(
    idx: &[Input<'_>],
    coords: &[CoordValues],
    dim: &str,
) -> Result<(), CombineError> {
    let Some(ty) = coords.first().map(|c| c.ty) else {
        return Ok(());
    };
    for (i, c) in idx.iter().zip(coords).skip(1) {
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
    Ok(())
}

/// The combined coordinate and where each input goes in it.
pub(super) struct Timeline {
    pub ty: NumType,
    /// Every distinct value, sorted.
    pub all: Vec<Value>,
    pub total: u64,
    /// Position of each input's first value (`None`: the input has none).
    pub pos: Vec<Option<u64>>,
    /// The input that supplies each position.
    pub owner: Vec<Option<usize>>,
}

impl Timeline {
    /// `idx` and `coords` are in time order (see [`super::combine_with`]).
    pub fn build(
        idx: &[Input<'_>],
        coords: &[CoordValues],
        dim: &str,
        duplicates: Duplicates,
    ) -> Result<Timeline, CombineError> {
        let (Some(first), Some(c0)) = (idx.first(), coords.first()) else {
            return Err(CombineError::NoInputs);
        };
        let ty = c0.ty;
        let mut all: Vec<Value> = coords
            .iter()
            .flat_map(|c| c.values.iter().copied())
            .collect();
        all.sort_unstable_by_key(|v| v.0);
        all.dedup_by_key(|v| v.0);
        if all.is_empty() {
            return Err(CombineError::Coordinate {
                input: first.name.to_string(),
                var: dim.to_string(),
                msg: "no coordinate values in any input".into(),
            });
        }
        let mut pos = Vec::with_capacity(idx.len());
        for (inp, c) in idx.iter().zip(coords) {
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
        for (i, (p, c)) in pos.iter().zip(coords).enumerate() {
            let Some(p) = *p else { continue };
            let p = p as usize;
            // the values were just found at p.., so the slice exists
            for slot in owner.iter_mut().skip(p).take(c.values.len()) {
                if duplicates == Duplicates::LastWins || slot.is_none() {
                    *slot = Some(i);
                }
            }
        }
        Ok(Timeline {
            ty,
            total: all.len() as u64,
            all,
            pos,
            owner,
        })
    }

    /// The combined coordinate's bytes (little-endian, one per value).
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.all.len() * self.ty.size);
        for (_, le) in &self.all {
            out.extend_from_slice(le.get(..self.ty.size).unwrap_or_default());
        }
        out
    }
}
