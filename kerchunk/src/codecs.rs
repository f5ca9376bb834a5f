//! HDF5 filter pipelines to numcodecs configurations.
//!
//! Every filter goes into zarr `filters`, in HDF5 pipeline order, with
//! `compressor: null` (as kerchunk does). zarr applies `filters` in order on
//! encode and in reverse on decode, which is exactly HDF5's pipeline.
//!
//! | HDF5 filter (id)      | numcodecs                                             |
//! |-----------------------|-------------------------------------------------------|
//! | deflate (1)           | `{"id":"zlib","level":L}`                             |
//! | shuffle (2)           | `{"id":"shuffle","elementsize":<dtype itemsize>}`     |
//! | fletcher32 (3)        | `{"id":"fletcher32"}` (numcodecs >= 0.12 verifies the |
//! |                       | trailing 4-byte checksum and strips it; kerchunk      |
//! |                       | drops such datasets)                                  |
//! | blosc (32001)         | `{"id":"blosc",...}` from cd_values, as kerchunk      |
//! | zstd (32015)          | `{"id":"zstd","level":L,"checksum":false}`            |
//! | bzip2 (307)           | `{"id":"bz2","level":L}` (the HDF5 filter stores a    |
//! |                       | plain bzip2 stream, which numcodecs' bz2 decodes)     |
//! | lzf (32000)           | `{"id":"imagecodecs_lzf","header":false}` (raw LZF)   |
//! | lz4 (32004)           | `{"id":"imagecodecs_lz4h5"}`: HDF5's LZ4 framing      |
//! |                       | (BE sizes, blocks, raw blocks) is imagecodecs' lz4h5  |
//! | bitshuffle (32008)    | `{"id":"imagecodecs_bitshuffle","itemsize","blocksize"}`; |
//! |                       | with LZ4 (cd[4] = 2) `imagecodecs_lz4h5` after it: the |
//! |                       | filter's framing (8-byte size, 4-byte block bytes,     |
//! |                       | size-prefixed LZ4 blocks) is lz4h5's, as long as the   |
//! |                       | chunk has a multiple of 8 elements (else bitshuffle    |
//! |                       | appends the leftover bytes unprefixed: refused)        |
//! | szip (4)              | `{"id":"imagecodecs_szip", options_mask,              |
//! |                       | pixels_per_block, bits_per_pixel, pixels_per_scanline}` |
//! |                       | = the file's cd_values (HDF5's 4-byte size header =    |
//! |                       | imagecodecs' `header: true`)                          |
//! | nbit (5), scaleoffset (6) | no codec: the whole dataset is decoded (hdf5-lite) |
//! |                       | and inlined unfiltered when it decodes to at most      |
//! |                       | `max_reencode_bytes` (translate.rs `needs_decoding`), |
//! |                       | else the dataset gets a warning                        |
//! | anything else         | unrepresentable: the dataset gets a warning           |
//!
//! The `imagecodecs_*` ids exist in numcodecs once a reader has run
//! `imagecodecs.numcodecs.register_codecs()` (imagecodecs 2026.3.6 was
//! checked); kerchunk/README.md lists which outputs need it.
//!
//! **Per-chunk filter masks.** A chunk whose `filter_mask` skips filters was
//! stored through a shorter pipeline than the array's codec list describes,
//! and zarr has one codec list per array. We decode such a chunk through the
//! filters that *were* applied and re-encode it through the full pipeline
//! ([`reencode`]), then inline the result (base64), so the array keeps one
//! codec list and reads correctly. That needs every filter in the pipeline to
//! be one we can run both ways (shuffle, deflate, fletcher32) and the chunk
//! to be no larger than `TranslateOptions::max_reencode_bytes`; otherwise
//! the dataset is reported as unrepresentable, naming the chunk and the
//! skipped filters. (kerchunk ignores masks, silently producing chunks that
//! fail to decode.)

use std::io::Write;

use hdf5_lite::checksum::fletcher32;
use hdf5_lite::{FILTER_DEFLATE, FILTER_FLETCHER32, FILTER_SHUFFLE, Filter};

use crate::json::{Json, object};

pub const FILTER_SZIP: u16 = 4;
pub const FILTER_BZIP2: u16 = 307;
/// bitshuffle's cd_values[4] for LZ4 compression after the shuffle.
const BSHUF_H5_COMPRESS_LZ4: u64 = 2;
pub const FILTER_LZF: u16 = 32000;
pub const FILTER_BLOSC: u16 = 32001;
pub const FILTER_LZ4: u16 = 32004;
pub const FILTER_BITSHUFFLE: u16 = 32008;
pub const FILTER_ZSTD: u16 = 32015;

