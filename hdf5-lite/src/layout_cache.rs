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
//! Series whose chunks are compressed do not quite share their layout:
//! what a file writes after compressed data sits earlier or later by the
//! difference in compressed sizes so far (0.8-4.9 KB between zlib siblings
//! of the bench's real-scale OFS files, ~100 bytes in the small test series). Each entry therefore also records the
//! series' **drift**, the most any structure of the last file was seen to
//! have moved from where its predecessor's entry put it
//! ([`observed_drift`]), and a prediction widens every range by a margin
//! grown from it ([`Entry::first_wave`]), so a moved structure is still in
//! the first wave. A series whose layout does not move has drift 0 and pays
//! nothing.
//!
//! One small text file per series (`<hash of the pattern>.layout`,
//! [`entry_name`]); [`encode_entry`] and [`decode_entry`] read and write the
//! same format as bytes, for callers that keep entries elsewhere (the
//! pipeline keeps them in its destination object store). The `drift` line is
//! optional (entries written before it existed have none: drift 0):
//!
//! ```text
//! kerchunk-nos layout 1
//! pattern dbofs.t##z.########.fields.f###.nc
//! size 33529964
//! drift 0
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
/// The widest margin a prediction adds on each side of a range: beyond it a
/// series moves too much for a margin to pay, and the walk finds what moved.
pub const MAX_MARGIN: u64 = 16 * 1024;
/// The margin is this many times the drift last seen: one pair of
/// siblings' drift is only an estimate of the next pair's (in the bench's
/// zlib series, drift between consecutive pairs differed by up to 2.3x), and
/// a wider margin costs bytes in requests that are made anyway, while a
/// narrow one costs a round trip.
pub const MARGIN_FACTOR: u64 = 4;
/// How far from a needed range [`observed_drift`] looks for the predicted
/// range it moved from; anything farther is a new structure, not a moved one.
const DRIFT_SEARCH: u64 = 1024 * 1024;
/// Predicted ranges each side of a needed one that [`observed_drift`] tries
/// (they are sorted, so these are the nearest; bounds the work on hostile
/// entries).
const DRIFT_CANDIDATES: usize = 64;

/// What one file of a series used: the content of a layout entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The size of the file the entry was taken from.
    pub file_size: u64,
    /// How far the series' structures moved between siblings, as last seen
    /// ([`observed_drift`]); 0 when they did not move or nobody looked.
    pub drift: u64,
    /// The ranges that file's walk used.
    pub ranges: Vec<Range<u64>>,
}

impl Entry {
    /// The entry for a file of `file_size` bytes that used `ranges`, indexed
    /// with `previous` as its prediction (`None`: cold, drift unknown, 0).
    pub fn after(previous: Option<&Entry>, file_size: u64, ranges: Vec<Range<u64>>) -> Entry {
        let drift = previous.map_or(0, |p| observed_drift(&p.ranges, &ranges));
        Entry {
            file_size,
            drift,
            ranges,
        }
    }

    /// How much to widen each predicted range on each side for a sibling of
    /// `file_size` bytes (when known): [`MARGIN_FACTOR`] times what the
    /// series was seen to drift, or times the difference in file size when
    /// that is more (a file's size moves with its compressed data), at most
    /// [`MAX_MARGIN`]. 0 for a series whose layout did not move and whose
    /// size is the same.
    pub fn margin(&self, file_size: Option<u64>) -> u64 {
        let size_delta = file_size.map_or(0, |n| n.abs_diff(self.file_size));
        self.drift
            .max(size_delta)
            .saturating_mul(MARGIN_FACTOR)
            .min(MAX_MARGIN)
    }

    /// The ranges to fetch in the first wave of a sibling of `file_size`
    /// bytes (when known): the stored ranges widened by [`Entry::margin`].
    pub fn first_wave(&self, file_size: Option<u64>) -> Vec<Range<u64>> {
        let m = self.margin(file_size);
        self.ranges
            .iter()
            .map(|r| r.start.saturating_sub(m)..r.end.saturating_add(m))
            .collect()
    }
}

