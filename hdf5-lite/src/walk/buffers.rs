//! Buffers of the walk: the byte cache every structure is parsed from,
//! coalescing of wanted ranges into requests, and the [`Prefetched`] source
//! that serves what a walk fetched to the reference writer.

use super::*;

// ---------------------------------------------------------------------------
// Byte cache
// ---------------------------------------------------------------------------

/// Fetched extents keyed by start; lookups are served from any extent that
/// covers them. A wanted range is trimmed to its uncached part, except that
/// a cached middle is fetched again (one request beats two).
#[derive(Default)]
pub(super) struct Cache {
    pub(super) extents: BTreeMap<u64, Bytes>,
}

impl Cache {
    pub(super) fn get(&self, start: u64, len: u64) -> Option<Bytes> {
        let (s, b) = self.extents.range(..=start).next_back()?;
        let off = (start - s) as usize;
        let end = off.checked_add(len as usize)?;
        (end <= b.len()).then(|| b.slice(off..end))
    }
    /// The cached bytes from `start`, at most `max` of them (fewer where the
    /// extent holding `start` ends sooner).
    pub(super) fn get_prefix(&self, start: u64, max: u64) -> Option<Bytes> {
        let (s, b) = self.extents.range(..=start).next_back()?;
        let off = usize::try_from(start - s).ok()?;
        let end = (off as u64).saturating_add(max).min(b.len() as u64) as usize;
        (off < end).then(|| b.slice(off..end))
    }
    /// The part of `start..end` not yet cached, trimmed at both ends (a
    /// hole in the middle is fetched whole: one request beats two).
    pub(super) fn uncovered(&self, start: u64, end: u64) -> Option<Range<u64>> {
        let mut s = start;
        if let Some((es, b)) = self.extents.range(..=s).next_back() {
            s = s.max(es + b.len() as u64);
        }
        let mut e = end;
        if let Some((es, b)) = self.extents.range(..e).next_back()
            && *es > s
            && es + b.len() as u64 >= e
        {
            e = *es;
        }
        (s < e).then_some(s..e)
    }

    /// Insert an extent, merging it with every extent it touches so extents
    /// stay disjoint and a lookup only needs the nearest one below.
    pub(super) fn insert(&mut self, start: u64, b: Bytes) {
        if b.is_empty() {
            return;
        }
        let end = start + b.len() as u64;
        let touching: Vec<u64> = self
            .extents
            .range(..=end)
            .rev()
            .take_while(|(s, e)| **s + e.len() as u64 >= start)
            .map(|(s, _)| *s)
            .collect();
        if touching.is_empty() {
            self.extents.insert(start, b);
            return;
        }
        let lo = touching.iter().copied().min().unwrap_or(start).min(start);
        let mut hi = end;
        for s in &touching {
            if let Some(e) = self.extents.get(s) {
                hi = hi.max(*s + e.len() as u64);
            }
        }
        let mut buf = vec![0u8; (hi - lo) as usize];
        for s in &touching {
            if let Some(e) = self.extents.remove(s) {
                let o = (*s - lo) as usize;
                buf[o..o + e.len()].copy_from_slice(&e);
            }
        }
        let o = (start - lo) as usize;
        buf[o..o + b.len()].copy_from_slice(&b);
        self.extents.insert(lo, Bytes::from(buf));
    }
}

/// Merge sorted ranges that are closer than `gap`, without growing a merged
/// range past `max` (object_store's `coalesce_ranges` idea).
pub fn coalesce(mut ranges: Vec<Range<u64>>, gap: u64, max: u64) -> Vec<Range<u64>> {
    ranges.sort_by_key(|r| (r.start, r.end));
    let mut out: Vec<Range<u64>> = Vec::new();
    for r in ranges {
        if let Some(last) = out.last_mut()
            && r.start <= last.end.saturating_add(gap)
            && r.end.max(last.end) - last.start <= max
        {
            last.end = last.end.max(r.end);
            continue;
        }
        out.push(r);
    }
    out
}

/// A [`RangeSource`] over the bytes a walk already fetched: ranges it holds
/// are answered from memory, the others (all of one call together) from the
/// underlying source. Counts what it had to fetch, so `--stats` can report
/// the round trips of a whole `refs` run, not only of the walk.
pub struct Prefetched {
    inner: Arc<dyn RangeSource>,
    cache: Cache,
    /// The ranges the walk's parsers used (see [`Prefetched::layout_ranges`]).
    layout: Vec<Range<u64>>,
    misses: std::sync::Mutex<(Stats, Vec<Range<u64>>)>,
}

impl Prefetched {
    /// Nothing prefetched: every range goes to `inner` (and is counted).
    pub(crate) fn passthrough(inner: Arc<dyn RangeSource>) -> Self {
        Prefetched::new(inner, Cache::default(), Vec::new())
    }

    pub(super) fn new(inner: Arc<dyn RangeSource>, cache: Cache, layout: Vec<Range<u64>>) -> Self {
        Prefetched {
            inner,
            cache,
            layout,
            misses: std::sync::Mutex::new((Stats::default(), Vec::new())),
        }
    }

    /// Requests, bytes and waves sent to the underlying source since the
    /// walk ended (coalescing is the underlying source's business).
    pub fn miss_stats(&self) -> Stats {
        self.misses.lock().map(|s| s.0.clone()).unwrap_or_default()
    }

