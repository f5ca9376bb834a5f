//! nom plumbing shared by every structure parser: a parse error that knows
//! "ran out of bytes" (so the walker can fetch more) from "malformed", and
//! readers for the file's variable-width offsets and lengths.

use nom::IResult;
use nom::error::{ErrorKind, ParseError};
use nom::number::complete::{le_u8, le_u16, le_u32, le_u64};

use crate::error::FormatError;

/// Why a parser stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The slice ended early. `need` is the total size of the structure when
    /// the parser had already read it from a size field.
    Short { need: Option<u64> },
    /// The bytes are not a valid structure.
    Bad(String),
}

/// Parse error with the number of input bytes left where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PErr {
    pub failure: Failure,
    pub remaining: usize,
}

impl<'a> ParseError<&'a [u8]> for PErr {
    fn from_error_kind(input: &'a [u8], kind: ErrorKind) -> Self {
        let failure = match kind {
            ErrorKind::Eof | ErrorKind::Complete => Failure::Short { need: None },
            other => Failure::Bad(other.description().to_string()),
        };
        PErr {
            failure,
            remaining: input.len(),
        }
    }
    fn append(_: &'a [u8], _: ErrorKind, other: Self) -> Self {
        other
    }
}

pub type PResult<'a, T> = IResult<&'a [u8], T, PErr>;

/// Fail with a "malformed" message.
pub fn bad<'a, T>(input: &'a [u8], msg: impl Into<String>) -> PResult<'a, T> {
    Err(nom::Err::Failure(PErr {
        failure: Failure::Bad(msg.into()),
        remaining: input.len(),
    }))
}

/// Fail with "need `total` bytes from the start of the structure".
pub fn short<'a, T>(input: &'a [u8], total: u64) -> PResult<'a, T> {
    Err(nom::Err::Failure(PErr {
        failure: Failure::Short { need: Some(total) },
        remaining: input.len(),
    }))
}

/// The result of running a structure parser to completion, errors already
/// tagged with the structure name and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StructError {
    /// More bytes are needed (the walker refetches, or reports truncation
    /// when the file has no more).
    Short {
        need: Option<u64>,
    },
    Bad(FormatError),
}

impl StructError {
    pub fn into_format(self, structure: &'static str, address: u64, had: usize) -> FormatError {
        match self {
            StructError::Bad(e) => e,
            StructError::Short { need } => FormatError::new(
                structure,
                address,
                match need {
                    Some(n) => format!("truncated: needs {n} bytes, file has {had}"),
                    None => format!("truncated after {had} bytes"),
                },
            ),
        }
    }
}

/// Run a nom parser over a whole structure and tag failures.
pub fn run<'a, T>(
    structure: &'static str,
    address: u64,
    input: &'a [u8],
    parser: impl FnOnce(&'a [u8]) -> PResult<'a, T>,
) -> Result<T, StructError> {
    match parser(input) {
        Ok((_, v)) => Ok(v),
        Err(nom::Err::Incomplete(_)) => Err(StructError::Short { need: None }),
        Err(nom::Err::Error(e)) | Err(nom::Err::Failure(e)) => Err(match e.failure {
            Failure::Short { need } => StructError::Short { need },
            Failure::Bad(reason) => {
                let pos = input.len().saturating_sub(e.remaining);
                StructError::Bad(FormatError::new(
                    structure,
                    address,
                    format!("{reason} (at byte {pos})"),
                ))
            }
        }),
    }
}

/// Sizes the superblock fixes for the whole file, and its base address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ctx {
    pub size_of_offsets: u8,
    pub size_of_lengths: u8,
    /// Absolute position of the superblock; every stored address is
    /// relative to it.
    pub base: u64,
}

impl Ctx {
    pub fn new(size_of_offsets: u8, size_of_lengths: u8, base: u64) -> Self {
        Ctx {
            size_of_offsets,
            size_of_lengths,
            base,
        }
    }

