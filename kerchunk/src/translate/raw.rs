//! Datasets whose bytes must be converted before zarr can serve them:
//! filters without a numcodecs codec (decoded whole) and space-padded
//! strings.

use super::*;

/// For a chunked dataset whose pipeline has the n-bit or scale-offset
/// filter (no numcodecs codec exists for either): `true` when hdf5-lite
/// decodes it whole and it is inlined (at most `max_reencode_bytes`
/// decoded bytes, every filter one hdf5-lite undoes, a type whose decoded
/// bytes readers see once reduced-precision integers are widened); `Err`
/// (a warning) otherwise; `false` for other datasets.
pub(super) fn needs_decoding(
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
pub(super) fn is_spacepad_string(dt: &Datatype) -> bool {
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
