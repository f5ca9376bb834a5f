//! Layouts of source series kept by the pipeline, so that indexing a file
//! whose sibling was indexed before (f029 -> f030) fetches its metadata in
//! the first wave ([`hdf5_lite::layout_cache`] explains the prediction).
//!
//! Where: one object per series in the destination store,
//! `{prefix}/_layouts/{entry name}` (the entry name is
//! [`hdf5_lite::layout_cache::entry_name`] of the source URL, e.g.
//! `nos/_layouts/3f1c0c1d5a7e9b20.layout`; the content is the layout cache's
//! text format), so one-shot Argo pods benefit; a worker also keeps the
//! entries of the last [`MEMORY_ENTRIES`] series in memory, so consecutive
//! messages of one series need no GET. `_layouts/` is a folder of its own:
//! the FMRC steps only list reference keys directly under the prefix whose
//! names start with the model (`steps::member_prefix`), and the destination
//! notification only fires for `.zarr` keys, so a layout is never taken for
//! a member.
//!
//! The step HEADs the source anyway, so the prediction is widened by the
//! difference in file size as well as by the drift the entry recorded
//! ([`Loaded::predicted`], [`layout_cache::Entry::first_wave`]): a
//! compressed series is warm in one wave from its second file.
//!
//! A layout is only a prediction: a corrupt, foreign or stale entry, a store
//! that cannot be read or written, or a lost race between two writers
//! changes neither the output nor the step's result (debug log lines only).
//! An entry is written only when the file needed ranges the loaded one did
//! not predict (so a series of identical layouts costs one PUT, not one per
//! file), with the store's conditional write (a 412 means another writer
//! won: ignored).

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Mutex;

use bytes::Bytes;
use hdf5_lite::layout_cache;
use tracing::debug;

use crate::store::{ObjectStore, PutCondition, StoreError};

/// The folder under the destination prefix holding the layouts.
pub const LAYOUTS_FOLDER: &str = "_layouts";
/// Series whose layout a worker keeps in memory.
pub const MEMORY_ENTRIES: usize = 64;

/// The key of the layout of `source_url`'s series under `prefix`.
pub fn layout_key(prefix: &str, source_url: &str) -> String {
    let prefix = prefix.trim_matches('/');
    let name = layout_cache::entry_name(source_url);
    if prefix.is_empty() {
        format!("{LAYOUTS_FOLDER}/{name}")
    } else {
        format!("{prefix}/{LAYOUTS_FOLDER}/{name}")
    }
}

/// A stored entry as loaded: its bytes and the etag to replace it with.
#[derive(Debug, Clone)]
struct Entry {
    text: Bytes,
    etag: String,
}

/// The layouts a process has seen, most recently used first (a handful of
/// series per worker, so a linear scan is the cheapest LRU).
#[derive(Debug)]
pub struct Layouts {
    capacity: usize,
    memory: Mutex<VecDeque<(String, Entry)>>,
}

impl Default for Layouts {
    fn default() -> Self {
        Layouts::new(MEMORY_ENTRIES)
    }
}

/// What [`Layouts::load`] found for one source, handed back to
/// [`Layouts::store`] after indexing.
#[derive(Debug, Default)]
pub struct Loaded {
    key: String,
    /// Store URL + key: the memory is shared by every destination.
    id: String,
    previous: Option<Entry>,
    /// The series' layout as stored (none: a cold walk).
    layout: Option<layout_cache::Entry>,
}

impl Loaded {
    /// The ranges to fetch in the first wave of a file of `file_size` bytes
    /// (empty: a cold walk): the stored layout, widened when the series'
    /// structures move between files ([`layout_cache::Entry::first_wave`]).
    pub fn predicted(&self, file_size: Option<u64>) -> Vec<Range<u64>> {
        self.layout
            .as_ref()
            .map(|e| e.first_wave(file_size))
            .unwrap_or_default()
    }
}

impl Layouts {
    pub fn new(capacity: usize) -> Self {
        Layouts {
            capacity,
            memory: Mutex::new(VecDeque::new()),
        }
    }

    fn recall(&self, id: &str) -> Option<Entry> {
        let mut m = self.memory.lock().ok()?;
        let i = m.iter().position(|(k, _)| k == id)?;
        let hit = m.remove(i)?;
        let entry = hit.1.clone();
        m.push_front(hit);
        Some(entry)
    }