fn cd(f: &Filter, i: usize) -> Option<u64> {
    f.client_data.get(i).map(|v| u64::from(*v))
}

/// The numcodecs configuration for one HDF5 filter, or why there is none.
pub fn codec_for(f: &Filter, elem_size: u32) -> Result<Json, String> {
    let name = f.name.as_deref().unwrap_or("");
    match f.id {
        FILTER_DEFLATE => Ok(object([
            ("id", Json::from("zlib")),
            ("level", Json::UInt(cd(f, 0).unwrap_or(6))),
        ])),
        FILTER_SHUFFLE => Ok(object([
            ("id", Json::from("shuffle")),
            ("elementsize", Json::UInt(u64::from(elem_size))),
        ])),
        FILTER_FLETCHER32 => Ok(object([("id", Json::from("fletcher32"))])),
        FILTER_BLOSC => {
            const CNAMES: [&str; 6] = ["blosclz", "lz4", "lz4hc", "snappy", "zlib", "zstd"];
            let compcode = cd(f, 6).unwrap_or(0) as usize;
            let cname = CNAMES
                .get(compcode)
                .ok_or_else(|| format!("blosc compressor code {compcode} is unknown"))?;
            Ok(object([
                ("id", Json::from("blosc")),
                ("blocksize", Json::UInt(cd(f, 3).unwrap_or(0))),
                ("clevel", Json::UInt(cd(f, 4).unwrap_or(5))),
                ("shuffle", Json::UInt(cd(f, 5).unwrap_or(1))),
                ("cname", Json::from(*cname)),
            ]))
        }
        FILTER_ZSTD => Ok(object([
            ("id", Json::from("zstd")),
            ("level", Json::UInt(cd(f, 0).unwrap_or(3))),
            ("checksum", Json::Bool(false)),
        ])),
        FILTER_BZIP2 => Ok(object([
            ("id", Json::from("bz2")),
            ("level", Json::UInt(cd(f, 0).unwrap_or(9).clamp(1, 9))),
        ])),
        FILTER_SZIP => {
            let c = |i: usize, key: &'static str| {
                cd(f, i)
                    .map(|v| (key, Json::UInt(v)))
                    .ok_or_else(|| format!("szip filter without client data value {i} ({key})"))
            };
            Ok(object([
                ("id", Json::from("imagecodecs_szip")),
                c(0, "options_mask")?,
                c(1, "pixels_per_block")?,
                c(2, "bits_per_pixel")?,
                c(3, "pixels_per_scanline")?,
                ("header", Json::Bool(true)),
            ]))
        }
        5 => Err("uses the nbit filter, which numcodecs cannot decode".into()),
        6 => Err("uses the scaleoffset filter, which numcodecs cannot decode".into()),
        FILTER_LZF => Ok(object([
            ("id", Json::from("imagecodecs_lzf")),
            ("header", Json::Bool(false)),
        ])),
        FILTER_LZ4 => Ok(lz4h5()),
        FILTER_BITSHUFFLE => Ok(object([
            ("id", Json::from("imagecodecs_bitshuffle")),
            (
                "itemsize",
                Json::UInt(cd(f, 2).unwrap_or(u64::from(elem_size))),
            ),
            ("blocksize", Json::UInt(cd(f, 3).unwrap_or(0))),
        ])),
        id => Err(format!(
            "uses filter id {id}{} with client data {:?}, which has no numcodecs equivalent",
            if name.is_empty() {
                String::new()
            } else {
                format!(" ({name})")
            },
            f.client_data
        )),
    }
}

fn lz4h5() -> Json {
    object([("id", Json::from("imagecodecs_lz4h5"))])
}

