//! The NetCDF-3 file header (NetCDF Classic and 64-bit Offset Format
//! specification, plus CDF-5 from PnetCDF): magic, `numrecs`, the
//! dimension list, the global attribute list and the variable list, each
//! variable with its own attributes, type, `vsize` and `begin` offset.
//!
//! Pure: [`parse`] takes the bytes from offset 0 and returns the header,
//! [`HeaderError::Short`] with the number of bytes it needs when the slice
//! ends early (so the engine can fetch the rest), or [`HeaderError::Bad`]
//! naming the field. Every count is checked against the bytes present
//! before anything is allocated for it, so a hostile count can only make
//! the parser ask for more bytes, never allocate them.

use nom::number::complete::{be_u32, be_u64};
use serde::Serialize;

/// Which of the three NetCDF-3 variants (the version byte of the magic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `CDF\x01`: 32-bit offsets and counts.
    Classic,
    /// `CDF\x02`: 64-bit `begin` offsets, 32-bit counts.
    Offset64,
    /// `CDF\x05` (CDF-5 / 64-bit data): 64-bit offsets and counts, and the
    /// unsigned and 64-bit integer types.
    Cdf5,
}

impl Format {
    /// Bytes of a count (`NON_NEG`): 8 in CDF-5, else 4.
    fn count_size(self) -> usize {
        if self == Format::Cdf5 { 8 } else { 4 }
    }
    /// Bytes of a `begin` offset (`OFFSET`).
    fn offset_size(self) -> usize {
        if self == Format::Classic { 4 } else { 8 }
    }
}

/// An external type (`nc_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NcType {
    Byte,
    Char,
    Short,
    Int,
    Float,
    Double,
    UByte,
    UShort,
    UInt,
    Int64,
    UInt64,
}

impl NcType {
    /// The type for a stored code; the CDF-5 types only in CDF-5 files.
    pub fn from_code(code: u32, format: Format) -> Option<NcType> {
        use NcType::*;
        let t = match code {
            1 => Byte,
            2 => Char,
            3 => Short,
            4 => Int,
            5 => Float,
            6 => Double,
            7 => UByte,
            8 => UShort,
            9 => UInt,
            10 => Int64,
            11 => UInt64,
            _ => return None,
        };
        (code <= 6 || format == Format::Cdf5).then_some(t)
    }

    /// Bytes of one element in the file.
    pub fn size(self) -> u64 {
        use NcType::*;
        match self {
            Byte | Char | UByte => 1,
            Short | UShort => 2,
            Int | UInt | Float => 4,
            Double | Int64 | UInt64 => 8,
        }
    }

    /// The netCDF default fill value (`NC_FILL_*`), big-endian bytes: what
    /// netCDF-C writes into never-written data in fill mode.
    pub fn default_fill(self) -> Vec<u8> {
        use NcType::*;
        match self {
            Byte => (-127i8).to_be_bytes().to_vec(),
            Char => vec![0],
            Short => (-32767i16).to_be_bytes().to_vec(),
            Int => (-2147483647i32).to_be_bytes().to_vec(),
            // 9.9692099683868690e+36, exactly
            Float => 0x7cf0_0000u32.to_be_bytes().to_vec(),
            Double => 0x479e_0000_0000_0000u64.to_be_bytes().to_vec(),
            UByte => vec![255],
            UShort => 65535u16.to_be_bytes().to_vec(),
            UInt => 4_294_967_295u32.to_be_bytes().to_vec(),
            Int64 => (-9_223_372_036_854_775_806i64).to_be_bytes().to_vec(),
            UInt64 => 18_446_744_073_709_551_614u64.to_be_bytes().to_vec(),
        }
    }
}

/// One dimension; length 0 marks the record (unlimited) dimension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dimension {
    pub name: String,
    pub length: u64,
}

/// One attribute: its values as stored (big-endian, padding removed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attribute {
    pub name: String,
    pub nc_type: NcType,
    pub nelems: u64,
    #[serde(skip)]
    pub values: Vec<u8>,
}

/// One variable as the header describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Variable {
    pub name: String,
    /// Indexes into [`Header::dimensions`].
    pub dimids: Vec<u64>,
    pub attributes: Vec<Attribute>,
    pub nc_type: NcType,
    /// The stored `vsize` (redundant, and saturated for large variables in
    /// CDF-1/2: the layout recomputes it from the shape).
    pub vsize: u64,
    /// File offset of the variable's data (of its first record).
    pub begin: u64,
}

/// The whole header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Header {
    pub format: Format,
    /// Records written; [`STREAMING`] when the writer left it indefinite.
    pub numrecs: u64,
    pub dimensions: Vec<Dimension>,
    pub attributes: Vec<Attribute>,
    pub variables: Vec<Variable>,
    /// Bytes the header occupies.
    pub length: u64,
}

/// `numrecs` of a file still being streamed (all ones).
pub const STREAMING: u64 = u64::MAX;

