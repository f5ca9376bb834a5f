//! A reference set's JSON text as [`RefSet::to_json`] writes it
//! (`{"refs":{"<key>":<value>,...},"version":1}`, keys sorted), seen as a
//! list of entries without parsing their values: parts of it are parsed on
//! demand ([`RefsText::subset`]) and edits are applied by copying every
//! untouched entry byte for byte ([`RefsText::apply`]). An aggregate of a
//! year of forecasts is tens of megabytes; an update that changes its last
//! few time steps then costs one scan of the text, not a parse and a
//! rewrite of every reference (`ingest::fmrc_update`).
//!
//! Anything else (other top-level keys, escaped keys, whitespace) is not
//! recognised: [`RefsText::scan`] returns `None` and the caller parses the
//! whole set. Since the writer is deterministic, an entry copied as it is
//! equals the entry written again from its parsed value.

use std::collections::HashSet;

use crate::error::Error;
use crate::refs::RefSet;

const HEAD: &str = "{\"refs\":{";
const TAIL: &str = "},\"version\":1}";

/// One `"key":value` entry: its key (unescaped: keys with escapes are not
/// recognised) and the byte range of the whole entry in the text.
#[derive(Debug, Clone, Copy)]
struct Entry<'a> {
    key: &'a str,
    /// Byte index in `key` of its last `/` (prefix / leaf), if any.
    slash: Option<usize>,
    start: usize,
    end: usize,
}

impl<'a> Entry<'a> {
    /// `(prefix, leaf)`: `("", key)` for a top-level key.
    fn parts(&self) -> (&'a str, &'a str) {
        match self.slash {
            Some(s) => (
                self.key.get(..s).unwrap_or_default(),
                self.key.get(s + 1..).unwrap_or_default(),
            ),
            None => ("", self.key),
        }
    }
}

/// The entries of a reference set's JSON text.
#[derive(Debug)]
pub struct RefsText<'a> {
    text: &'a str,
    entries: Vec<Entry<'a>>,
}

/// The end (after the closing quote) of the JSON string starting at `at`
/// (a `"`), and whether it contains an escape.
fn string_end(b: &[u8], at: usize) -> Option<(usize, bool)> {
    if b.get(at) != Some(&b'"') {
        return None;
    }
    let mut i = at + 1;
    let mut escaped = false;
    loop {
        let j = i + memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
        if b.get(j) == Some(&b'"') {
            return Some((j + 1, escaped));
        }
        escaped = true;
        i = j + 2;
    }
}

/// The end of the value starting at `at`: a string, or an array of strings
/// and numbers (what [`RefSet::to_json`] writes).
fn value_end(b: &[u8], at: usize) -> Option<usize> {
    match b.get(at)? {
        b'"' => string_end(b, at).map(|(e, _)| e),
        b'[' => {
            let mut i = at + 1;
            loop {
                match b.get(i)? {
                    b'"' => i = string_end(b, i)?.0,
                    b']' => return Some(i + 1),
                    b'[' | b'{' => return None,
                    _ => i += 1,
                }
            }
        }
        _ => None,
    }
}

