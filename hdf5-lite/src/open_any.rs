//! Format dispatch: the one place a file is opened by consumers that accept
//! both HDF5/NetCDF-4 and NetCDF-3. The speculative head is read once, the
//! magic number decides the parser, and the HDF5 walker is given the head
//! through [`HeadCached`] so sniffing costs no extra request or wave.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::Error;
use crate::model::File;
use crate::netcdf3;
use crate::source::{BoxFuture, RangeSource, SourceError};
use crate::walk::{self, Options, Prefetched, Stats};

/// A file read by whichever parser its magic number asked for.
#[derive(Debug, Clone)]
pub enum Opened {
    Hdf5(File),
    NetCdf3(netcdf3::File),
}

impl Opened {
    /// The file in the HDF5 model (NetCDF-3 mapped by
    /// [`netcdf3::File::to_model`]), for `inspect`.
    pub fn model(&self) -> Cow<'_, File> {
        match self {
            Opened::Hdf5(f) => Cow::Borrowed(f),
            Opened::NetCdf3(f) => Cow::Owned(f.to_model()),
        }
    }

    /// `hdf5` or `netcdf3_classic` / `netcdf3_64bit_offset` / `netcdf3_cdf5`.
    pub fn format_name(&self) -> &'static str {
        match self {
            Opened::Hdf5(_) => "hdf5",
            Opened::NetCdf3(f) => match f.header.format {
                netcdf3::Format::Classic => "netcdf3_classic",
                netcdf3::Format::Offset64 => "netcdf3_64bit_offset",
                netcdf3::Format::Cdf5 => "netcdf3_cdf5",
            },
        }
    }
}

/// Open an HDF5/NetCDF-4 or NetCDF-3 file: read the head (the same range
/// the HDF5 walker starts with), then run the parser its magic selects.
pub async fn open_any(
    source: Arc<dyn RangeSource>,
    options: &Options,
) -> Result<(Opened, Stats), Error> {
    let (f, stats, _) = open_any_prefetched(source, options).await?;
    Ok((f, stats))
}

/// [`open_any`], also returning a source that serves what the open already
/// fetched from memory ([`walk::open_prefetched`] for HDF5; for NetCDF-3 it
/// passes every range through, counting it).
pub async fn open_any_prefetched(
    source: Arc<dyn RangeSource>,
    options: &Options,
) -> Result<(Opened, Stats, Arc<Prefetched>), Error> {
    let name = source.name().to_string();
    let src_err = |error| Error::Source {
        file: name.clone(),
        error,
    };
    // Exactly the walker's first wave (the head and a sibling's predicted
    // layout), so that wave is served from memory below and a warm open
    // still costs one round trip.
    let first = walk::first_wave(options);
    let got = source.get_ranges(&first).await.map_err(src_err)?;
    let extents: Vec<(Range<u64>, Bytes)> = first.into_iter().zip(got).collect();
    let head = extents
        .iter()
        .find(|(r, _)| r.start == 0)
        .map(|(_, b)| b.clone())
        .unwrap_or_default();
    if netcdf3::is_netcdf3(&head) {
        let (f, stats) = netcdf3::open_with_head(&*source, head, options).await?;
        return Ok((
            Opened::NetCdf3(f),
            stats,
            Arc::new(Prefetched::passthrough(source)),
        ));
    }
    let cached: Arc<dyn RangeSource> = Arc::new(HeadCached {
        inner: source,
        extents,
    });
    let (f, stats, prefetched) = walk::open_prefetched(cached, options).await?;
    Ok((Opened::Hdf5(f), stats, prefetched))
}

/// A source whose first wave was already fetched: ranges inside one of
/// those extents are served from memory (as the inner source would:
/// clamped to the bytes that exist), everything else goes to the inner
/// source.
struct HeadCached {
    inner: Arc<dyn RangeSource>,
    extents: Vec<(Range<u64>, Bytes)>,
}

impl HeadCached {
    fn serve(&self, r: &Range<u64>) -> Option<Bytes> {
        if r.start > r.end {
            return None;
        }
        let (range, bytes) = self
            .extents
            .iter()
            .find(|(e, _)| r.start >= e.start && r.end <= e.end)?;
        let len = bytes.len() as u64;
        let s = (r.start - range.start).min(len) as usize;
        let e = (r.end - range.start).min(len) as usize;
        Some(bytes.slice(s..e))
    }
}

impl RangeSource for HeadCached {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn get_ranges<'a>(
        &'a self,
        ranges: &'a [Range<u64>],
    ) -> BoxFuture<'a, Result<Vec<Bytes>, SourceError>> {
        Box::pin(async move {
            let served: Vec<Option<Bytes>> = ranges.iter().map(|r| self.serve(r)).collect();
            let missing: Vec<Range<u64>> = ranges
                .iter()
                .zip(&served)
                .filter(|(_, s)| s.is_none())
                .map(|(r, _)| r.clone())
                .collect();
            let mut fetched = if missing.is_empty() {
                Vec::new()
            } else {
                self.inner.get_ranges(&missing).await?
            }
            .into_iter();
            Ok(served
                .into_iter()
                .map(|s| s.unwrap_or_else(|| fetched.next().unwrap_or_default()))
                .collect())
        })
    }
    fn size(&self) -> BoxFuture<'_, Result<u64, SourceError>> {
        self.inner.size()
    }
}