/// Why a header did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// The slice ended early: at least `need` bytes from offset 0 are
    /// needed, the first missing one belonging to `field`. `estimate` is
    /// the header length extrapolated from the variables parsed so far
    /// (at least `need`), so the caller can fetch the rest in one request.
    Short {
        need: u64,
        estimate: u64,
        field: String,
    },
    /// The bytes are not a valid header.
    Bad {
        offset: u64,
        field: String,
        reason: String,
    },
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::Short { need, field, .. } => {
                write!(f, "short: need {need} bytes (reading {field})")
            }
            HeaderError::Bad {
                offset,
                field,
                reason,
            } => write!(f, "{field} at byte {offset}: {reason}"),
        }
    }
}

const NC_DIMENSION: u32 = 0x0A;
const NC_VARIABLE: u32 = 0x0B;
const NC_ATTRIBUTE: u32 = 0x0C;

/// True when `head` starts with a NetCDF-3 magic number.
pub fn is_netcdf3(head: &[u8]) -> bool {
    matches!(head, [b'C', b'D', b'F', 1 | 2 | 5, ..])
}

/// Parse a header from the bytes at offset 0.
pub fn parse(bytes: &[u8]) -> Result<Header, HeaderError> {
    let mut r = Reader {
        all: bytes,
        pos: 0,
        format: Format::Classic,
        progress: None,
    };
    let magic = r.take(4, "magic number")?;
    r.format = match magic {
        [b'C', b'D', b'F', 1] => Format::Classic,
        [b'C', b'D', b'F', 2] => Format::Offset64,
        [b'C', b'D', b'F', 5] => Format::Cdf5,
        _ => {
            return Err(r.bad(
                0,
                "magic number",
                format!("{magic:?} is not CDF\\x01, \\x02 or \\x05"),
            ));
        }
    };
    let numrecs = match r.count("numrecs")? {
        n if n == r.all_ones() => STREAMING,
        n => n,
    };

    let n = r.list_header(NC_DIMENSION, "dimension list")?;
    let mut dimensions = Vec::new();
    for k in 0..n {
        let field = format!("dimension #{k}");
        let name = r.name(&field)?;
        let field = format!("dimension '{name}'");
        let length = r.count(&format!("{field} length"))?;
        dimensions.push(Dimension { name, length });
    }
    if dimensions.iter().filter(|d| d.length == 0).count() > 1 {
        return Err(r.bad(
            r.pos,
            "dimension list",
            "more than one record dimension".into(),
        ));
    }

    let attributes = r.attributes("global attribute")?;

    let n = r.list_header(NC_VARIABLE, "variable list")?;
    let mut variables = Vec::new();
    let list_start = r.pos as u64;
    for k in 0..n {
        r.progress = Some((list_start, k, n));
        let name = r.name(&format!("variable #{k}"))?;
        let field = format!("variable '{name}'");
        let rank = r.count(&format!("{field} rank"))?;
        let mut dimids = Vec::new();
        for d in 0..rank {
            let at = r.pos;
            let id = r.count(&format!("{field} dimid #{d}"))?;
            if id >= dimensions.len() as u64 {
                return Err(r.bad(
                    at,
                    &format!("{field} dimid #{d}"),
                    format!("{id} is not one of the {} dimensions", dimensions.len()),
                ));
            }
            dimids.push(id);
        }
        let attributes = r.attributes(&format!("{field} attribute"))?;
        let at = r.pos;
        let code = r.u32(&format!("{field} type"))?;
        let nc_type = NcType::from_code(code, r.format)
            .ok_or_else(|| r.bad(at, &format!("{field} type"), format!("unknown type {code}")))?;
        let vsize = r.count(&format!("{field} vsize"))?;
        let begin = r.offset(&format!("{field} begin"))?;
        variables.push(Variable {
            name,
            dimids,
            attributes,
            nc_type,
            vsize,
            begin,
        });
    }
    Ok(Header {
        format: r.format,
        numrecs,
        dimensions,
        attributes,
        variables,
        length: r.pos as u64,
    })
}

/// A position in the header bytes; every read names the field it reads.
struct Reader<'a> {
    all: &'a [u8],
    pos: usize,
    format: Format,
    /// In the variable list: (its offset, variables done, variables in all).
    progress: Option<(u64, u64, u64)>,
}

type NomErr<'a> = nom::Err<nom::error::Error<&'a [u8]>>;

impl<'a> Reader<'a> {
    fn short(&self, n: u64, field: &str) -> HeaderError {
        let need = (self.pos as u64).saturating_add(n);
        // the variables still to come, at the average size of those read
        // (plus a quarter: attributes vary); before any, twice what we have
        let estimate = match self.progress {
            Some((start, done, total)) if done > 0 => {
                let per = (self.pos as u64 - start) / done;
                start.saturating_add(per.saturating_mul(total).saturating_mul(5) / 4)
            }
            _ => need.saturating_mul(2),
        };
        HeaderError::Short {
            need,
            estimate: estimate.max(need),
            field: field.to_string(),
        }
    }

