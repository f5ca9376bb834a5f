//! NetCDF-3 files (classic `CDF\x01`, 64-bit offset `CDF\x02`, CDF-5
//! `CDF\x05`): the header parser ([`header`]), where each variable's bytes
//! are ([`Layout`]), the 1-2 round-trip read of the header over a
//! [`RangeSource`] ([`read`]), and the mapping into the HDF5 [`model`]
//! that `inspect` prints.
//!
//! Data layout (NetCDF Classic Format specification, "Computing file
//! offsets"): a fixed-size variable is one contiguous block at `begin`; a
//! record variable has one slab per record, slab `i` at
//! `begin + i * recsize`, where `recsize` is the sum of every record
//! variable's slab size rounded up to 4 bytes, except that a file with a
//! single record variable does not pad (its records are packed).
//!
//! [`model`]: crate::model

pub mod header;

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use serde::Serialize;

use crate::error::{Error, FormatError};
use crate::model;
use crate::source::RangeSource;
use crate::walk::{Options, Stats};
pub use header::{Format, Header, HeaderError, NcType, is_netcdf3};

/// The structure name errors carry.
pub const STRUCTURE: &str = "netCDF-3 header";

/// Where one variable's bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layout {
    /// Shape as readers see it (the record dimension has `numrecs`).
    pub shape: Vec<u64>,
    /// True for a variable along the record dimension.
    pub record: bool,
    /// Bytes of one element.
    pub elem: u64,
    /// Bytes of the whole variable (fixed) or of one record's slab
    /// (record variable), without padding.
    pub slab: u64,
    /// Offset of the data (of record 0).
    pub begin: u64,
    /// Distance between consecutive records (`recsize`); 0 for fixed.
    pub stride: u64,
}

impl Layout {
    /// Number of chunks: records for a record variable, else 1 (0 when
    /// the variable has no bytes).
    pub fn chunks(&self) -> u64 {
        match (self.record, self.slab) {
            (_, 0) => 0,
            (true, _) => self.shape.first().copied().unwrap_or(0),
            (false, _) => 1,
        }
    }

    /// File offset of chunk `i`.
    pub fn chunk_offset(&self, i: u64) -> u64 {
        self.begin + i * self.stride
    }

    /// One past the last byte the variable occupies.
    pub fn end(&self) -> u64 {
        match self.chunks() {
            0 => self.begin,
            n => self.chunk_offset(n - 1) + self.slab,
        }
    }
}

/// A NetCDF-3 file after its header was read.
#[derive(Debug, Clone, Serialize)]
pub struct File {
    pub source: String,
    pub size: u64,
    pub header: Header,
    /// One per `header.variables`, same order.
    pub layouts: Vec<Layout>,
}