impl<'a> RefsText<'a> {
    /// The entries of `text`, or `None` when it is not in the writer's form.
    pub fn scan(text: &'a str) -> Option<RefsText<'a>> {
        let body_end = text.len().checked_sub(TAIL.len())?;
        if !text.starts_with(HEAD) || text.get(body_end..) != Some(TAIL) {
            return None;
        }
        let b = text.as_bytes();
        let mut entries = Vec::new();
        let mut i = HEAD.len();
        let mut prev: Option<&str> = None;
        while i < body_end {
            let start = i;
            let (key_end, escaped) = string_end(b, i)?;
            if escaped {
                return None;
            }
            let key = text.get(i + 1..key_end - 1)?;
            let slash = memchr::memrchr(b'/', key.as_bytes());
            // Sorted and unique, as the writer leaves them.
            if prev.is_some_and(|p| p >= key) {
                return None;
            }
            prev = Some(key);
            if b.get(key_end) != Some(&b':') {
                return None;
            }
            let end = value_end(b, key_end + 1)?;
            entries.push(Entry {
                key,
                slash,
                start,
                end,
            });
            match b.get(end) {
                Some(b',') if end + 1 < body_end => i = end + 1,
                _ if end == body_end => i = end,
                _ => return None,
            }
        }
        Some(RefsText { text, entries })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every key, in order.
    pub fn keys(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.entries.iter().map(|e| e.key)
    }

    /// The entries whose key `keep` accepts, parsed.
    pub fn subset(&self, keep: impl Fn(&str) -> bool) -> Result<RefSet, Error> {
        self.subset_indices(
            self.entries
                .iter()
                .enumerate()
                .filter(|(_, e)| keep(e.key))
                .map(|(i, _)| i),
        )
    }

    /// The indices (in key order) of the entries whose `(prefix, leaf)`
    /// `keep` accepts: the prefix is the key up to its last `/` (`""` for a
    /// top-level key), the leaf what follows.
    pub fn indices_where(&self, mut keep: impl FnMut(&str, &str) -> bool) -> Vec<usize> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                let (p, l) = e.parts();
                keep(p, l)
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// The indices and leaves of the entries directly in the group or
    /// array `prefix` (keys `prefix/leaf`, no further `/`; `prefix` not
    /// empty), found by binary search: the keys are sorted, so every key
    /// starting with `prefix/` is in one run.
    pub fn children(&self, prefix: &str) -> Vec<(usize, &'a str)> {
        let p = format!("{prefix}/");
        let lo = self.entries.partition_point(|e| e.key < p.as_str());
        let n = self
            .entries
            .get(lo..)
            .map_or(0, |rest| rest.partition_point(|e| e.key.starts_with(&p)));
        (lo..lo + n)
            .filter_map(|i| {
                let (q, l) = self.entries.get(i)?.parts();
                (q == prefix).then_some((i, l))
            })
            .collect()
    }

    /// The entries at `idx` (any order, repeats ignored), parsed.
    pub fn subset_indices(&self, idx: impl IntoIterator<Item = usize>) -> Result<RefSet, Error> {
        let mut out = Joined::with_capacity(0);
        for e in idx.into_iter().filter_map(|i| self.entries.get(i)) {
            out.push(self.text.get(e.start..e.end).unwrap_or_default());
        }
        RefSet::from_json(&out.finish())
    }

    /// The text with the keys in `remove` left out and every key of `set`
    /// written (replacing an entry with the same key): untouched entries
    /// are copied as they are, in key order with the new ones. Runs of
    /// untouched entries are contiguous in the text (the writer separates
    /// entries by a single comma), so each run is copied at once; the
    /// edited keys are found by binary search: the cost is one copy of the
    /// text plus a logarithmic search per edit.
    pub fn apply(&self, remove: &HashSet<String>, set: &RefSet) -> String {
        let new = set.to_json();
        // The writer's own output is always in its form.
        let added = RefsText::scan(&new).map(|t| t.entries).unwrap_or_default();
        // Entry indices that are dropped (removed or replaced), sorted.
        let mut drop: Vec<usize> = remove
            .iter()
            .map(String::as_str)
            .chain(added.iter().map(|a| a.key))
            .filter_map(|k| self.entries.binary_search_by(|e| e.key.cmp(k)).ok())
            .collect();
        drop.sort_unstable();
        drop.dedup();
        let mut out = Joined::with_capacity(self.text.len() + new.len());
        let mut a = added.iter().peekable();
        // Copies entries `lo..hi` (untouched), interleaving the added
        // entries that sort before each; returns nothing.
        let mut copy = |lo: usize, hi: usize, out: &mut Joined| {
            let mut i = lo;
            while i < hi {
                // The added entries before entry `i`.
                while let Some(n) = a.next_if(|n| n.key < self.entries[i].key) {
                    out.push(new.get(n.start..n.end).unwrap_or_default());
                }
                // Untouched entries up to the next added key (or `hi`).
                let j = match a.peek() {
                    Some(n) => i + self.entries[i..hi].partition_point(|e| e.key < n.key),
                    None => hi,
                };
                if j > i {
                    out.push(
                        self.text
                            .get(self.entries[i].start..self.entries[j - 1].end)
                            .unwrap_or_default(),
                    );
                }
                i = j;
            }
        };
        let mut lo = 0;
        for &d in drop.iter().chain(std::iter::once(&self.entries.len())) {
            copy(lo, d, &mut out);
            lo = d + 1;
        }
        for n in a {
            out.push(new.get(n.start..n.end).unwrap_or_default());
        }
        out.finish()
    }
}

/// A text in the writer's form being put together from entry texts (each
/// `"key":value`, or a run of them with their commas), in key order.
struct Joined {
    out: String,
    first: bool,
}

impl Joined {
    fn with_capacity(n: usize) -> Joined {
        let mut out = String::with_capacity(n + HEAD.len() + TAIL.len());
        out.push_str(HEAD);
        Joined { out, first: true }
    }

    fn push(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push_str(s);
    }

    fn finish(mut self) -> String {
        self.out.push_str(TAIL);
        self.out
    }
}

/// A byte that may appear in a key [`SortedText`] finds by itself: not a
/// quote, backslash or control character, and none of `:,[]{}` (so a
/// `,"key":` found anywhere in the text is an entry, see
/// [`SortedText::next_start`]).
fn key_safe(b: u8) -> bool {
    b >= 0x20 && !matches!(b, b'"' | b'\\' | b':' | b',' | b'[' | b']' | b'{' | b'}')
}

/// One entry found by [`SortedText`]: its key and the byte range of the
/// whole `"key":value` in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Located<'a> {
    pub key: &'a str,
    pub start: usize,
    pub end: usize,
}

impl<'a> Located<'a> {
    /// `(prefix, leaf)`: the key split at its last `/` (`("", key)` for a
    /// top-level key).
    pub fn parts(&self) -> (&'a str, &'a str) {
        self.key.rsplit_once('/').unwrap_or(("", self.key))
    }
}

/// A reference set's JSON text in the writer's form, read *without*
/// scanning it: entries are found by binary search over the bytes, so
/// finding a key costs a logarithmic number of probes of a few hundred
/// bytes each, whatever the length of the text ([`RefsText`] scans every
/// entry once).
///
/// How an entry is found from any byte: in the writer's form (keys sorted,
/// compact, values strings or arrays of strings and numbers) the bytes
/// `,"K":` with `K` non-empty and [`key_safe`] are always the start of an
/// entry: the quote follows a comma, so it is not escaped; were it the
/// closing quote of a string, the next byte would be outside strings, one
/// of `:,]}`, none of which is key-safe; so it opens a string `K` that is
/// followed by `:`, a key, and the only object with keys is `refs`
/// (`"version"` lies after the body and is not searched). An entry whose
/// key is not key-safe (escapes, `:` ...) is not found from a probe, but is
/// never skipped where it matters: a search ends on two *adjacent* entries
/// (read one after the other, each checked), the last one before and the
/// first one at or after the key sought, and an entry that is read but not
/// key-safe makes the caller fall back to [`RefsText`] (or a parse).
///
/// What is not checked (it would cost the scan this avoids): that the
/// entries not read are sorted and well formed. The texts read this way
/// are the pipeline's own outputs, written whole by the deterministic
/// writer or by [`SortedText::apply`], which keeps the form; a foreign
/// text can make an update wrong (never panic or loop: every index is
/// checked), and `rebuild` rewrites every aggregate from its members.
#[derive(Debug, Clone, Copy)]
pub struct SortedText<'a> {
    text: &'a str,
    /// Byte range of the entries: after `{"refs":{`, before `},"version":1}`.
    lo: usize,
    hi: usize,
}