    /// Read a stored address: `None` for the undefined address (all ones),
    /// else the absolute position.
    pub fn addr<'a>(&self, i: &'a [u8]) -> PResult<'a, Option<u64>> {
        let (rest, v) = uint(i, self.size_of_offsets)?;
        let undefined = if self.size_of_offsets >= 8 {
            u64::MAX
        } else {
            (1u64 << (8 * self.size_of_offsets as u32)) - 1
        };
        if v == undefined {
            return Ok((rest, None));
        }
        match v.checked_add(self.base) {
            Some(a) => Ok((rest, Some(a))),
            None => bad(i, "address overflows"),
        }
    }

    /// Read an address that must be defined.
    pub fn addr_req<'a>(&self, i: &'a [u8], what: &str) -> PResult<'a, u64> {
        let (rest, a) = self.addr(i)?;
        match a {
            Some(a) => Ok((rest, a)),
            None => bad(i, format!("{what}: undefined address")),
        }
    }

    pub fn length<'a>(&self, i: &'a [u8]) -> PResult<'a, u64> {
        uint(i, self.size_of_lengths)
    }
}

/// Little-endian unsigned integer of 0..=8 bytes.
pub fn uint(i: &[u8], size: u8) -> PResult<'_, u64> {
    match size {
        0 => Ok((i, 0)),
        1 => le_u8(i).map(|(r, v)| (r, v as u64)),
        2 => le_u16(i).map(|(r, v)| (r, v as u64)),
        4 => le_u32(i).map(|(r, v)| (r, v as u64)),
        8 => le_u64(i),
        n if n <= 8 => {
            let (rest, bytes) = take(i, n as usize)?;
            let mut v = 0u64;
            for (k, b) in bytes.iter().enumerate() {
                v |= (*b as u64) << (8 * k);
            }
            Ok((rest, v))
        }
        n => bad(i, format!("integer of {n} bytes is not supported")),
    }
}

/// Take `n` bytes.
pub fn take(i: &[u8], n: usize) -> PResult<'_, &[u8]> {
    if i.len() < n {
        return Err(nom::Err::Error(PErr {
            failure: Failure::Short { need: None },
            remaining: i.len(),
        }));
    }
    Ok((&i[n..], &i[..n]))
}

/// Expect a 4-byte signature.
pub fn signature<'a>(i: &'a [u8], sig: &[u8; 4]) -> PResult<'a, ()> {
    let (rest, got) = take(i, 4)?;
    if got != sig {
        return bad(
            i,
            format!(
                "bad signature {:?}, expected {:?}",
                String::from_utf8_lossy(got),
                String::from_utf8_lossy(sig)
            ),
        );
    }
    Ok((rest, ()))
}

/// Verify the lookup3 checksum stored in the 4 bytes after `covered`.
pub fn verify_checksum<'a>(whole: &'a [u8], covered: usize) -> PResult<'a, ()> {
    let Some(data) = whole.get(..covered) else {
        return take(whole, covered).map(|(r, _)| (r, ()));
    };
    let (_, stored) = le_u32(&whole[covered..])?;
    let computed = crate::checksum::lookup3(data);
    if stored != computed {
        return bad(
            &whole[covered..],
            format!("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"),
        );
    }
    Ok((&whole[covered + 4..], ()))
}

/// Bytes a parser consumed from `whole` when `rest` (a suffix of it) is
/// left: the size of the structure it parsed, returned with the structure
/// so the walk never recomputes it.
pub fn consumed(whole: &[u8], rest: &[u8]) -> u64 {
    whole.len().saturating_sub(rest.len()) as u64
}

/// Number of bytes needed to hold `n` (for "size of chunk" fields whose
/// width depends on a maximum).
pub fn bytes_needed(n: u64) -> u8 {
    let mut b = 0u8;
    let mut v = n;
    while v > 0 {
        b += 1;
        v >>= 8;
    }
    b
}

/// Read a NUL-terminated string.
pub fn cstr(i: &[u8]) -> PResult<'_, &[u8]> {
    match i.iter().position(|b| *b == 0) {
        Some(p) => Ok((&i[p + 1..], &i[..p])),
        None => Err(nom::Err::Error(PErr {
            failure: Failure::Short { need: None },
            remaining: i.len(),
        })),
    }
}

pub use nom::number::complete::{le_u8 as u8_, le_u16 as u16_, le_u32 as u32_, le_u64 as u64_};
