//! The blocks of one multi-block structure (an object header's
//! continuations, a B-tree's nodes, a heap's blocks, a chunk index) asked
//! for and not handled yet, by address. A structure is complete when none
//! is outstanding. A set rather than a counter: a block handled twice, or
//! one never asked for, cannot cancel another block still in flight (a
//! counter decremented with `saturating_sub` would hide both), and
//! [`Outstanding::finish`] says so, so the walk can fail loudly.

use std::collections::HashSet;

#[derive(Debug, Default)]
pub(super) struct Outstanding {
    blocks: HashSet<u64>,
}

impl Outstanding {
    /// One block, `first`, outstanding (the structure's first block).
    pub fn new(first: u64) -> Self {
        let mut o = Outstanding::default();
        o.start(first);
        o
    }

    /// The block at `addr` was asked for. Returns false if it already was
    /// outstanding (its structure asked for it twice).
    pub fn start(&mut self, addr: u64) -> bool {
        self.blocks.insert(addr)
    }

    /// The blocks a handled block points at (`next`) are asked for, each
    /// at most once in the structure's life (`visited`): the first one
    /// seen before (a cycle) is returned instead.
    pub fn start_new(
        &mut self,
        visited: &mut HashSet<u64>,
        next: impl IntoIterator<Item = u64>,
    ) -> Result<(), u64> {
        for a in next {
            if !visited.insert(a) {
                return Err(a);
            }
            self.start(a);
        }
        Ok(())
    }

    /// The block at `addr` was handled. Returns false if it was not
    /// outstanding: the walk's bookkeeping is wrong, or the structure was
    /// abandoned ([`Outstanding::abandon`]) while it was in flight.
    #[must_use]
    pub fn finish(&mut self, addr: u64) -> bool {
        self.blocks.remove(&addr)
    }

    /// Nothing outstanding: the structure is complete (or abandoned).
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Stop waiting for the structure (it failed); blocks still in flight
    /// then finish as not outstanding.
    pub fn abandon(&mut self) {
        self.blocks.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_finishes_once_and_only_if_asked_for() {
        let mut o = Outstanding::new(10);
        assert!(o.start(20));
        assert!(!o.start(20), "asked twice");
        assert!(o.finish(10));
        assert!(!o.finish(10), "handled twice");
        assert!(!o.finish(30), "never asked for");
        assert!(!o.is_empty(), "20 is still in flight");
        assert!(o.finish(20));
        assert!(o.is_empty());
        o.start(40);
        o.abandon();
        assert!(o.is_empty());
        assert!(!o.finish(40));
    }

    #[test]
    fn a_block_pointed_at_twice_is_a_cycle() {
        let mut o = Outstanding::new(10);
        let mut visited = HashSet::from([10]);
        assert_eq!(o.start_new(&mut visited, [20, 30]), Ok(()));
        assert!(o.finish(20) && o.finish(30));
        assert_eq!(o.start_new(&mut visited, [40, 20, 50]), Err(20));
        assert_eq!(o.start_new(&mut visited, [10]), Err(10), "the root too");
    }
}