/// The whole pipeline as zarr `filters`, for chunks of `chunk_elems`
/// elements.
pub fn pipeline(filters: &[Filter], elem_size: u32, chunk_elems: u64) -> Result<Vec<Json>, String> {
    let mut out = Vec::with_capacity(filters.len() + 1);
    for f in filters {
        out.push(codec_for(f, elem_size)?);
        if f.id == FILTER_BITSHUFFLE {
            match cd(f, 4).unwrap_or(0) {
                0 => {}
                BSHUF_H5_COMPRESS_LZ4 if chunk_elems.is_multiple_of(8) => out.push(lz4h5()),
                BSHUF_H5_COMPRESS_LZ4 => {
                    return Err(format!(
                        "uses bitshuffle+LZ4 on chunks of {chunk_elems} elements (not a multiple of 8): the filter appends the leftover bytes outside its LZ4 framing, which no numcodecs codec reads"
                    ));
                }
                other => {
                    return Err(format!(
                        "uses bitshuffle with compressor {other} (3 = zstd), which numcodecs cannot decode in bitshuffle's framing"
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// Names of the filters a mask skips, for messages.
pub fn skipped_names(filters: &[Filter], mask: u32) -> Vec<String> {
    filters
        .iter()
        .enumerate()
        .filter(|(i, _)| *i < 32 && mask & (1 << i) != 0)
        .map(|(_, f)| match f.name.as_deref() {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => format!("filter {}", f.id),
        })
        .collect()
}

/// True when [`reencode`] can handle every filter of the pipeline.
pub fn can_reencode(filters: &[Filter]) -> bool {
    filters
        .iter()
        .all(|f| matches!(f.id, FILTER_DEFLATE | FILTER_SHUFFLE | FILTER_FLETCHER32))
}

/// Turn a chunk stored with `mask` (bit i set: filter i skipped) into the
/// bytes the full pipeline would have produced.
pub fn reencode(
    filters: &[Filter],
    mask: u32,
    stored: &[u8],
    elem_size: u32,
) -> Result<Vec<u8>, String> {
    // undo the filters that were applied (shared with hdf5-lite's reader)
    let mut data = hdf5_lite::data::unfilter(stored.to_vec(), filters, mask, elem_size as usize)?;
    // apply the whole pipeline
    for f in filters {
        data = match f.id {
            FILTER_DEFLATE => deflate(&data, f.client_data.first().copied().unwrap_or(6))?,
            FILTER_SHUFFLE => shuffle(&data, elem_size as usize),
            FILTER_FLETCHER32 => {
                let sum = fletcher32(&data);
                let mut d = data;
                d.extend_from_slice(&sum.to_le_bytes());
                d
            }
            id => return Err(format!("cannot encode filter {id}")),
        };
    }
    Ok(data)
}

fn deflate(data: &[u8], level: u32) -> Result<Vec<u8>, String> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(level.min(9)));
    e.write_all(data)
        .map_err(|err| format!("deflate failed: {err}"))?;
    e.finish().map_err(|err| format!("deflate failed: {err}"))
}

/// HDF5/numcodecs byte shuffle; a trailing partial element is copied as is.
pub fn shuffle(data: &[u8], elem: usize) -> Vec<u8> {
    if elem <= 1 {
        return data.to_vec();
    }
    let n = data.len() / elem;
    let mut out = vec![0u8; data.len()];
    for i in 0..n {
        for b in 0..elem {
            out[b * n + i] = data[i * elem + b];
        }
    }
    out[n * elem..].copy_from_slice(&data[n * elem..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdf5_lite::data::unshuffle;

    fn f(id: u16, cd: &[u32]) -> Filter {
        Filter {
            id,
            name: None,
            optional: false,
            client_data: cd.to_vec(),
        }
    }

    #[test]
    fn codec_table() {
        let c = |x: &Filter| codec_for(x, 4).map(|j| j.to_compact());
        assert_eq!(c(&f(1, &[4])).unwrap(), r#"{"id":"zlib","level":4}"#);
        assert_eq!(
            c(&f(2, &[4])).unwrap(),
            r#"{"elementsize":4,"id":"shuffle"}"#
        );
        assert_eq!(c(&f(3, &[])).unwrap(), r#"{"id":"fletcher32"}"#);
        assert_eq!(
            c(&f(32001, &[2, 2, 4, 4000, 5, 1, 5])).unwrap(),
            r#"{"blocksize":4000,"clevel":5,"cname":"zstd","id":"blosc","shuffle":1}"#
        );
        assert_eq!(
            c(&f(32015, &[7])).unwrap(),
            r#"{"checksum":false,"id":"zstd","level":7}"#
        );
        assert_eq!(c(&f(307, &[9])).unwrap(), r#"{"id":"bz2","level":9}"#);
        for bad in [5, 6, 32013] {
            assert!(c(&f(bad, &[])).is_err(), "{bad}");
        }
        assert_eq!(
            c(&f(32000, &[])).unwrap(),
            r#"{"header":false,"id":"imagecodecs_lzf"}"#
        );
        assert_eq!(c(&f(32004, &[0])).unwrap(), r#"{"id":"imagecodecs_lz4h5"}"#);
        assert_eq!(
            c(&f(4, &[169, 16, 32, 160])).unwrap(),
            r#"{"bits_per_pixel":32,"header":true,"id":"imagecodecs_szip","options_mask":169,"pixels_per_block":16,"pixels_per_scanline":160}"#
        );
        assert!(c(&f(4, &[169, 16])).is_err());
        let bs = |cd: &[u32], n: u64| {
            pipeline(&[f(32008, cd)], 4, n).map(|p| Json::Array(p).to_compact())
        };
        assert_eq!(
            bs(&[0, 4, 4, 0, 0], 25).unwrap(),
            r#"[{"blocksize":0,"id":"imagecodecs_bitshuffle","itemsize":4}]"#
        );
        assert_eq!(
            bs(&[0, 4, 4, 64, 2], 160).unwrap(),
            r#"[{"blocksize":64,"id":"imagecodecs_bitshuffle","itemsize":4},{"id":"imagecodecs_lz4h5"}]"#
        );
        assert!(bs(&[0, 4, 4, 0, 2], 25).is_err());
        assert!(bs(&[0, 4, 4, 0, 3], 160).is_err());
        assert!(c(&f(32001, &[2, 2, 4, 4000, 5, 1, 9])).is_err());
        let p = pipeline(&[f(2, &[4]), f(1, &[6]), f(3, &[])], 4, 16).unwrap();
        assert_eq!(
            Json::Array(p).to_compact(),
            r#"[{"elementsize":4,"id":"shuffle"},{"id":"zlib","level":6},{"id":"fletcher32"}]"#
        );
    }

    #[test]
    fn fletcher32_matches_numcodecs() {
        // numcodecs.fletcher32().encode(np.arange(4, dtype="u1")) ends with 04 02 05 02
        assert_eq!(fletcher32(&[0, 1, 2, 3]).to_le_bytes(), [4, 2, 5, 2]);
        // odd length and > 360 words exercise the other paths; compare with a
        // direct (unreduced, u64) computation
        let data: Vec<u8> = (0..2001u32).map(|i| (i * 7 + 3) as u8).collect();
        let (mut a, mut b) = (0u64, 0u64);
        for w in data.chunks(2) {
            let v = (u64::from(w[0]) << 8) | w.get(1).map_or(0, |x| u64::from(*x));
            a = (a + v) % 65535;
            b = (b + a) % 65535;
        }
        let got = fletcher32(&data);
        assert_eq!(u64::from(got & 0xffff) % 65535, a);
        assert_eq!(u64::from(got >> 16) % 65535, b);
    }

    #[test]
    fn shuffle_round_trip() {
        let d: Vec<u8> = (0..11).collect();
        let s = shuffle(&d, 4);
        assert_eq!(s, vec![0, 4, 1, 5, 2, 6, 3, 7, 8, 9, 10]);
        assert_eq!(unshuffle(&s, 4), d);
    }

    #[test]
    fn reencode_masked_chunks() {
        let raw: Vec<u8> = (0..64u8).collect();
        let pipe = [f(2, &[4]), f(1, &[4]), f(3, &[])];
        let full = reencode(
            &pipe,
            0,
            &{
                let s = shuffle(&raw, 4);
                let mut d = deflate(&s, 4).unwrap();
                let sum = fletcher32(&d);
                d.extend_from_slice(&sum.to_le_bytes());
                d
            },
            4,
        )
        .unwrap();
        // deflate skipped (bit 1): stored = fletcher(shuffle(raw))
        let mut stored = shuffle(&raw, 4);
        let sum = fletcher32(&stored);
        stored.extend_from_slice(&sum.to_le_bytes());
        let fixed = reencode(&pipe, 0b010, &stored, 4).unwrap();
        // decoding the fixed chunk through the full pipeline gives raw back
        assert_eq!(
            hdf5_lite::data::unfilter(fixed.clone(), &pipe, 0, 4).unwrap(),
            raw
        );
        assert_eq!(fixed, full);
        // everything skipped
        let fixed = reencode(&pipe, 0b111, &raw, 4).unwrap();
        assert_eq!(fixed, full);
        // corrupt checksum is an error
        let mut bad = stored.clone();
        bad[0] ^= 1;
        assert!(reencode(&pipe, 0b010, &bad, 4).is_err());
        assert!(can_reencode(&pipe));
        assert!(!can_reencode(&[f(32001, &[])]));
        assert_eq!(skipped_names(&pipe, 0b011), vec!["filter 2", "filter 1"]);
    }
}