fn bad(field: &str, reason: impl Into<String>) -> HeaderError {
    HeaderError::Bad {
        offset: 0,
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// Every variable's layout. Errors name the variable; `max_records` bounds
/// the number of record chunks (a hostile `numrecs` must not allocate
/// billions of references).
pub fn layouts(h: &Header, max_records: u64) -> Result<Vec<Layout>, HeaderError> {
    let record_dim = h.dimensions.iter().position(|d| d.length == 0);
    let mut out = Vec::with_capacity(h.variables.len());
    let mut recsize: u64 = 0;
    let mut nrec_vars = 0usize;
    for v in &h.variables {
        let field = format!("variable '{}'", v.name);
        let mut shape = Vec::with_capacity(v.dimids.len());
        let mut record = false;
        let mut product: u64 = 1;
        for (k, id) in v.dimids.iter().enumerate() {
            let d = usize::try_from(*id)
                .ok()
                .and_then(|i| h.dimensions.get(i))
                .ok_or_else(|| bad(&field, format!("dimid {id} out of range")))?;
            if record_dim == Some(*id as usize) {
                if k != 0 {
                    return Err(bad(
                        &field,
                        format!("record dimension '{}' is not its first dimension", d.name),
                    ));
                }
                record = true;
                shape.push(0);
            } else {
                shape.push(d.length);
                product = product
                    .checked_mul(d.length)
                    .ok_or_else(|| bad(&field, "size overflows 64 bits"))?;
            }
        }
        let elem = v.nc_type.size();
        let slab = product
            .checked_mul(elem)
            .filter(|s| s.checked_add(3).is_some())
            .ok_or_else(|| bad(&field, "size overflows 64 bits"))?;
        if record {
            if h.numrecs == header::STREAMING {
                return Err(bad(
                    "numrecs",
                    "indefinite (streaming) record count is not supported",
                ));
            }
            if h.numrecs > max_records {
                return Err(bad(
                    "numrecs",
                    format!(
                        "{} records exceed the limit of {max_records} chunks per variable",
                        h.numrecs
                    ),
                ));
            }
            shape[0] = h.numrecs;
            nrec_vars += 1;
            recsize = recsize
                .checked_add(slab.div_ceil(4) * 4)
                .ok_or_else(|| bad("record size", "overflows 64 bits"))?;
        }
        out.push(Layout {
            shape,
            record,
            elem,
            slab,
            begin: v.begin,
            stride: 0,
        });
    }
    // A single record variable is not padded: its records are packed.
    if nrec_vars == 1
        && let Some(l) = out.iter().find(|l| l.record)
    {
        recsize = l.slab;
    }
    for (l, v) in out.iter_mut().zip(&h.variables) {
        if l.record {
            l.stride = recsize;
            let n = l.chunks();
            if n > 0 {
                (n - 1)
                    .checked_mul(recsize)
                    .and_then(|x| x.checked_add(l.begin))
                    .and_then(|x| x.checked_add(l.slab))
                    .ok_or_else(|| {
                        bad(
                            &format!("variable '{}'", v.name),
                            "records overflow 64 bits",
                        )
                    })?;
            }
        } else {
            l.begin.checked_add(l.slab).ok_or_else(|| {
                bad(
                    &format!("variable '{}'", v.name),
                    "extent overflows 64 bits",
                )
            })?;
        }
    }
    Ok(out)
}

fn format_error(file: &str, e: HeaderError, had: u64) -> Error {
    let error = match e {
        HeaderError::Short { need, field, .. } => FormatError::new(
            STRUCTURE,
            0,
            format!("truncated in {field}: needs {need} bytes, file has {had}"),
        ),
        HeaderError::Bad {
            offset,
            field,
            reason,
        } => FormatError::new(STRUCTURE, offset, format!("{field}: {reason}")),
    };
    Error::Format {
        file: file.to_string(),
        error,
    }
}

/// Read the header given the speculative head already fetched from offset
/// 0 (and counted in `stats`): parse it, and when it is longer than the
/// head fetch the rest in one more request, sized by the parser's estimate
/// (the variables still to come at the average size of those read, plus a
/// quarter) and at least doubling what we have, so even a bad estimate
/// costs few waves; then compute the layouts.
pub async fn read(
    source: &dyn RangeSource,
    head: Bytes,
    size: u64,
    options: &Options,
    stats: &mut Stats,
) -> Result<File, Error> {
    let name = source.name().to_string();
    let mut buf = BytesMut::from(&head[..]);
    let header = loop {
        match header::parse(&buf) {
            Ok(h) => break h,
            Err(e @ HeaderError::Short { need, estimate, .. }) => {
                let have = buf.len() as u64;
                if have >= size || need > size {
                    return Err(format_error(&name, e, size));
                }
                let want = estimate.max(have.saturating_mul(2)).min(size);
                if want > options.max_metadata_bytes {
                    return Err(Error::Limit {
                        file: name,
                        what: format!(
                            "netCDF-3 header needs more than {} bytes (max_metadata_bytes)",
                            options.max_metadata_bytes
                        ),
                    });
                }
                if stats.waves >= options.max_waves {
                    return Err(Error::Limit {
                        file: name,
                        what: format!("more than {} waves", options.max_waves),
                    });
                }
                let got =
                    source
                        .get_ranges(&[have..want])
                        .await
                        .map_err(|error| Error::Source {
                            file: name.clone(),
                            error,
                        })?;
                let more = got.into_iter().next().unwrap_or_default();
                stats.requests += 1;
                stats.waves += 1;
                stats.bytes_fetched += more.len() as u64;
                if more.is_empty() {
                    return Err(format_error(&name, e, have));
                }
                buf.extend_from_slice(&more);
            }
            Err(e) => return Err(format_error(&name, e, size)),
        }
    };
    stats.metadata_bytes = header.length;
    let layouts = layouts(&header, options.max_chunks_per_dataset)
        .map_err(|e| format_error(&name, e, size))?;
    // Records that start past the end of the file are not there at all (a
    // truncated file, or a hostile numrecs): refuse rather than index them.
    for (l, v) in layouts.iter().zip(&header.variables) {
        if l.record && l.chunks() > 0 {
            let last = l.chunk_offset(l.chunks() - 1);
            if last >= size {
                return Err(format_error(
                    &name,
                    bad(
                        "numrecs",
                        format!(
                            "{} records, but record {} of variable '{}' would start at byte {last}, past the end of the file ({size} bytes)",
                            header.numrecs,
                            l.chunks() - 1,
                            v.name
                        ),
                    ),
                    size,
                ));
            }
        }
    }
    Ok(File {
        source: name,
        size,
        header,
        layouts,
    })
}

/// Read a NetCDF-3 file's header from scratch (the head, then the rest).
pub async fn open(source: Arc<dyn RangeSource>, options: &Options) -> Result<(File, Stats), Error> {
    let head_len = options.head_size.max(1024);
    let head = source
        .get_ranges(&[0..head_len])
        .await
        .map_err(|error| Error::Source {
            file: source.name().to_string(),
            error,
        })?
        .into_iter()
        .next()
        .unwrap_or_default();
    open_with_head(&*source, head, options).await
}

/// [`open`] once the head (one request, one wave) was fetched already:
/// the rest of the header if it is longer, then every variable's layout.
pub async fn open_with_head(
    source: &dyn RangeSource,
    head: Bytes,
    options: &Options,
) -> Result<(File, Stats), Error> {
    let size = source.size().await.map_err(|error| Error::Source {
        file: source.name().to_string(),
        error,
    })?;
    let mut stats = Stats {
        requests: 1,
        bytes_fetched: head.len() as u64,
        waves: 1,
        file_size: size,
        metadata_bytes: 0,
    };
    let f = read(source, head, size, options, &mut stats).await?;
    Ok((f, stats))
}

/// One attribute's values, decoded (char: the raw bytes as one string
/// element, as the model keeps fixed strings).
pub fn attribute_values(a: &header::Attribute) -> Vec<model::Value> {
    use model::Value;
    let b = &a.values;
    let n = a.nc_type.size() as usize;
    let elems = b.chunks_exact(n);
    let arr = |c: &[u8]| -> [u8; 8] {
        let mut x = [0u8; 8];
        x[8 - c.len()..].copy_from_slice(c);
        x
    };
    match a.nc_type {
        NcType::Char => vec![Value::Str(String::from_utf8_lossy(b).into_owned())],
        NcType::Byte => elems.map(|c| Value::Int(i64::from(c[0] as i8))).collect(),
        NcType::UByte => elems.map(|c| Value::UInt(u64::from(c[0]))).collect(),
        NcType::Short => elems
            .map(|c| Value::Int(i64::from(i16::from_be_bytes([c[0], c[1]]))))
            .collect(),
        NcType::UShort => elems
            .map(|c| Value::UInt(u64::from(u16::from_be_bytes([c[0], c[1]]))))
            .collect(),
        NcType::Int => elems
            .map(|c| Value::Int(i64::from(i32::from_be_bytes([c[0], c[1], c[2], c[3]]))))
            .collect(),
        NcType::UInt => elems
            .map(|c| Value::UInt(u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))))
            .collect(),
        NcType::Float => elems
            .map(|c| Value::Float(f64::from(f32::from_be_bytes([c[0], c[1], c[2], c[3]]))))
            .collect(),
        NcType::Double => elems
            .map(|c| Value::Float(f64::from_be_bytes(arr(c))))
            .collect(),
        NcType::Int64 => elems
            .map(|c| Value::Int(i64::from_be_bytes(arr(c))))
            .collect(),
        NcType::UInt64 => elems
            .map(|c| Value::UInt(u64::from_be_bytes(arr(c))))
            .collect(),
    }
}

