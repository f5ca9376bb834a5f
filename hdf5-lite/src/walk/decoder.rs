//! The walk as a sans-IO push decoder (the pattern of arrow-rs' parquet
//! push decoder): [`Decoder::poll`] says what it needs next, the caller
//! fetches it however it likes and hands the bytes over with
//! [`Decoder::push`]. The decoder never does I/O; [`super::open_prefetched`]
//! is its small async driver over a [`RangeSource`].
//!
//! ```text
//! loop {
//!     match decoder.poll()? {
//!         Poll::Need(ranges) => for (r, b) in fetch(ranges) { decoder.push(r, b) },
//!         Poll::NeedSize => decoder.push_size(size_of_file),
//!         Poll::Done(done) => break done,
//!     }
//! }
//! ```
//!
//! Each `Need` is one wave: every range in it can be fetched concurrently,
//! and the decoder only moves on once all of them were pushed.

use super::*;

/// What the decoder wants next.
#[derive(Debug)]
pub enum Poll {
    /// These byte ranges (one wave; fetch them together). A range past the
    /// end of the file is answered with the bytes that exist.
    Need(Vec<Range<u64>>),
    /// The size of the file (known to a source after its first response).
    NeedSize,
    /// The walk is complete.
    Done(Box<Decoded>),
}

/// A finished walk: the model, what it cost, the bytes it fetched, and
/// the ranges its parsers used (its layout, sorted and merged).
pub struct Decoded {
    pub file: File,
    pub stats: Stats,
    pub layout: Vec<Range<u64>>,
    cache: Cache,
}

impl std::fmt::Debug for Decoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoded")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Decoded {
    /// A source that serves every byte the walk fetched from memory and
    /// asks `inner` for the rest.
    pub fn into_prefetched(self, inner: Arc<dyn RangeSource>) -> (File, Stats, Arc<Prefetched>) {
        (
            self.file,
            self.stats,
            Arc::new(Prefetched::new(inner, self.cache, self.layout)),
        )
    }
}

/// Where the decoder is.
enum Phase {
    /// The first wave (head and predicted ranges) is asked for.
    Head { want: Vec<Range<u64>> },
    /// The head holds no signature: candidate offsets (512, 1024, ...) are
    /// tried one per wave.
    Signature {
        cache: Cache,
        stats: Stats,
        candidates: std::collections::VecDeque<u64>,
    },
    /// The signature is at `at`; its superblock is not in the cache yet.
    Superblock { at: u64, cache: Cache, stats: Stats },
    /// The walk proper; `wave` is the one whose bytes are awaited.
    Walk { w: Box<Walker>, wave: Option<Wave> },
    /// Done (or failed): polling again is an error.
    Finished,
}

/// Sans-IO walk of one HDF5 file.
pub struct Decoder {
    name: String,
    opts: Options,
    size: Option<u64>,
    phase: Phase,
    /// Pushed bytes not yet consumed, by range.
    inbox: HashMap<(u64, u64), Bytes>,
    /// Prefetch planners, handed to the walk once the superblock parsed.
    planners: Vec<Box<dyn Planner>>,
}

impl Decoder {
    /// A decoder for the file called `name` (used in errors).
    pub fn new(name: String, opts: Options) -> Self {
        let mut planners = planner::initial_planners(&opts);
        let want = planner::head_and_planned(&opts, &mut planners);
        Decoder {
            name,
            opts,
            size: None,
            phase: Phase::Head { want },
            inbox: HashMap::new(),
            planners,
        }
    }

    /// Hand over the bytes of a range from [`Poll::Need`].
    pub fn push(&mut self, range: Range<u64>, bytes: Bytes) {
        self.inbox.insert((range.start, range.end), bytes);
    }

    /// Hand over the size of the file ([`Poll::NeedSize`]).
    pub fn push_size(&mut self, size: u64) {
        self.size = Some(size);
    }

    /// Ranges of `want` not pushed yet.
    fn missing(&self, want: &[Range<u64>]) -> Vec<Range<u64>> {
        want.iter()
            .filter(|r| !self.inbox.contains_key(&(r.start, r.end)))
            .cloned()
            .collect()
    }

