//! Layout cache: where the last file of a series kept its metadata.
//!
//! Files of one OFS model and kind share their layout (same variables,
//! chunking and write order), so the byte ranges one walk fetched predict
//! the ranges its sibling (a name differing only in digits: f029 -> f030)
//! needs. A walk given those ranges ([`crate::Options::predicted`]) fetches
//! them with the head in its first wave; every structure is then still
//! parsed from the bytes of the file being read, with all its checks
//! (signatures, checksums, lengths), and anything the prediction missed is
//! fetched by the normal walk. A prediction therefore only changes which
//! bytes are fetched when, never the result: a corrupt, foreign or stale
//! entry costs bytes, not correctness, and is ignored with a debug line.
//!
//! One small text file per series (`<hash of the pattern>.layout`,
//! [`entry_name`]); [`encode_entry`] and [`decode_entry`] read and write the
//! same format as bytes, for callers that keep entries elsewhere (the
//! pipeline keeps them in its destination object store):
//!
//! ```text
//! kerchunk-nos layout 1
//! pattern dbofs.t##z.########.fields.f###.nc
//! size 33529964
//! 0 65536
//! 751022 3280
//! ```

use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use tracing::debug;

const MAGIC: &str = "kerchunk-nos layout 1";
/// A layout holding more ranges than this is not from us.
const MAX_RANGES: usize = 100_000;
/// Predicted bytes are fetched before anything is verified: a bound on what
/// a bad entry can cost.
pub const MAX_PREDICTED_BYTES: u64 = 16 * 1024 * 1024;

/// A directory of layouts, keyed by the digit-free pattern of a source name.
#[derive(Debug, Clone)]
pub struct LayoutCache {
    dir: PathBuf,
}

/// The series a source belongs to: its name with every digit run replaced
/// by `#` (so `f029` and `f030` share it, `f030` and `f0300` do not).
pub fn pattern(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    for c in source.chars() {
        out.push(if c.is_ascii_digit() { '#' } else { c });
    }
    out
}

/// FNV-1a: a stable file name for a pattern (std's hasher is not stable
/// across releases; the pattern itself is checked inside the file).
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The name of the entry of `source`'s series (`<16 hex digits>.layout`):
/// the same for every file of the series, different (barring a 64-bit hash
/// collision, which the pattern inside the entry catches) for others.
pub fn entry_name(source: &str) -> String {
    format!("{:016x}.layout", fnv1a(&pattern(source)))
}

/// The entry recording that `source` (of `file_size` bytes) needed `ranges`.
pub fn encode_entry(source: &str, file_size: u64, ranges: &[Range<u64>]) -> String {
    render(&pattern(source), file_size, ranges)
}

/// The ranges an entry predicts for `source`, or why it is not a usable
/// entry for `source`'s series (not UTF-8, another format or series, absurd
/// ranges). Nothing in it is trusted.
pub fn decode_entry(bytes: &[u8], source: &str) -> Result<Vec<Range<u64>>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
    parse(text, &pattern(source))
}

impl LayoutCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LayoutCache { dir: dir.into() }
    }

    fn path(&self, source: &str) -> PathBuf {
        self.dir.join(entry_name(source))
    }

    /// The ranges a sibling of `source` fetched, or none (no entry, or an
    /// entry that does not parse, belongs to another series or is absurd).
    pub fn predict(&self, source: &str) -> Vec<Range<u64>> {
        let path = self.path(source);
        let bytes = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) => {
                debug!(source, path = %path.display(), error = %e, "no layout cached");
                return Vec::new();
            }
        };
        match decode_entry(&bytes, source) {
            Ok(r) => r,
            Err(reason) => {
                debug!(source, path = %path.display(), reason, "layout cache entry ignored");
                Vec::new()
            }
        }
    }

    /// Remember the ranges `source` needed. Best effort: a failure to write
    /// is logged and otherwise ignored (the next run is simply cold).
    pub fn remember(&self, source: &str, file_size: u64, ranges: &[Range<u64>]) {
        let path = self.path(source);
        if let Err(e) = write_atomic(&path, &encode_entry(source, file_size, ranges)) {
            debug!(source, path = %path.display(), error = %e, "layout cache not written");
        }
    }
}