/// The HDF5-model datatype a NetCDF-3 type reads as (big-endian).
pub fn datatype(t: NcType) -> model::Datatype {
    use model::{ByteOrder, Datatype};
    let size = t.size() as u32;
    let bits = (size * 8) as u16;
    let int = |signed| Datatype::FixedPoint {
        size,
        order: ByteOrder::BigEndian,
        signed,
        bit_offset: 0,
        bit_precision: bits,
    };
    let float =
        |exponent_location, exponent_size, mantissa_size, exponent_bias| Datatype::FloatingPoint {
            size,
            order: ByteOrder::BigEndian,
            bit_offset: 0,
            bit_precision: bits,
            exponent_location,
            exponent_size,
            mantissa_location: 0,
            mantissa_size,
            exponent_bias,
        };
    match t {
        NcType::Char => Datatype::String {
            size: 1,
            padding: model::StringPadding::NullPad,
            charset: model::CharSet::Ascii,
        },
        NcType::Byte | NcType::Short | NcType::Int | NcType::Int64 => int(true),
        NcType::UByte | NcType::UShort | NcType::UInt | NcType::UInt64 => int(false),
        NcType::Float => float(23, 8, 23, 127),
        NcType::Double => float(52, 11, 52, 1023),
    }
}

fn model_attribute(a: &header::Attribute) -> model::Attribute {
    let (datatype, dataspace) = match a.nc_type {
        NcType::Char => (
            model::Datatype::String {
                size: a.values.len() as u32,
                padding: model::StringPadding::NullPad,
                charset: model::CharSet::Ascii,
            },
            model::Dataspace::Scalar,
        ),
        t => (
            datatype(t),
            model::Dataspace::Simple {
                dims: vec![a.nelems],
                max_dims: vec![Some(a.nelems)],
            },
        ),
    };
    model::Attribute {
        name: a.name.clone(),
        datatype,
        dataspace,
        value: attribute_values(a),
    }
}