/// Below this many bytes a search reads entries one by one.
const LINEAR: usize = 512;

impl<'a> SortedText<'a> {
    /// `None` when the text does not start and end as the writer's does.
    pub fn open(text: &'a str) -> Option<SortedText<'a>> {
        let hi = text.len().checked_sub(TAIL.len())?;
        if !text.starts_with(HEAD) || text.get(hi..) != Some(TAIL) || hi < HEAD.len() {
            return None;
        }
        Some(SortedText {
            text,
            lo: HEAD.len(),
            hi,
        })
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Where the entries start (the first entry, or [`SortedText::end`]).
    pub fn start(&self) -> usize {
        self.lo
    }

    /// Where the entries end.
    pub fn end(&self) -> usize {
        self.hi
    }

    /// The entry starting at `at` (its key's opening quote), checked: a
    /// key-safe key, `:`, a value of the writer's form, then `,"` or the
    /// end of the entries. `None` at the end or when anything is off.
    pub fn entry(&self, at: usize) -> Option<Located<'a>> {
        if at >= self.hi || at < self.lo {
            return None;
        }
        let b = self.text.as_bytes();
        if at > self.lo && b.get(at - 1) != Some(&b',') {
            return None;
        }
        let (key_end, escaped) = string_end(b, at)?;
        let key = self.text.get(at + 1..key_end - 1)?;
        if escaped || key.is_empty() || !key.bytes().all(key_safe) {
            return None;
        }
        if b.get(key_end) != Some(&b':') {
            return None;
        }
        let end = value_end(b, key_end + 1)?;
        let ok = end == self.hi
            || (end < self.hi && b.get(end) == Some(&b',') && b.get(end + 1) == Some(&b'"'));
        ok.then_some(Located {
            key,
            start: at,
            end,
        })
    }

    /// Where the entry after `e` starts (or the end).
    pub fn after(&self, e: &Located<'_>) -> usize {
        if e.end >= self.hi { self.hi } else { e.end + 1 }
    }

    /// The start of the first entry found at or after byte `from` (see the
    /// type's documentation), or the end.
    fn next_start(&self, from: usize) -> usize {
        if from <= self.lo {
            return self.lo;
        }
        let b = self.text.as_bytes();
        let hay = b.get(from..self.hi).unwrap_or_default();
        // Quotes are a few bytes apart in any reference set: each search
        // is short.
        for j in memchr::memchr_iter(b'"', hay) {
            let q = from + j;
            if b.get(q - 1) != Some(&b',') {
                continue;
            }
            let k = b.get(q + 1..self.hi).unwrap_or_default();
            let n = k.iter().take_while(|&&c| key_safe(c)).count();
            if n > 0 && k.get(n) == Some(&b'"') && k.get(n + 1) == Some(&b':') {
                return q;
            }
        }
        self.hi
    }

    /// The start of the first entry whose key is `>= key`, searching from
    /// `from` (an entry start whose entries before are all `< key`, e.g.
    /// [`SortedText::start`] or a previous result for a smaller key), or
    /// the end; `None` when an entry read on the way is not in the form.
    ///
    /// The search gallops from `from` (probes `LINEAR`, then twice as far
    /// each time) before it bisects, so a key near `from` (the next edit,
    /// the next array) costs a few probes, one far away a logarithmic
    /// number.
    pub fn lower_bound(&self, key: &str, from: usize) -> Option<usize> {
        let (mut lo, mut hi) = (from.max(self.lo), self.hi);
        let mut step = LINEAR;
        while lo < hi && hi - lo > step {
            let s = self.next_start(lo + step);
            if s >= hi {
                break;
            }
            let e = self.entry(s)?;
            if e.key < key {
                lo = self.after(&e);
                step = step.saturating_mul(2);
            } else {
                hi = s;
                break;
            }
        }
        while lo < hi {
            if hi - lo > LINEAR {
                let s = self.next_start(lo + (hi - lo) / 2);
                if s < hi {
                    let e = self.entry(s)?;
                    if e.key < key {
                        lo = self.after(&e);
                    } else {
                        hi = s;
                    }
                    continue;
                }
            }
            // Read from `lo` on: the entries left start before `hi`.
            let e = self.entry(lo)?;
            if e.key >= key {
                return Some(lo);
            }
            lo = self.after(&e);
        }
        // `lo` is where the entry after one `< key` starts: the bound, if
        // it holds a key `>= key` (or is the end).
        match self.entry(lo) {
            None if lo >= self.hi => Some(self.hi),
            Some(e) if e.key >= key => Some(lo),
            _ => None,
        }
    }

    /// `Some(entry with exactly key)` or `Some(None)` when there is none
    /// (`None`: not in the form).
    pub fn find(&self, key: &str, from: usize) -> Option<Option<Located<'a>>> {
        let at = self.lower_bound(key, from)?;
        Some(self.entry(at).filter(|e| e.key == key))
    }

