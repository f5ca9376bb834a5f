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
        let mut out = String::from(HEAD);
        let mut first = true;
        for e in idx.into_iter().filter_map(|i| self.entries.get(i)) {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(self.text.get(e.start..e.end).unwrap_or_default());
        }
        out.push_str(TAIL);
        RefSet::from_json(&out)
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
        let mut out = String::with_capacity(self.text.len() + new.len());
        out.push_str(HEAD);
        let mut first = true;
        let mut push = |s: &str| {
            if s.is_empty() {
                return;
            }
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(s);
        };
        let mut a = added.iter().peekable();
        // Copies entries `lo..hi` (untouched), interleaving the added
        // entries that sort before each; returns nothing.
        let mut copy = |lo: usize, hi: usize, push: &mut dyn FnMut(&str)| {
            let mut i = lo;
            while i < hi {
                // The added entries before entry `i`.
                while let Some(n) = a.next_if(|n| n.key < self.entries[i].key) {
                    push(new.get(n.start..n.end).unwrap_or_default());
                }
                // Untouched entries up to the next added key (or `hi`).
                let j = match a.peek() {
                    Some(n) => i + self.entries[i..hi].partition_point(|e| e.key < n.key),
                    None => hi,
                };
                if j > i {
                    push(
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
            copy(lo, d, &mut push);
            lo = d + 1;
        }
        for n in a {
            push(new.get(n.start..n.end).unwrap_or_default());
        }
        out.push_str(TAIL);
        out
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
}