/// How far the structures of a file moved from where its sibling's entry
/// predicted them: for each range of `needed` the prediction did not cover,
/// the smallest margin by which widening a nearby predicted range (within
/// 1 MiB) would have covered it; the largest of those. A needed range no
/// predicted range comes near is a new structure and counts nothing. 0 when
/// the prediction covered everything (a series whose layout is fixed).
pub fn observed_drift(predicted: &[Range<u64>], needed: &[Range<u64>]) -> u64 {
    let sorted = sorted_ranges(predicted);
    let union = union_of(&sorted);
    let mut drift = 0;
    for n in needed.iter().filter(|n| n.start < n.end) {
        if in_union(&union, n) {
            continue;
        }
        let at = sorted.partition_point(|p| p.start < n.start);
        let lo = at.saturating_sub(DRIFT_CANDIDATES);
        let hi = at.saturating_add(DRIFT_CANDIDATES).min(sorted.len());
        let moved = sorted[lo..hi]
            .iter()
            .filter(|p| p.start.abs_diff(n.start) <= DRIFT_SEARCH)
            .map(|p| {
                p.start
                    .saturating_sub(n.start)
                    .max(n.end.saturating_sub(p.end))
            })
            .min();
        if let Some(m) = moved {
            drift = drift.max(m);
        }
    }
    drift
}

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

/// True when `predicted` held every range of `needed` (in any order, an
/// entry is not trusted to be sorted). An empty prediction (nothing usable
/// was loaded) covers nothing.
pub fn covers(predicted: &[Range<u64>], needed: &[Range<u64>]) -> bool {
    if predicted.is_empty() {
        return false;
    }
    let union = union_of(&sorted_ranges(predicted));
    needed.iter().all(|n| in_union(&union, n))
}

/// The non-empty ranges of `ranges` by start.
fn sorted_ranges(ranges: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut sorted: Vec<Range<u64>> = ranges.iter().filter(|r| r.start < r.end).cloned().collect();
    sorted.sort_by_key(|r| r.start);
    sorted
}

/// Sorted ranges merged where they overlap or touch.
fn union_of(sorted: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut union: Vec<Range<u64>> = Vec::with_capacity(sorted.len());
    for r in sorted {
        match union.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => union.push(r.clone()),
        }
    }
    union
}

/// `r` lies inside one range of `union` ([`union_of`]).
fn in_union(union: &[Range<u64>], r: &Range<u64>) -> bool {
    let i = union.partition_point(|u| u.end < r.end);
    union
        .get(i)
        .is_some_and(|u| u.start <= r.start && r.end <= u.end)
}

/// The text of `entry` as an entry of `source`'s series.
pub fn encode_entry(source: &str, entry: &Entry) -> String {
    render(&pattern(source), entry)
}

/// The entry stored for `source`'s series, or why it is not a usable entry
/// for it (not UTF-8, another format or series, absurd ranges). Nothing in
/// it is trusted.
pub fn decode_entry(bytes: &[u8], source: &str) -> Result<Entry, String> {
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

    /// The entry of `source`'s series, or none (no entry, or an entry that
    /// does not parse, belongs to another series or is absurd).
    pub fn load(&self, source: &str) -> Option<Entry> {
        let path = self.path(source);
        let bytes = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) => {
                debug!(source, path = %path.display(), error = %e, "no layout cached");
                return None;
            }
        };
        match decode_entry(&bytes, source) {
            Ok(e) => Some(e),
            Err(reason) => {
                debug!(source, path = %path.display(), reason, "layout cache entry ignored");
                None
            }
        }
    }

    /// The ranges to fetch in `source`'s first wave: its series' entry
    /// widened by the series' margin (the file's size is not known before
    /// its first wave here, so only the recorded drift counts), or none.
    pub fn predict(&self, source: &str) -> Vec<Range<u64>> {
        self.load(source)
            .map(|e| e.first_wave(None))
            .unwrap_or_default()
    }

    /// Remember the ranges `source` (of `file_size` bytes) needed, with the
    /// drift seen against the entry it was predicted from (the one still
    /// stored). Best effort: a failure to write is logged and otherwise
    /// ignored (the next run is simply cold).
    pub fn remember(&self, source: &str, file_size: u64, ranges: &[Range<u64>]) {
        let entry = Entry::after(self.load(source).as_ref(), file_size, ranges.to_vec());
        let path = self.path(source);
        if let Err(e) = write_atomic(&path, &encode_entry(source, &entry)) {
            debug!(source, path = %path.display(), error = %e, "layout cache not written");
        }
    }
}