    /// The pushed bytes of `want`, in order (consumed).
    fn take(&mut self, want: &[Range<u64>]) -> Vec<Bytes> {
        want.iter()
            .map(|r| self.inbox.remove(&(r.start, r.end)).unwrap_or_default())
            .collect()
    }

    fn format_err(&self, structure: &'static str, address: u64, reason: String) -> Error {
        Error::Format {
            file: self.name.clone(),
            error: FormatError::new(structure, address, reason),
        }
    }

    /// Advance as far as the pushed bytes allow; say what is needed next.
    pub fn poll(&mut self) -> Result<Poll, Error> {
        let r = self.step();
        if r.is_err() {
            self.phase = Phase::Finished;
        }
        r
    }

    fn step(&mut self) -> Result<Poll, Error> {
        loop {
            match std::mem::replace(&mut self.phase, Phase::Finished) {
                Phase::Head { want } => {
                    let missing = self.missing(&want);
                    if !missing.is_empty() {
                        self.phase = Phase::Head { want };
                        return Ok(Poll::Need(missing));
                    }
                    let Some(size) = self.size else {
                        self.phase = Phase::Head { want };
                        return Ok(Poll::NeedSize);
                    };
                    let got = self.take(&want);
                    let stats = Stats {
                        requests: want.len() as u64,
                        bytes_fetched: got.iter().map(|b| b.len() as u64).sum(),
                        waves: 1,
                        file_size: size,
                        metadata_bytes: 0,
                    };
                    let mut cache = Cache::default();
                    for (r, b) in want.iter().zip(got) {
                        cache.insert(r.start, b);
                    }
                    let head = cache.extents.get(&0).cloned().unwrap_or_default();
                    // The signature may sit past the speculative head (large
                    // user block).
                    self.phase = match superblock::find_signature(&head) {
                        Some(at) => Phase::Superblock { at, cache, stats },
                        None => Phase::Signature {
                            cache,
                            stats,
                            candidates: superblock::candidate_offsets(size)
                                .filter(|o| *o + 8 > head.len() as u64)
                                .collect(),
                        },
                    };
                }
                Phase::Signature {
                    cache,
                    mut stats,
                    mut candidates,
                } => {
                    let Some(&o) = candidates.front() else {
                        return Err(self.format_err(
                            "superblock",
                            0,
                            "no HDF5 signature found: not an HDF5/NetCDF-4 file".into(),
                        ));
                    };
                    let want = [o..o + 8];
                    if !self.missing(&want).is_empty() {
                        self.phase = Phase::Signature {
                            cache,
                            stats,
                            candidates,
                        };
                        return Ok(Poll::Need(want.to_vec()));
                    }
                    let b = self.take(&want);
                    stats.requests += 1;
                    stats.waves += 1;
                    candidates.pop_front();
                    self.phase = if b.first().is_some_and(|b| &b[..] == superblock::SIGNATURE) {
                        Phase::Superblock {
                            at: o,
                            cache,
                            stats,
                        }
                    } else {
                        Phase::Signature {
                            cache,
                            stats,
                            candidates,
                        }
                    };
                }
                Phase::Superblock {
                    at,
                    mut cache,
                    mut stats,
                } => {
                    let size = self.size.unwrap_or(0);
                    let sb_bytes = match cache.get(at, 256.min(size.saturating_sub(at))) {
                        Some(b) => b,
                        None => {
                            let want = [at..at + 256];
                            if !self.missing(&want).is_empty() {
                                self.phase = Phase::Superblock { at, cache, stats };
                                return Ok(Poll::Need(want.to_vec()));
                            }
                            let b = self.take(&want).into_iter().next().unwrap_or_default();
                            stats.requests += 1;
                            stats.waves += 1;
                            stats.bytes_fetched += b.len() as u64;
                            cache.insert(at, b.clone());
                            b
                        }
                    };
                    let sb = superblock::parse(&sb_bytes, at).map_err(|e| Error::Format {
                        file: self.name.clone(),
                        error: e.into_format("superblock", at, sb_bytes.len()),
                    })?;
                    let w = Walker::new(
                        self.name.clone(),
                        self.opts.clone(),
                        size,
                        (at, sb),
                        cache,
                        stats,
                        std::mem::take(&mut self.planners),
                    )?;
                    self.phase = Phase::Walk {
                        w: Box::new(w),
                        wave: None,
                    };
                }
                Phase::Walk { mut w, wave } => {
                    if let Some(wave) = wave {
                        let missing = self.missing(&wave.ranges);
                        if !missing.is_empty() {
                            self.phase = Phase::Walk {
                                w,
                                wave: Some(wave),
                            };
                            return Ok(Poll::Need(missing));
                        }
                        let got = self.take(&wave.ranges);
                        w.finish_wave(wave, got)?;
                    }
                    w.progress()?;
                    if w.jobs.is_empty() {
                        let file = w.assemble()?;
                        w.stats.metadata_bytes = w.metadata_bytes();
                        return Ok(Poll::Done(Box::new(Decoded {
                            file,
                            stats: w.stats.clone(),
                            layout: coalesce(std::mem::take(&mut w.served), 0, u64::MAX),
                            cache: std::mem::take(&mut w.cache),
                        })));
                    }
                    let wave = w.plan_wave()?;
                    if wave.ranges.is_empty() {
                        w.finish_wave(wave, Vec::new())?;
                        self.phase = Phase::Walk { w, wave: None };
                        continue;
                    }
                    let need = wave.ranges.clone();
                    self.phase = Phase::Walk {
                        w,
                        wave: Some(wave),
                    };
                    return Ok(Poll::Need(need));
                }
                Phase::Finished => {
                    return Err(self.format_err(
                        "walk",
                        0,
                        "decoder polled after it finished".into(),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decoder driven by hand, with ranges pushed one at a time and in
    /// reverse order, gives the same model and counters as `open`.
    #[test]
    fn push_decoder_matches_the_async_driver() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/files/ofs/dbofs.20241005/dbofs.t06z.20241005.stations.nowcast.nc"
        );
        let data = Bytes::from(std::fs::read(path).unwrap());
        let opts = Options::default();
        let mut d = Decoder::new("x".into(), opts.clone());
        let mut polls = 0;
        let done = loop {
            polls += 1;
            assert!(polls < 1000);
            match d.poll().unwrap() {
                Poll::Need(ranges) => {
                    let mut ranges = ranges.into_iter().rev();
                    // Pushing part of a wave yields the rest again, never a
                    // step forward.
                    if let Some(r) = ranges.next() {
                        let e = r.end.min(data.len() as u64) as usize;
                        d.push(r.clone(), data.slice((r.start as usize).min(e)..e));
                        if ranges.len() > 0 {
                            let Poll::Need(rest) = d.poll().unwrap() else {
                                panic!("a partly pushed wave moved on")
                            };
                            assert_eq!(rest.len(), ranges.len());
                        }
                    }
                    for r in ranges {
                        let e = r.end.min(data.len() as u64) as usize;
                        d.push(r.clone(), data.slice((r.start as usize).min(e)..e));
                    }
                }
                Poll::NeedSize => d.push_size(data.len() as u64),
                Poll::Done(done) => break done,
            }
        };
        let src: Arc<dyn RangeSource> = Arc::new(crate::MemorySource::new("x", data.to_vec()));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (file, stats) = rt.block_on(open(src, &opts)).unwrap();
        assert_eq!(format!("{:?}", done.file), format!("{file:?}"));
        assert_eq!(
            (
                done.stats.waves,
                done.stats.requests,
                done.stats.bytes_fetched
            ),
            (stats.waves, stats.requests, stats.bytes_fetched)
        );
    }

    #[test]
    fn a_wave_is_not_left_before_all_of_it_was_pushed() {
        let mut d = Decoder::new("x".into(), Options::default());
        let Poll::Need(first) = d.poll().unwrap() else {
            panic!("the head comes first")
        };
        // Nothing pushed: the same ranges again.
        let Poll::Need(again) = d.poll().unwrap() else {
            panic!("still the head")
        };
        assert_eq!(first, again);
        for r in first {
            d.push(r, Bytes::from_static(b"not an HDF5 file"));
        }
        assert!(matches!(d.poll().unwrap(), Poll::NeedSize));
        d.push_size(16);
        let e = d.poll().unwrap_err().to_string();
        assert!(e.contains("no HDF5 signature"), "{e}");
        // A failed decoder stays failed.
        assert!(d.poll().is_err());
    }
}