    /// The entries with keys in `[from_key, to_key)`, read one by one.
    pub fn range(&self, from_key: &str, to_key: &str) -> Option<Vec<Located<'a>>> {
        let mut at = self.lower_bound(from_key, self.lo)?;
        let mut out = Vec::new();
        while at < self.hi {
            let e = self.entry(at)?;
            if e.key >= to_key {
                break;
            }
            out.push(e);
            at = self.after(&e);
        }
        Some(out)
    }

    /// The metadata of the set: every entry whose leaf starts with `.z`,
    /// every top-level key, and `extra(prefix, leaf)`. Chunks are not
    /// visited: at an array's first chunk (a leaf starting with a digit)
    /// the walk jumps past `prefix/9...` (an array's chunk keys, digits and
    /// dots, form one run ending before `prefix/:`); `None` when an entry
    /// read is not in the form.
    pub fn metadata(&self, extra: impl Fn(&str, &str) -> bool) -> Option<Vec<Located<'a>>> {
        let mut out = Vec::new();
        let mut at = self.lo;
        while at < self.hi {
            let e = self.entry(at)?;
            let (prefix, leaf) = e.parts();
            let next = self.after(&e);
            if leaf.starts_with(".z") || prefix.is_empty() || extra(prefix, leaf) {
                out.push(e);
                at = next;
            } else if leaf.as_bytes().first().is_some_and(u8::is_ascii_digit) {
                at = self.lower_bound(&format!("{prefix}/:"), next)?.max(next);
            } else {
                at = next;
            }
        }
        Some(out)
    }

    /// The given entries (any order, repeats ignored), parsed.
    pub fn parse(&self, entries: &[Located<'_>]) -> Result<RefSet, Error> {
        let mut es: Vec<&Located<'_>> = entries.iter().collect();
        es.sort_by_key(|e| e.start);
        es.dedup_by_key(|e| e.start);
        let mut out = Joined::with_capacity(0);
        for e in es {
            out.push(self.text.get(e.start..e.end).unwrap_or_default());
        }
        RefSet::from_json(&out.finish())
    }

    /// [`RefsText::apply`] without the scan: the keys of `remove` and `set`
    /// are found by binary search (in key order, each search starting
    /// where the previous one ended) and the text between them is copied
    /// as it is. `None` when an entry read is not in the form.
    pub fn apply(&self, remove: &HashSet<String>, set: &RefSet) -> Option<String> {
        let new = set.to_json();
        let added = RefsText::scan(&new)?;
        let mut keys: Vec<&str> = remove
            .iter()
            .map(String::as_str)
            .chain(added.keys())
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let mut a = added.entries.iter().peekable();
        let mut out = Joined::with_capacity(self.text.len() + new.len());
        let mut cursor = self.lo;
        for k in keys {
            let at = self.lower_bound(k, cursor)?;
            // Untouched entries `cursor..at` (without the comma before `at`).
            let run_end = if at < self.hi {
                at.saturating_sub(1)
            } else {
                at
            };
            if at > cursor {
                out.push(self.text.get(cursor..run_end)?);
            }
            cursor = at;
            if let Some(e) = self.entry(at).filter(|e| e.key == k) {
                cursor = self.after(&e);
            }
            if let Some(n) = a.next_if(|n| n.key == k) {
                out.push(new.get(n.start..n.end)?);
            }
        }
        if cursor < self.hi {
            out.push(self.text.get(cursor..self.hi)?);
        }
        Some(out.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refs::Ref;

    fn sample() -> RefSet {
        let mut s = RefSet::new();
        s.insert(".zgroup", Ref::Text(r#"{"zarr_format":2}"#.into()));
        s.insert("a/.zarray", Ref::Text(r#"{"x":"[\"q\"]"}"#.into()));
        s.insert("a/0", Ref::Binary(vec![0, 255, 3]));
        s.insert(
            "a/1",
            Ref::Range {
                url: "s3://b/k\"1.nc".into(),
                offset: 3,
                length: 9,
            },
        );
        s.insert("a/2", Ref::Url("s3://b/[k].nc".into()));
        s.insert("b/0", Ref::Text("x,y]".into()));
        s
    }

    #[test]
    fn scan_subset_and_apply_equal_the_parsed_route() {
        let s = sample();
        let text = s.to_json();
        let t = RefsText::scan(&text).unwrap();
        assert_eq!(
            t.keys().collect::<Vec<_>>(),
            s.refs.keys().map(String::as_str).collect::<Vec<_>>()
        );
        let sub = t.subset(|k| k.starts_with("a/")).unwrap();
        let mut want = s.clone();
        want.refs.retain(|k, _| k.starts_with("a/"));
        assert_eq!(sub, want);
        // edits: remove a/1, replace a/0, add a/3 and c/.zattrs
        let remove: HashSet<String> = ["a/1".to_string()].into();
        let mut set = RefSet::new();
        set.insert("a/0", Ref::Text("new".into()));
        set.insert(
            "a/3",
            Ref::Range {
                url: "u".into(),
                offset: 1,
                length: 2,
            },
        );
        set.insert("c/.zattrs", Ref::Text("{}".into()));
        set.insert(".a", Ref::Text("first".into()));
        let mut parsed = s.clone();
        parsed.refs.remove("a/1");
        parsed.refs.extend(set.refs.clone());
        assert_eq!(t.apply(&remove, &set), parsed.to_json());
        assert_eq!(t.apply(&HashSet::new(), &RefSet::new()), text);
        assert!(RefsText::scan(&RefSet::new().to_json()).unwrap().is_empty());
    }

    #[test]
    fn children_and_many_edits_equal_the_parsed_route() {
        let mut s = RefSet::new();
        for k in [
            ".zgroup",
            "a/.zarray",
            "a/x/.zarray",
            "a/x/0",
            "a.b/0",
            "a_c/0",
            "ab/0",
        ] {
            s.insert(k, Ref::Text(k.into()));
        }
        for i in 0..30 {
            s.insert(format!("a/{i}.0"), Ref::Text(format!("v{i}")));
        }
        let text = s.to_json();
        let t = RefsText::scan(&text).unwrap();
        let kids: Vec<&str> = t.children("a").into_iter().map(|(_, l)| l).collect();
        let mut want: Vec<&str> = s
            .refs
            .keys()
            .filter_map(|k| k.strip_prefix("a/"))
            .filter(|l| !l.contains('/'))
            .collect();
        want.sort();
        assert_eq!(kids, want);
        assert_eq!(t.children("a/x").len(), 2);
        assert!(t.children("zz").is_empty());
        let idx = t.indices_where(|p, l| p == "a" && l.starts_with('1'));
        assert_eq!(idx.len(), 11);
        // Removals, replacements and additions everywhere, also adjacent.
        for step in 1..7 {
            let remove: HashSet<String> = (0..30)
                .step_by(step)
                .map(|i| format!("a/{i}.0"))
                .chain([".zgroup".to_string(), "ab/0".to_string()])
                .collect();
            let mut set = RefSet::new();
            for i in (0..40).step_by(step + 1) {
                set.insert(format!("a/{i}.0"), Ref::Text(format!("new{i}")));
            }
            set.insert("a.b/0", Ref::Text("r".into()));
            set.insert("zz", Ref::Text("last".into()));
            set.insert(".a", Ref::Text("first".into()));
            let mut parsed = s.clone();
            parsed.refs.retain(|k, _| !remove.contains(k));
            parsed.refs.extend(set.refs.clone());
            assert_eq!(t.apply(&remove, &set), parsed.to_json(), "step {step}");
        }
    }

    #[test]
    fn other_forms_are_not_recognised() {
        for text in [
            "",
            "{}",
            r#"{"version":1,"refs":{}}"#,
            r#"{"refs":{"a":1},"version":1}"#,
            r#"{"refs":{"b":"x","a":"y"},"version":1}"#,
            r#"{"refs":{"a\n":"x"},"version":1}"#,
            r#"{"refs":{"a":"x"},"source":{},"version":1}"#,
            r#"{"refs":{"a":"x" },"version":1}"#,
            r#"{"refs":{"a":["x",{}]},"version":1}"#,
            r#"{"refs":{"a":"x,"version":1}"#,
        ] {
            assert!(RefsText::scan(text).is_none(), "{text}");
        }
    }

    /// A deterministic pseudo-random generator (xorshift).
    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    /// A set of `n` keys drawn from `alphabet` (plus chunk-like keys), with
    /// values that contain the separators a search looks for.
    fn random_set(seed: &mut u64, n: usize, alphabet: &[&str]) -> RefSet {
        let tricky = [
            r#","k":"#,
            r#"","a/0":["#,
            ",",
            ":",
            r#"\",\"x\":"#,
            "],\"",
            "{\"a\":1}",
            "",
        ];
        let mut s = RefSet::new();
        for _ in 0..n {
            let parts = 1 + rng(seed) % 3;
            let key: Vec<&str> = (0..parts)
                .map(|_| alphabet[(rng(seed) % alphabet.len() as u64) as usize])
                .collect();
            let key = key.join("/");
            let v = match rng(seed) % 4 {
                0 => Ref::Text(format!(
                    "{}{}",
                    tricky[(rng(seed) % tricky.len() as u64) as usize],
                    rng(seed) % 100
                )),
                1 => Ref::Range {
                    url: format!("s3://b/{}", tricky[(rng(seed) % 8) as usize]),
                    offset: rng(seed) % 1000,
                    length: 5,
                },
                2 => Ref::Url(format!("s3://b/x{}", rng(seed) % 10)),
                _ => Ref::Binary(vec![0, 255, (rng(seed) % 256) as u8]),
            };
            s.insert(key, v);
        }
        s
    }

    #[test]
    fn sorted_text_finds_what_the_scan_finds_or_gives_up() {
        let safe = ["a", "b", ".zarray", "0.1", "1.0", "10.0", "2", "v00", "z_1"];
        let weird = ["a", "b\"q", "c:d", "e,f", "g\\h", "0.1", "[x]", "2", "t{"];
        let mut seed = 0x2545_f491_4f6c_dd1d;
        let mut gave_up = 0;
        for round in 0..300 {
            let alphabet: &[&str] = if round % 2 == 0 { &safe } else { &weird };
            let s = random_set(&mut seed, 1 + round % 60, alphabet);
            let text = s.to_json();
            let lazy = SortedText::open(&text).unwrap();
            // Where each entry starts, from each entry written alone.
            let keys: Vec<&str> = s.refs.keys().map(String::as_str).collect();
            let mut starts = Vec::new();
            let mut at = HEAD.len();
            for (k, v) in &s.refs {
                let mut one = RefSet::new();
                one.insert(k.clone(), v.clone());
                let j = one.to_json();
                starts.push(at);
                at += j.len() - HEAD.len() - TAIL.len() + 1;
            }
            // Every key, and keys between them.
            let mut probes: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
            probes.extend(keys.iter().map(|k| format!("{k}0")));
            probes.extend(["".into(), "~".into(), "a/:".into(), "v00/".into()]);
            for p in &probes {
                let want = keys.partition_point(|k| *k < p.as_str());
                match lazy.lower_bound(p, lazy.start()) {
                    Some(at) => {
                        assert_eq!(
                            Some(&at),
                            starts.get(want).or(Some(&lazy.end())),
                            "{text} {p}"
                        )
                    }
                    None => {
                        // Only where a key that cannot be found is near.
                        assert!(round % 2 == 1, "{text} {p}");
                        gave_up += 1;
                    }
                }
            }
            // Edits: the lazy apply equals the parsed route, or gives up.
            let remove: HashSet<String> = keys
                .iter()
                .filter(|_| rng(&mut seed).is_multiple_of(3))
                .map(|k| k.to_string())
                .collect();
            let set = random_set(&mut seed, 5, alphabet);
            let mut parsed = s.clone();
            parsed.refs.retain(|k, _| !remove.contains(k));
            parsed.refs.extend(set.refs.clone());
            match lazy.apply(&remove, &set) {
                Some(t) => assert_eq!(t, parsed.to_json(), "{text}"),
                None => assert!(round % 2 == 1, "{text}"),
            }
            if round % 2 == 0 {
                let meta = lazy.metadata(|_, _| false).unwrap();
                let want: Vec<&str> = keys
                    .iter()
                    .copied()
                    .filter(|k| {
                        let (p, l) = k.rsplit_once('/').unwrap_or(("", k));
                        p.is_empty() || l.starts_with(".z")
                    })
                    .collect();
                let got: Vec<&str> = meta.iter().map(|e| e.key).collect();
                // Keys under a prefix after its chunks are skipped only
                // when they are not zarr (an array has no children).
                assert!(got.iter().all(|k| want.contains(k)), "{text}");
            }
        }
        assert!(gave_up > 0);
    }

    #[test]
    fn sorted_text_on_an_aggregate() {
        let mut s = sample();
        for i in 0..500 {
            s.insert(
                format!("v/{i}.0"),
                Ref::Range {
                    url: format!("s3://b/f{i}.nc"),
                    offset: 7,
                    length: 9,
                },
            );
        }
        s.insert("v/.zarray", Ref::Text("{\"chunks\":[1,1]}".into()));
        s.insert("w/.zattrs", Ref::Text("{}".into()));
        s.insert("w/0", Ref::Text(",\"w/1\":[".into()));
        let text = s.to_json();
        let lazy = SortedText::open(&text).unwrap();
        let e = lazy.find("v/499.0", lazy.start()).unwrap().unwrap();
        assert_eq!(lazy.parse(&[e]).unwrap().get("v/499.0"), s.get("v/499.0"));
        assert_eq!(lazy.find("v/500.0", lazy.start()), Some(None));
        let meta: Vec<&str> = lazy
            .metadata(|p, l| p == "a" && l == "0")
            .unwrap()
            .iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(
            meta,
            [".zgroup", "a/.zarray", "a/0", "v/.zarray", "w/.zattrs"]
        );
        let run = lazy.range("v/3", "v/4").unwrap();
        assert_eq!(run.len(), 111);
        let remove: HashSet<String> = (0..500).step_by(7).map(|i| format!("v/{i}.0")).collect();
        let mut set = RefSet::new();
        set.insert("v/500.0", Ref::Url("s3://b/new.nc".into()));
        set.insert("v/.zarray", Ref::Text("{\"chunks\":[1,2]}".into()));
        let scanned = RefsText::scan(&text).unwrap().apply(&remove, &set);
        assert_eq!(lazy.apply(&remove, &set).unwrap(), scanned);
        assert_eq!(lazy.apply(&HashSet::new(), &RefSet::new()).unwrap(), text);
    }

    #[test]
    fn sorted_text_gives_up_on_other_forms() {
        for text in [
            "",
            "{}",
            r#"{"version":1,"refs":{}}"#,
            r#"{"refs":{"a":"x,"version":1}"#,
        ] {
            assert!(SortedText::open(text).is_none(), "{text}");
        }
        // Found but not in the form: searches give up, never answer wrong.
        for text in [
            r#"{"refs":{"a":1},"version":1}"#,
            r#"{"refs":{"a\n":"x"},"version":1}"#,
            r#"{"refs":{"a":"x" },"version":1}"#,
            r#"{"refs":{"a":["x",{}]},"version":1}"#,
            r#"{"refs":{"a:b":"x"},"version":1}"#,
            r#"{"refs":{"a":"x"},"source":{},"version":1}"#,
        ] {
            let t = SortedText::open(text).unwrap();
            assert_eq!(t.lower_bound("b", t.start()), None, "{text}");
            assert!(t.metadata(|_, _| true).is_none(), "{text}");
        }
    }

    #[test]
    fn sorted_text_on_garbage_never_panics_or_loops() {
        let bytes = b",\"\\:[]{}az0./ \n";
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        for n in 0..400 {
            let body: String = (0..n % 200)
                .map(|_| bytes[(rng(&mut seed) % bytes.len() as u64) as usize] as char)
                .collect();
            let text = format!("{HEAD}{body}{TAIL}");
            let t = SortedText::open(&text).unwrap();
            for key in ["", "a", "a/0", "z", "~"] {
                if let Some(at) = t.lower_bound(key, t.start()) {
                    assert!(at <= t.end());
                }
            }
            let _ = t.metadata(|_, _| true);
            let _ = t.range("a", "b");
            let mut set = RefSet::new();
            set.insert("a/0", Ref::Text("x".into()));
            let _ = t.apply(&["z".to_string()].into(), &set);
        }
    }
}