    /// The layout a sibling file is predicted to need
    /// ([`Options::predicted`], [`crate::layout_cache`]): the ranges the
    /// walk's parsers used (structures, the data it prefetched) and every
    /// range asked for since. Not everything fetched: a walk given a
    /// prediction fetches it whole, and keeping what it did not use would
    /// make a series' layout grow with every file whose structures moved
    /// (compressed series), until it passed the cache's size cap.
    pub fn layout_ranges(&self) -> Vec<Range<u64>> {
        let mut out = self.layout.clone();
        if let Ok(m) = self.misses.lock() {
            out.extend(m.1.iter().cloned());
        }
        coalesce(out, 0, u64::MAX)
    }
}

impl RangeSource for Prefetched {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn get_ranges<'a>(
        &'a self,
        ranges: &'a [Range<u64>],
    ) -> crate::source::BoxFuture<'a, Result<Vec<Bytes>, SourceError>> {
        Box::pin(async move {
            let mut out: Vec<Option<Bytes>> = ranges
                .iter()
                .map(|r| {
                    (r.end >= r.start)
                        .then(|| self.cache.get(r.start, r.end - r.start))
                        .flatten()
                })
                .collect();
            let missing: Vec<usize> = (0..ranges.len()).filter(|i| out[*i].is_none()).collect();
            if !missing.is_empty() {
                let want: Vec<Range<u64>> = missing.iter().map(|i| ranges[*i].clone()).collect();
                let got = self.inner.get_ranges(&want).await?;
                if let Ok(mut m) = self.misses.lock() {
                    m.0.waves += 1;
                    m.0.requests += want.len() as u64;
                    m.0.bytes_fetched += got.iter().map(|b| b.len() as u64).sum::<u64>();
                    m.1.extend(want.iter().cloned());
                }
                for (i, b) in missing.into_iter().zip(got) {
                    out[i] = Some(b);
                }
            }
            Ok(out.into_iter().map(Option::unwrap_or_default).collect())
        })
    }

    fn size(&self) -> crate::source::BoxFuture<'_, Result<u64, SourceError>> {
        self.inner.size()
    }
}

#[cfg(test)]
mod buffer_tests {
    //! Property tests of the byte cache and of coalescing against simple
    //! models, over many random cases from a fixed-seed generator (no
    //! dependency needed for that).
    use super::*;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    /// The byte at `i` of the pretend file.
    fn byte(i: u64) -> u8 {
        (i.wrapping_mul(2_654_435_761) >> 7) as u8
    }

    #[test]
    fn cache_serves_exactly_what_was_inserted() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _case in 0..300 {
            let mut cache = Cache::default();
            let mut known = vec![false; 4096];
            for _ in 0..rng.below(12) {
                let s = rng.below(4000);
                let n = rng.below(300);
                let e = (s + n).min(4096);
                cache.insert(s, Bytes::from((s..e).map(byte).collect::<Vec<_>>()));
                known[s as usize..e as usize]
                    .iter_mut()
                    .for_each(|k| *k = true);
            }
            // Extents stay disjoint and non-touching.
            let ext: Vec<(u64, u64)> = cache
                .extents
                .iter()
                .map(|(s, b)| (*s, *s + b.len() as u64))
                .collect();
            assert!(ext.windows(2).all(|w| w[0].1 < w[1].0), "{ext:?}");
            for _ in 0..50 {
                let s = rng.below(4096);
                let n = rng.below(400);
                let e = (s + n).min(4096);
                let all = known[s as usize..e as usize].iter().all(|k| *k);
                match cache.get(s, e - s) {
                    Some(b) => {
                        assert!(all, "served bytes never inserted at {s}..{e}");
                        assert!(b.iter().zip(s..).all(|(v, i)| *v == byte(i)));
                    }
                    None => assert!(!all || e == s, "{s}..{e} cached but not served"),
                }
                // Everything not cached in s..e lies inside `uncovered`.
                let u = cache.uncovered(s, e);
                for i in s..e {
                    if !known[i as usize] {
                        assert!(u.as_ref().is_some_and(|u| u.contains(&i)), "{i} missed");
                    }
                }
                if let Some(u) = u {
                    assert!(s <= u.start && u.end <= e && u.start < u.end);
                }
            }
        }
    }

    #[test]
    fn coalesce_covers_every_range_and_respects_limits() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for _case in 0..500 {
            let gap = rng.below(64);
            let max = 1 + rng.below(500);
            let input: Vec<Range<u64>> = (0..rng.below(20))
                .map(|_| {
                    let s = rng.below(2000);
                    s..s + rng.below(200)
                })
                .collect();
            let out = coalesce(input.clone(), gap, max);
            assert!(out.windows(2).all(|w| w[0].start <= w[1].start));
            for r in &input {
                assert!(
                    out.iter().any(|o| o.start <= r.start && r.end <= o.end),
                    "{r:?} not covered by {out:?}"
                );
            }
            for o in &out {
                // A merged range exceeds `max` only if one input alone did.
                let alone = input.contains(o);
                assert!(o.end - o.start <= max || alone, "{o:?} > {max}");
            }
            assert!(out.len() <= input.len());
        }
    }
}