    fn keep(&self, id: &str, entry: Entry) {
        if let Ok(mut m) = self.memory.lock() {
            m.retain(|(k, _)| k != id);
            m.push_front((id.to_string(), entry));
            m.truncate(self.capacity);
        }
    }

    fn forget(&self, id: &str) {
        if let Ok(mut m) = self.memory.lock() {
            m.retain(|(k, _)| k != id);
        }
    }

    /// The layout of `source_url`'s series under `prefix` in `dest`: from
    /// memory, else from the store. Never fails.
    pub async fn load(&self, dest: &dyn ObjectStore, prefix: &str, source_url: &str) -> Loaded {
        let key = layout_key(prefix, source_url);
        let id = format!("{}/{key}", dest.url());
        let previous = match self.recall(&id) {
            Some(e) => Some(e),
            None => match dest.get(&key).await {
                Ok((text, etag)) => {
                    let e = Entry { text, etag };
                    self.keep(&id, e.clone());
                    Some(e)
                }
                Err(StoreError::NotFound(_)) => None,
                Err(error) => {
                    debug!(layout = %id, %error, "layout not read; indexing cold");
                    None
                }
            },
        };
        let layout = match previous
            .as_ref()
            .map(|e| layout_cache::decode_entry(&e.text, source_url))
        {
            None => None,
            Some(Ok(e)) => Some(e),
            Some(Err(reason)) => {
                debug!(layout = %id, source = source_url, reason, "layout ignored");
                None
            }
        };
        Loaded {
            key,
            id,
            previous,
            layout,
        }
    }

    /// Keep the layout `source_url` (of `file_size` bytes) needed, with the
    /// drift seen against the loaded one, unless the loaded one predicted
    /// all of it as stored. Never fails. `ranges` are
    /// coalesced as the walk (`opts`) coalesces its first wave, so a warm
    /// sibling fetches exactly the stored extents and the entry is stable
    /// after one write.
    pub async fn store(
        &self,
        dest: &dyn ObjectStore,
        loaded: &Loaded,
        source_url: &str,
        file_size: u64,
        ranges: Vec<Range<u64>>,
        opts: &hdf5_lite::Options,
    ) {
        let ranges = hdf5_lite::walk::coalesce(ranges, opts.coalesce_gap, opts.max_request);
        let stored = loaded.layout.as_ref().map_or(&[][..], |e| &e.ranges[..]);
        // Everything needed was predicted as stored: the new entry would
        // predict nothing more (one PUT per series, not per file).
        if layout_cache::covers(stored, &ranges) {
            return;
        }
        let entry = layout_cache::Entry::after(loaded.layout.as_ref(), file_size, ranges);
        let text = Bytes::from(layout_cache::encode_entry(source_url, &entry));
        let cond = match &loaded.previous {
            Some(e) => PutCondition::IfMatch(e.etag.clone()),
            None => PutCondition::IfAbsent,
        };
        match dest.put(&loaded.key, text.clone(), cond).await {
            Ok(etag) => self.keep(&loaded.id, Entry { text, etag }),
            Err(error) => {
                // 412: another writer's layout is as good a prediction.
                // Either way the store holds something we have not seen.
                debug!(layout = %loaded.id, %error, "layout not written");
                self.forget(&loaded.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sit_in_their_own_folder() {
        let a = layout_key("nos", "s3://b/d/nos.dbofs.fields.f029.20230323.t12z.nc");
        let b = layout_key("nos", "s3://b/d/nos.dbofs.fields.f030.20230323.t18z.nc");
        assert_eq!(a, b);
        assert!(
            a.starts_with("nos/_layouts/") && a.ends_with(".layout"),
            "{a}"
        );
        assert!(layout_key("", "s3://b/x.nc").starts_with("_layouts/"));
        crate::key::check_object_key(&a).unwrap();
    }

    #[test]
    fn memory_is_bounded_and_most_recent_first() {
        let l = Layouts::new(2);
        let e = |s: &str| Entry {
            text: Bytes::from(s.to_string()),
            etag: s.into(),
        };
        l.keep("a", e("1"));
        l.keep("b", e("2"));
        assert!(l.recall("a").is_some()); // a is now the most recent
        l.keep("c", e("3")); // evicts b
        assert!(l.recall("b").is_none());
        assert_eq!(l.recall("a").map(|e| e.etag), Some("1".into()));
        assert_eq!(l.recall("c").map(|e| e.etag), Some("3".into()));
        l.forget("c");
        assert!(l.recall("c").is_none());
    }
}
