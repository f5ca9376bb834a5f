//! Prefetch planners: strategies that decide what to fetch ahead of the
//! walk, behind one interface. A planner only moves bytes earlier: it never
//! feeds the walk, which parses and checks every structure it reaches by
//! links from the bytes of the file being read, so no planner can change
//! the output (a wrong plan costs bytes, never correctness).
//!
//! Two planners exist: [`super::predict::LayoutPrediction`] (a sibling's
//! layout, fetched with the head in the first wave) and
//! [`super::speculate::Speculator`] (speculative roots: subtrees of object
//! headers found in fetched windows, riding along with the walk's waves).

use std::ops::Range;

use bytes::Bytes;

use super::Options;
use super::buffers::coalesce;
use super::predict::LayoutPrediction;
use crate::parse::Ctx;

/// How the walk asks for each structure; a planner that asks the same way
/// has the walk's own request later fully served from the cache.
#[derive(Debug, Clone)]
pub(crate) struct Knobs {
    pub size: u64,
    pub probe: u64,
    pub heap_probe: u64,
    pub header_lookbehind: u64,
    pub lookbehind: u64,
    pub lookahead: u64,
    pub prefetch_below: u64,
}

/// What a planner sees of the walk when a wave is planned.
pub(crate) struct View<'a> {
    pub ctx: &'a Ctx,
    pub knobs: &'a Knobs,
    /// The cached bytes from an address (at most the length asked, fewer
    /// where the cached extent ends).
    pub prefix: &'a dyn Fn(u64, u64) -> Option<Bytes>,
    /// The part of a range not cached yet.
    pub uncovered: &'a dyn Fn(u64, u64) -> Option<Range<u64>>,
}

/// A prefetch strategy. Every method has a do-nothing default, so a planner
/// implements only the moments it acts in.
pub(crate) trait Planner: Send {
    /// Ranges for the first wave, fetched with the head before anything
    /// about the file is known (asked once).
    fn first_wave(&mut self) -> Vec<Range<u64>> {
        Vec::new()
    }

    /// A window of the file was fetched (every window, first wave included).
    fn scan(&mut self, _start: u64, _bytes: &[u8]) {}

    /// Ranges to fetch with the walk's next wave. Called only when the walk
    /// makes a wave anyway: a planner never causes a round trip of its own.
    fn plan(&mut self, _view: &View<'_>) -> Vec<Range<u64>> {
        Vec::new()
    }

    /// Bytes this planner had fetched so far: allowed on top of the walk's
    /// metadata limit (each planner bounds its own spending).
    fn spent(&self) -> u64;
}

/// The planners of a walk before its file is known: layout prediction
/// (speculative roots join once the file's size is known).
pub(crate) fn initial_planners(opts: &Options) -> Vec<Box<dyn Planner>> {
    vec![Box::new(LayoutPrediction::new(&opts.predicted))]
}

/// The ranges of the first wave: the head and what the planners ask for
/// first (a sibling's layout, if one is predicted), coalesced.
/// [`crate::open_any`] fetches exactly these before it knows the format, so
/// the walk's first wave is then served from memory.
pub(crate) fn first_wave(opts: &Options) -> Vec<Range<u64>> {
    head_and_planned(opts, &mut initial_planners(opts))
}

pub(crate) fn head_and_planned(
    opts: &Options,
    planners: &mut [Box<dyn Planner>],
) -> Vec<Range<u64>> {
    let mut want = vec![0..opts.head_size.max(1024)];
    for p in planners {
        want.extend(p.first_wave());
    }
    coalesce(want, opts.coalesce_gap, opts.max_request)
}