impl File {
    /// The file in the HDF5 model, for `inspect`: one dataset per
    /// variable (address = its `begin`), fixed variables contiguous,
    /// record variables "chunked" with one chunk per record at its
    /// computed offset (shown as an implicit index), the netCDF fill value
    /// (`_FillValue`, else the type's default) as the fill value.
    pub fn to_model(&self) -> model::File {
        let h = &self.header;
        let datasets = h
            .variables
            .iter()
            .zip(&self.layouts)
            .map(|(v, l)| {
                let fill = v
                    .attributes
                    .iter()
                    .find(|a| a.name == "_FillValue" && a.nc_type == v.nc_type)
                    .map(|a| a.values.clone());
                let user_defined = fill.is_some();
                let layout = if l.record {
                    let mut chunk_shape = l.shape.clone();
                    chunk_shape[0] = 1;
                    model::Layout::Chunked {
                        chunk_shape,
                        index: model::ChunkIndexKind::Implicit,
                        chunks: (0..l.chunks())
                            .map(|i| model::Chunk {
                                offset: std::iter::once(i)
                                    .chain(l.shape.iter().skip(1).map(|_| 0))
                                    .collect(),
                                address: l.chunk_offset(i),
                                size: l.slab,
                                filter_mask: 0,
                            })
                            .collect(),
                    }
                } else {
                    model::Layout::Contiguous {
                        address: Some(l.begin),
                        size: l.slab,
                    }
                };
                model::Dataset {
                    path: format!("/{}", v.name),
                    address: v.begin,
                    datatype: datatype(v.nc_type),
                    dataspace: if l.shape.is_empty() {
                        model::Dataspace::Scalar
                    } else {
                        model::Dataspace::Simple {
                            dims: l.shape.clone(),
                            max_dims: l
                                .shape
                                .iter()
                                .enumerate()
                                .map(|(k, d)| (!(l.record && k == 0)).then_some(*d))
                                .collect(),
                        }
                    },
                    layout,
                    filters: vec![],
                    fill_value: model::FillValue {
                        value: Some(fill.unwrap_or_else(|| v.nc_type.default_fill())),
                        fill_time: 0,
                        alloc_time: 1,
                        user_defined,
                    },
                    attributes: v.attributes.iter().map(model_attribute).collect(),
                    error: None,
                }
            })
            .collect();
        model::File {
            source: self.source.clone(),
            size: self.size,
            superblock_version: 0,
            base_address: 0,
            size_of_offsets: if h.format == Format::Classic { 4 } else { 8 },
            size_of_lengths: if h.format == Format::Cdf5 { 8 } else { 4 },
            root: model::Group {
                path: "/".into(),
                address: 0,
                attributes: h.attributes.iter().map(model_attribute).collect(),
                groups: vec![],
                datasets,
                datatypes: vec![],
                other_links: vec![],
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::header::{Attribute, Dimension, Header, Variable};
    use super::*;

    fn var(name: &str, dimids: &[u64], t: NcType, begin: u64) -> Variable {
        Variable {
            name: name.into(),
            dimids: dimids.to_vec(),
            attributes: Vec::<Attribute>::new(),
            nc_type: t,
            vsize: 0,
            begin,
        }
    }

    fn header(vars: Vec<Variable>) -> Header {
        Header {
            format: Format::Classic,
            numrecs: 4,
            dimensions: vec![
                Dimension {
                    name: "t".into(),
                    length: 0,
                },
                Dimension {
                    name: "n".into(),
                    length: 3,
                },
            ],
            attributes: vec![],
            variables: vars,
            length: 100,
        }
    }

    #[test]
    fn record_slabs_are_padded_and_interleaved() {
        let h = header(vec![
            var("fixed", &[1], NcType::Short, 100),
            var("a", &[0, 1], NcType::Byte, 108),
            var("b", &[0], NcType::Short, 112),
        ]);
        let l = layouts(&h, 100).unwrap();
        assert_eq!((l[0].record, l[0].slab, l[0].chunks()), (false, 6, 1));
        // a: 3 bytes padded to 4; b: 2 bytes padded to 4
        assert_eq!(
            (l[1].slab, l[1].stride, l[1].shape.clone()),
            (3, 8, vec![4, 3])
        );
        assert_eq!((l[2].slab, l[2].stride), (2, 8));
        assert_eq!(l[2].chunk_offset(3), 112 + 24);
        assert_eq!(l[1].end(), 108 + 24 + 3);
    }

    #[test]
    fn a_single_record_variable_is_packed() {
        let h = header(vec![var("a", &[0, 1], NcType::Byte, 100)]);
        let l = layouts(&h, 100).unwrap();
        assert_eq!((l[0].slab, l[0].stride), (3, 3));
        assert!(layouts(&h, 3).is_err(), "4 records over a limit of 3");
    }

    #[test]
    fn record_dimension_must_come_first() {
        let h = header(vec![var("a", &[1, 0], NcType::Byte, 100)]);
        let e = layouts(&h, 100).unwrap_err().to_string();
        assert!(e.contains("not its first dimension"), "{e}");
    }
}
