//! Layout prediction, a planner: the ranges a sibling file's walk used
//! ([`crate::layout_cache`], [`super::Options::predicted`]) are fetched with
//! the head in the first wave. Files of one OFS model and kind share their
//! layout, so a warm walk then finds its structures cached; what the
//! prediction missed is fetched by the walk as usual, and what it got wrong
//! costs bytes only (see [`super::planner`]).

use std::ops::Range;

use super::planner::Planner;
use crate::layout_cache::MAX_PREDICTED_BYTES;

pub(crate) struct LayoutPrediction {
    ranges: Vec<Range<u64>>,
    spent: u64,
}

impl LayoutPrediction {
    /// The predicted ranges in order, up to [`MAX_PREDICTED_BYTES`] in all
    /// (the rest, and anything after an empty or reversed range, is not
    /// fetched: predicted bytes come before anything is verified).
    pub fn new(predicted: &[Range<u64>]) -> Self {
        let mut budget = MAX_PREDICTED_BYTES;
        let mut ranges = Vec::new();
        for r in predicted {
            let n = r.end.saturating_sub(r.start);
            if n == 0 || n > budget {
                break;
            }
            budget -= n;
            ranges.push(r.clone());
        }
        LayoutPrediction { ranges, spent: 0 }
    }
}

impl Planner for LayoutPrediction {
    fn first_wave(&mut self) -> Vec<Range<u64>> {
        let r = std::mem::take(&mut self.ranges);
        self.spent += r.iter().map(|r| r.end - r.start).sum::<u64>();
        r
    }

    fn spent(&self) -> u64 {
        self.spent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_wave_is_bounded_and_asked_once() {
        #[allow(clippy::reversed_empty_ranges)]
        let mut p = LayoutPrediction::new(&[0..10, 20..30, 5..3, 40..50]);
        assert_eq!(p.first_wave(), vec![0..10, 20..30]);
        assert_eq!(p.spent(), 20);
        assert!(p.first_wave().is_empty());
        let big = MAX_PREDICTED_BYTES;
        let mut p = LayoutPrediction::new(&[0..big - 1, big..big + 2]);
        assert_eq!(p.first_wave(), vec![0..big - 1]);
    }
}