fn render(pat: &str, file_size: u64, ranges: &[Range<u64>]) -> String {
    let mut s = format!("{MAGIC}\npattern {pat}\nsize {file_size}\n");
    for r in ranges {
        s.push_str(&format!("{} {}\n", r.start, r.end.saturating_sub(r.start)));
    }
    s
}

/// Parse an entry; every field is checked, nothing is trusted.
fn parse(text: &str, pat: &str) -> Result<Vec<Range<u64>>, String> {
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Err("not a version-1 layout".into());
    }
    match lines.next().and_then(|l| l.strip_prefix("pattern ")) {
        Some(p) if p == pat => {}
        _ => return Err("layout of another series".into()),
    }
    lines
        .next()
        .and_then(|l| l.strip_prefix("size "))
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or("no file size")?;
    let mut out = Vec::new();
    let mut total = 0u64;
    for l in lines {
        let mut it = l.split(' ');
        let (Some(a), Some(n), None) = (it.next(), it.next(), it.next()) else {
            return Err(format!("bad range line {l:?}"));
        };
        let (Ok(a), Ok(n)) = (a.parse::<u64>(), n.parse::<u64>()) else {
            return Err(format!("bad range line {l:?}"));
        };
        let end = a.checked_add(n).ok_or("range overflows")?;
        total = total.saturating_add(n);
        if n == 0 || out.len() >= MAX_RANGES || total > MAX_PREDICTED_BYTES {
            return Err("empty range, or too many ranges or bytes".into());
        }
        out.push(a..end);
    }
    Ok(out)
}

fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siblings_share_a_pattern() {
        assert_eq!(
            pattern("s3://b/dbofs.20250601/dbofs.t06z.20250601.fields.f029.nc"),
            pattern("s3://b/dbofs.20250601/dbofs.t06z.20250601.fields.f030.nc")
        );
        assert_ne!(pattern("a.f029.nc"), pattern("a.n029.nc"));
    }

    #[test]
    fn round_trip_and_rejections() {
        let pat = pattern("x.f001.nc");
        let r = vec![0..65536, 100_000..100_512];
        let text = render(&pat, 1 << 20, &r);
        assert_eq!(parse(&text, &pat), Ok(r));
        assert!(parse(&text, &pattern("y.f001.nc")).is_err());
        assert!(parse(&text.replace("layout 1", "layout 0"), &pat).is_err());
        assert!(parse(&format!("{text}5 0\n"), &pat).is_err());
        assert!(parse(&format!("{text}18446744073709551615 2\n"), &pat).is_err());
        assert!(parse(&format!("{text}0 99999999999\n"), &pat).is_err());
        assert!(parse(&format!("{text}1 2 3\n"), &pat).is_err());
        assert!(parse("", &pat).is_err());
    }

    #[test]
    fn bytes_api_is_the_file_format() {
        let dir = std::env::temp_dir().join(format!("knos-layout-bytes-{}", std::process::id()));
        let c = LayoutCache::new(&dir);
        let r = vec![0..65536, 70_000..71_000];
        c.remember("d/a.f029.nc", 99, &r);
        let on_disk = std::fs::read(dir.join(entry_name("d/a.f030.nc"))).unwrap();
        assert_eq!(on_disk, encode_entry("d/a.f031.nc", 99, &r).into_bytes());
        assert_eq!(decode_entry(&on_disk, "d/a.f030.nc"), Ok(r));
        assert!(decode_entry(&on_disk, "d/a.n030.nc").is_err());
        assert!(decode_entry(b"\xff\xfe", "d/a.f030.nc").is_err());
        assert_ne!(entry_name("d/a.f030.nc"), entry_name("d/a.n030.nc"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_or_unwritable_cache_is_not_an_error() {
        // A directory under a regular file can be neither read nor made.
        let file = std::env::temp_dir().join(format!("knos-layout-unit-{}", std::process::id()));
        std::fs::write(&file, b"not a directory").unwrap();
        let c = LayoutCache::new(file.join("layouts"));
        assert!(c.predict("a.f001.nc").is_empty());
        c.remember("a.f001.nc", 10, &[0..10]);
        assert!(c.predict("a.f002.nc").is_empty());
        std::fs::remove_file(&file).unwrap();
    }
}