fn render(pat: &str, e: &Entry) -> String {
    let mut s = format!(
        "{MAGIC}\npattern {pat}\nsize {}\ndrift {}\n",
        e.file_size, e.drift
    );
    for r in &e.ranges {
        s.push_str(&format!("{} {}\n", r.start, r.end.saturating_sub(r.start)));
    }
    s
}

/// Parse an entry; every field is checked, nothing is trusted.
fn parse(text: &str, pat: &str) -> Result<Entry, String> {
    let mut lines = text.lines().peekable();
    if lines.next() != Some(MAGIC) {
        return Err("not a version-1 layout".into());
    }
    match lines.next().and_then(|l| l.strip_prefix("pattern ")) {
        Some(p) if p == pat => {}
        _ => return Err("layout of another series".into()),
    }
    let file_size = lines
        .next()
        .and_then(|l| l.strip_prefix("size "))
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or("no file size")?;
    let drift = match lines.next_if(|l| l.starts_with("drift ")) {
        None => 0,
        Some(l) => l["drift ".len()..]
            .parse::<u64>()
            .map_err(|_| format!("bad drift line {l:?}"))?,
    };
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
    Ok(Entry {
        file_size,
        drift,
        ranges: out,
    })
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

    fn entry(file_size: u64, drift: u64, ranges: Vec<Range<u64>>) -> Entry {
        Entry {
            file_size,
            drift,
            ranges,
        }
    }

    #[test]
    fn round_trip_and_rejections() {
        let pat = pattern("x.f001.nc");
        let e = entry(1 << 20, 300, vec![0..65536, 100_000..100_512]);
        let text = render(&pat, &e);
        assert_eq!(parse(&text, &pat), Ok(e.clone()));
        assert!(parse(&text, &pattern("y.f001.nc")).is_err());
        assert!(parse(&text.replace("layout 1", "layout 0"), &pat).is_err());
        assert!(parse(&text.replace("drift 300", "drift -1"), &pat).is_err());
        assert!(parse(&format!("{text}5 0\n"), &pat).is_err());
        assert!(parse(&format!("{text}18446744073709551615 2\n"), &pat).is_err());
        assert!(parse(&format!("{text}0 99999999999\n"), &pat).is_err());
        assert!(parse(&format!("{text}1 2 3\n"), &pat).is_err());
        assert!(parse(&format!("{text}drift 5\n"), &pat).is_err());
        assert!(parse("", &pat).is_err());
        // Entries written before drift was recorded: drift 0.
        let old = text.replace("drift 300\n", "");
        assert_eq!(parse(&old, &pat), Ok(entry(1 << 20, 0, e.ranges)));
    }

    #[test]
    fn covered_ranges() {
        let p = vec![0..100, 200..300];
        assert!(covers(&p, &[0..10, 50..100, 200..300]));
        assert!(!covers(&p, std::slice::from_ref(&(0..101))));
        assert!(!covers(&p, std::slice::from_ref(&(150..160))));
        assert!(!covers(&p, std::slice::from_ref(&(250..350))));
        assert!(!covers(&[], &[]));
        assert!(covers(&p, &[]));
        assert!(covers(&[200..250, 0..100, 250..300], &[220..280, 5..6]));
    }

    #[test]
    fn drift_is_how_far_the_needed_ranges_moved() {
        let predicted = vec![0..65536, 100_000..102_048, 300_000..300_512];
        // Covered (also across adjacent predicted ranges): no drift.
        assert_eq!(observed_drift(&predicted, &[0..1000, 100_100..102_000]), 0);
        assert_eq!(observed_drift(&[0..10, 10..20], &[5..15]), 0);
        // Moved by 78 and by -300 (and grown by 10): the largest margin.
        let needed = [0..65536, 99_922..101_970, 300_300..300_822];
        assert_eq!(observed_drift(&predicted, &needed), 310);
        // A new structure far from any prediction is not a move.
        assert_eq!(observed_drift(&predicted, &[5_000_000..5_002_048]), 0);
        // Nothing predicted, or nothing needed: nothing seen to move.
        assert_eq!(observed_drift(&[], &needed), 0);
        assert_eq!(observed_drift(&predicted, &[]), 0);
        // Empty and reversed ranges are ignored.
        #[allow(clippy::reversed_empty_ranges)]
        let odd = [5..5, 9..3];
        assert_eq!(observed_drift(&odd, &odd), 0);
    }

    #[test]
    fn a_prediction_is_widened_by_the_series_drift() {
        let e = entry(1000, 0, vec![100..200, 5000..5100]);
        // A fixed layout: fetched as stored, whatever the size.
        assert_eq!(e.first_wave(None), e.ranges);
        assert_eq!(e.first_wave(Some(1000)), e.ranges);
        // A size that differs is a layout that moved.
        assert_eq!(e.first_wave(Some(1020)), vec![20..280, 4920..5180]);
        let e = entry(1000, 300, vec![100..200, 5000..5100]);
        assert_eq!(e.margin(None), 1200);
        assert_eq!(e.first_wave(Some(1010)), vec![0..1400, 3800..6300]);
        // Capped: a series that moves a lot costs bounded bytes.
        let e = entry(1000, u64::MAX, vec![u64::MAX - 10..u64::MAX]);
        assert_eq!(e.margin(Some(0)), MAX_MARGIN);
        assert_eq!(
            e.first_wave(None),
            vec![u64::MAX - 10 - MAX_MARGIN..u64::MAX]
        );
        // The next entry records what this file showed.
        let next = Entry::after(Some(&entry(1000, 5, vec![100..200])), 990, vec![90..190]);
        assert_eq!(next, entry(990, 10, vec![90..190]));
        assert_eq!(Entry::after(None, 990, vec![90..190]).drift, 0);
    }

    #[test]
    fn bytes_api_is_the_file_format() {
        let dir = std::env::temp_dir().join(format!("knos-layout-bytes-{}", std::process::id()));
        let c = LayoutCache::new(&dir);
        let r = vec![0..65536, 70_000..71_000];
        c.remember("d/a.f029.nc", 99, &r);
        let on_disk = std::fs::read(dir.join(entry_name("d/a.f030.nc"))).unwrap();
        let e = entry(99, 0, r.clone());
        assert_eq!(on_disk, encode_entry("d/a.f031.nc", &e).into_bytes());
        assert_eq!(decode_entry(&on_disk, "d/a.f030.nc"), Ok(e));
        assert!(decode_entry(&on_disk, "d/a.n030.nc").is_err());
        assert!(decode_entry(b"\xff\xfe", "d/a.f030.nc").is_err());
        assert_ne!(entry_name("d/a.f030.nc"), entry_name("d/a.n030.nc"));
        // The next file's ranges moved by 40: remembered with that drift, and
        // the one after is predicted 160 wider on each side.
        c.remember("d/a.f030.nc", 99, &[0..65536, 70_040..71_040]);
        let e = c.load("d/a.f031.nc").unwrap();
        assert_eq!(e.drift, 40);
        assert_eq!(c.predict("d/a.f031.nc"), vec![0..65696, 69_880..71_200]);
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