    fn bad(&self, offset: usize, field: &str, reason: String) -> HeaderError {
        HeaderError::Bad {
            offset: offset as u64,
            field: field.to_string(),
            reason,
        }
    }

    fn rest(&self) -> &'a [u8] {
        self.all.get(self.pos..).unwrap_or_default()
    }

    /// `n` bytes, or "short" (without allocating anything for `n`).
    fn take(&mut self, n: u64, field: &str) -> Result<&'a [u8], HeaderError> {
        let rest = self.rest();
        match usize::try_from(n).ok().and_then(|n| rest.get(..n)) {
            Some(b) => {
                self.pos += b.len();
                Ok(b)
            }
            None => Err(self.short(n, field)),
        }
    }

    fn u32(&mut self, field: &str) -> Result<u32, HeaderError> {
        let r: Result<_, NomErr> = be_u32(self.rest());
        match r {
            Ok((_, v)) => {
                self.pos += 4;
                Ok(v)
            }
            Err(_) => Err(self.short(4, field)),
        }
    }

    fn u64(&mut self, field: &str) -> Result<u64, HeaderError> {
        let r: Result<_, NomErr> = be_u64(self.rest());
        match r {
            Ok((_, v)) => {
                self.pos += 8;
                Ok(v)
            }
            Err(_) => Err(self.short(8, field)),
        }
    }

    /// A `NON_NEG` count: 4 bytes, or 8 in CDF-5.
    fn count(&mut self, field: &str) -> Result<u64, HeaderError> {
        match self.format.count_size() {
            8 => self.u64(field),
            _ => self.u32(field).map(u64::from),
        }
    }

    fn all_ones(&self) -> u64 {
        match self.format.count_size() {
            8 => u64::MAX,
            _ => u64::from(u32::MAX),
        }
    }

    /// A `begin` offset: 4 bytes in CDF-1, else 8.
    fn offset(&mut self, field: &str) -> Result<u64, HeaderError> {
        match self.format.offset_size() {
            8 => self.u64(field),
            _ => self.u32(field).map(u64::from),
        }
    }

    /// Skip the zero padding up to the next multiple of 4 of `len`.
    fn pad(&mut self, len: u64, field: &str) -> Result<(), HeaderError> {
        let p = (4 - len % 4) % 4;
        self.take(p, field).map(|_| ())
    }

    /// A list's tag and element count: `ABSENT` (two zeros) gives 0.
    fn list_header(&mut self, tag: u32, field: &str) -> Result<u64, HeaderError> {
        let at = self.pos;
        let t = self.u32(&format!("{field} tag"))?;
        let n = self.count(&format!("{field} length"))?;
        if t == 0 && n == 0 {
            return Ok(0);
        }
        if t != tag {
            return Err(self.bad(
                at,
                field,
                format!("tag {t:#x}, expected {tag:#x} or ABSENT"),
            ));
        }
        Ok(n)
    }

    /// A name: count, UTF-8 bytes, padding.
    fn name(&mut self, field: &str) -> Result<String, HeaderError> {
        let len = self.count(&format!("{field} name length"))?;
        let at = self.pos;
        let bytes = self.take(len, &format!("{field} name"))?;
        self.pad(len, &format!("{field} name padding"))?;
        let s = std::str::from_utf8(bytes)
            .map_err(|_| self.bad(at, &format!("{field} name"), "not UTF-8".into()))?;
        if s.is_empty() {
            return Err(self.bad(at, &format!("{field} name"), "empty name".into()));
        }
        Ok(s.to_string())
    }

    /// An attribute list (global or of one variable).
    fn attributes(&mut self, what: &str) -> Result<Vec<Attribute>, HeaderError> {
        let n = self.list_header(NC_ATTRIBUTE, &format!("{what} list"))?;
        let mut out = Vec::new();
        for k in 0..n {
            let name = self.name(&format!("{what} #{k}"))?;
            let field = format!("{what} '{name}'");
            let at = self.pos;
            let code = self.u32(&format!("{field} type"))?;
            let nc_type = NcType::from_code(code, self.format).ok_or_else(|| {
                self.bad(at, &format!("{field} type"), format!("unknown type {code}"))
            })?;
            let nelems = self.count(&format!("{field} length"))?;
            let at = self.pos;
            let len = nelems.checked_mul(nc_type.size()).ok_or_else(|| {
                self.bad(
                    at,
                    &format!("{field} values"),
                    format!("{nelems} values overflow"),
                )
            })?;
            let values = self.take(len, &format!("{field} values"))?.to_vec();
            self.pad(len, &format!("{field} padding"))?;
            out.push(Attribute {
                name,
                nc_type,
                nelems,
                values,
            });
        }
        Ok(out)
    }
}
