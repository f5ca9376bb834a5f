//! Chunk indexes: what a dataset's index walk knows of the dataset, the
//! chunks it collected, and planning of each index kind (v1 B-tree, single
//! chunk, implicit, fixed array, extensible array, v2 B-tree).

use super::*;

mod btree_v1_index;
mod btree_v2_index;
mod extensible_array_index;
mod fixed_array_index;

/// What a dataset's chunk index walk needs to know about the dataset.
#[derive(Debug, Clone)]
pub(super) struct ChunkGeom {
    pub(super) chunk: Vec<u64>,
    pub(super) dims: Vec<u64>,
    /// Chunks per dimension over the maximum extent (the grid fixed and
    /// extensible arrays are indexed by); unlimited dims use the current one.
    pub(super) grid: Vec<u64>,
    pub(super) unlimited_dim: Option<usize>,
    pub(super) element_size: u64,
}

impl ChunkGeom {
    pub(super) fn chunk_bytes(&self) -> u64 {
        self.chunk
            .iter()
            .fold(self.element_size, |a, c| a.saturating_mul(*c))
    }
    /// Logical element offset of linear chunk index `idx`, following the
    /// library's order: C order over the grid, with the unlimited dimension
    /// (extensible arrays) swizzled to the slowest position.
    pub(super) fn offset_of(&self, idx: u64) -> Vec<u64> {
        let rank = self.chunk.len();
        let mut order: Vec<usize> = (0..rank).collect();
        if let Some(u) = self.unlimited_dim {
            order.retain(|d| *d != u);
            order.insert(0, u);
        }
        let mut scaled = vec![0u64; rank];
        let mut rem = idx;
        for &d in order.iter().rev() {
            let n = self.grid[d].max(1);
            scaled[d] = rem % n;
            rem /= n;
        }
        scaled
            .iter()
            .zip(&self.chunk)
            .map(|(s, c)| s.saturating_mul(*c))
            .collect()
    }
    pub(super) fn in_extent(&self, offset: &[u64]) -> bool {
        offset.iter().zip(&self.dims).all(|(o, d)| o < d)
    }
}

#[derive(Default)]
pub(super) struct ChunkState {
    pub(super) geom: Option<ChunkGeom>,
    /// Index blocks asked for and not handled yet.
    pub(super) outstanding: Outstanding,
    pub(super) visited: HashSet<u64>,
    pub(super) chunks: Vec<Chunk>,
    pub(super) error: Option<String>,
    pub(super) fa: Option<fa::Header>,
    pub(super) ea: Option<ea::Header>,
}

impl ChunkState {
    /// The index block at `addr` was handled. One that was not outstanding
    /// fails the index (unless it already failed, which abandons the blocks
    /// in flight): a bookkeeping error is never hidden by a count at zero.
    pub(super) fn finish(&mut self, addr: u64) {
        if !self.outstanding.finish(addr) && self.error.is_none() {
            self.error = Some(format!(
                "chunk index block at {addr:#x} handled but not outstanding (walk bookkeeping)"
            ));
        }
    }

    pub(super) fn push_entry(
        &mut self,
        idx: u64,
        entry: &[u8],
        ctx: &Ctx,
        client: u8,
    ) -> Result<(), String> {
        let Some(g) = &self.geom else { return Ok(()) };
        let (rest, addr) = ctx
            .addr(entry)
            .map_err(|_| "chunk entry too short".to_string())?;
        let Some(address) = addr else { return Ok(()) };
        let (size, filter_mask) = if client == 1 {
            let len_size = rest.len().saturating_sub(4) as u8;
            let (rest, size) = crate::parse::uint(rest, len_size)
                .map_err(|_| "bad chunk size field".to_string())?;
            let (_, mask) = crate::parse::u32_::<_, crate::parse::PErr>(rest)
                .map_err(|_| "bad filter mask".to_string())?;
            (size, mask)
        } else {
            (g.chunk_bytes(), 0)
        };
        let offset = g.offset_of(idx);
        if g.in_extent(&offset) {
            self.chunks.push(Chunk {
                offset,
                address,
                size,
                filter_mask,
            });
        }
        Ok(())
    }
}

impl Walker {
    /// A chunk index structure's parse result, its extent (`size` of the
    /// parsed value) recorded as used; `None` when the job was queued again
    /// for more bytes or the dataset's index failed (chunk index damage
    /// belongs to that dataset, not to the file).
    pub(super) fn ds_parsed<T>(
        &mut self,
        ds: u64,
        job: &Job,
        had: usize,
        structure: &'static str,
        r: Result<T, StructError>,
        size: impl FnOnce(&T) -> u64,
    ) -> Option<T> {
        match r {
            Ok(v) => {
                self.used(job.addr, size(&v));
                Some(v)
            }
            Err(StructError::Short { need }) => {
                if let Err(e) = self.retry(job.clone(), had, need, structure) {
                    self.fail_chunks(ds, e.to_string());
                }
                None
            }
            Err(StructError::Bad(e)) => {
                self.fail_chunks(ds, format!("{}: {}", self.name, e));
                None
            }
        }
    }

    /// The header at `header` of `ds`'s chunk index (a fixed or extensible
    /// array's) was handled and is kept (`keep`); the one block it points
    /// at, if any, is queued, or its reason for being out of bounds fails
    /// the index.
    pub(super) fn index_header_done(
        &mut self,
        ds: u64,
        header: u64,
        keep: impl FnOnce(&mut ChunkState),
        next: Option<Result<(u64, u64, JobKind), String>>,
    ) {
        let Some(st) = self.chunk_states.get_mut(&ds) else {
            return;
        };
        st.finish(header);
        keep(st);
        match next {
            Some(Ok((a, len, kind))) => {
                st.outstanding.start(a);
                self.push(a, len, kind);
            }
            Some(Err(reason)) => st.error = Some(reason),
            None => {}
        }
    }

    /// The one block an array index header points at (`addr`, undefined:
    /// none) as a job for [`Walker::index_header_done`], or why it fails the
    /// index: outside the file, or larger than any metadata read may be.
    pub(super) fn index_next_block(
        &self,
        addr: Option<u64>,
        size: u64,
        kind: JobKind,
        what: &str,
    ) -> Option<Result<(u64, u64, JobKind), String>> {
        addr.map(|a| {
            if a >= self.size || size > self.opts.max_metadata_bytes {
                Err(format!("{what} at {a:#x} of {size} bytes is out of bounds"))
            } else {
                Ok((a, size, kind))
            }
        })
    }

    pub(super) fn fail_chunks(&mut self, ds: u64, reason: String) {
        if let Some(st) = self.chunk_states.get_mut(&ds) {
            if st.error.is_none() {
                st.error = Some(reason);
            }
            st.outstanding.abandon();
        }
    }

    /// The index block at `done` was handled; queue the blocks it leads to.
    pub(super) fn queue_chunk_jobs(&mut self, ds: u64, done: u64, jobs: Vec<(u64, u64, JobKind)>) {
        let size = self.size;
        let max = self.opts.max_metadata_bytes;
        let Some(st) = self.chunk_states.get_mut(&ds) else {
            return;
        };
        st.finish(done);
        let mut ok = Vec::new();
        for (a, len, kind) in jobs {
            if a >= size || len > max || !st.visited.insert(a) {
                st.error = Some(format!(
                    "chunk index block at {a:#x} is out of bounds or repeated"
                ));
                st.outstanding.abandon();
                return;
            }
            st.outstanding.start(a);
            ok.push((a, len, kind));
        }
        for (a, len, kind) in ok {
            self.push(a, len, kind);
        }
    }

    pub(super) fn add_entries_keep_outstanding(
        &mut self,
        ds: u64,
        first: u64,
        entries: Vec<Option<Bytes>>,
        client: u8,
    ) {
        let ctx = self.ctx;
        let max = self.opts.max_chunks_per_dataset;
        let Some(st) = self.chunk_states.get_mut(&ds) else {
            return;
        };
        for (k, e) in entries.into_iter().enumerate() {
            let Some(e) = e else { continue };
            let Some(idx) = first.checked_add(k as u64) else {
                st.error = Some("extensible array index overflows".into());
                st.outstanding.abandon();
                return;
            };
            if let Err(reason) = st.push_entry(idx, &e, &ctx, client) {
                st.error = Some(reason);
                st.outstanding.abandon();
                return;
            }
        }
        if st.chunks.len() as u64 > max {
            st.error = Some(format!("more than {max} chunks"));
            st.outstanding.abandon();
        }
    }

    /// Entries of the index block at `done`, which is then handled.
    pub(super) fn add_entries(
        &mut self,
        ds: u64,
        done: u64,
        first: u64,
        entries: Vec<Option<Bytes>>,
        client: u8,
    ) {
        self.add_entries_keep_outstanding(ds, first, entries, client);
        if let Some(st) = self.chunk_states.get_mut(&ds) {
            st.finish(done);
        }
    }

    pub(super) fn plan_chunks(&mut self, ds: u64) -> Result<(), Error> {
        if !self.once(ds, R_CHUNKS) {
            return Ok(());
        }
        let ctx = self.ctx;
        let Some(m) = self.msgs(ds, oh::MSG_LAYOUT).into_iter().next() else {
            return Ok(());
        };
        let lay = match self.parse_msg(ds, &m, "data layout message", |i| layout(i, &ctx)) {
            Ok(l) => l,
            Err(e) => {
                self.chunk_states.insert(
                    ds,
                    ChunkState {
                        error: Some(e.to_string()),
                        ..Default::default()
                    },
                );
                return Ok(());
            }
        };
        let DataLayout::Chunked {
            dims: chunk,
            element_size,
            index,
            ..
        } = lay
        else {
            return Ok(());
        };
        let space = match self.msgs(ds, oh::MSG_DATASPACE).into_iter().next() {
            Some(m) => self.parse_msg(ds, &m, "dataspace message", |i| dataspace(i, &ctx))?,
            None => {
                return Err(self.format_err(
                    "dataset object header",
                    ds,
                    "chunked dataset without a dataspace",
                ));
            }
        };

        let (dims, max_dims) = match &space {
            Dataspace::Simple { dims, max_dims } => (dims.clone(), max_dims.clone()),
            _ => (vec![], vec![]),
        };
        let mut st = ChunkState::default();
        if dims.len() != chunk.len() || chunk.contains(&0) {
            st.error = Some(format!(
                "{}: chunked layout of rank {} for a dataspace of rank {} (or a zero chunk dim)",
                self.name,
                chunk.len(),
                dims.len()
            ));
            self.chunk_states.insert(ds, st);
            return Ok(());
        }
        let grid: Vec<u64> = max_dims
            .iter()
            .zip(&dims)
            .zip(&chunk)
            .map(|((m, d), c)| m.unwrap_or(*d).max(*d).div_ceil(*c))
            .collect();
        let unlimited_dim = max_dims.iter().position(|m| m.is_none());
        let geom = ChunkGeom {
            chunk,
            dims,
            grid,
            unlimited_dim,
            element_size,
        };
        let probe = self.opts.probe_size;
        let addr_ok = |a: u64| a < self.size;
        match index {
            ChunkIndex::BTreeV1 { address: Some(a) } if addr_ok(a) => {
                st.outstanding.start(a);
                st.visited.insert(a);
                self.push(a, probe, JobKind::ChunkNode { ds });
            }
            ChunkIndex::SingleChunk {
                address: Some(a),
                filtered: f,
            } => {
                let (size, filter_mask) = f.unwrap_or((geom.chunk_bytes(), 0));
                st.chunks.push(Chunk {
                    offset: vec![0; geom.chunk.len()],
                    address: a,
                    size,
                    filter_mask,
                });
            }
            ChunkIndex::Implicit { address: Some(a) } => {
                // Checked: a hostile maximum extent must not wrap the count.
                let n = geom
                    .grid
                    .iter()
                    .try_fold(1u64, |a, g| a.checked_mul(*g))
                    .unwrap_or(u64::MAX);
                if n > self.opts.max_chunks_per_dataset {
                    st.error = Some(format!("implicit index of {n} chunks exceeds the limit"));
                } else {
                    let cb = geom.chunk_bytes();
                    for k in 0..n {
                        let offset = geom.offset_of(k);
                        if geom.in_extent(&offset) {
                            st.chunks.push(Chunk {
                                offset,
                                address: a.saturating_add(k.saturating_mul(cb)),
                                size: cb,
                                filter_mask: 0,
                            });
                        }
                    }
                }
            }
            ChunkIndex::FixedArray {
                address: Some(a), ..
            } if addr_ok(a) => {
                st.outstanding.start(a);
                self.push(a, 64, JobKind::FaHeader { ds });
            }
            ChunkIndex::ExtensibleArray { address: Some(a) } if addr_ok(a) => {
                st.outstanding.start(a);
                self.push(a, 128, JobKind::EaHeader { ds });
            }
            ChunkIndex::BTreeV2 { address: Some(a) } if addr_ok(a) => {
                self.request_btree2(a)?;
            }
            ChunkIndex::BTreeV1 { address: Some(a) }
            | ChunkIndex::FixedArray {
                address: Some(a), ..
            }
            | ChunkIndex::ExtensibleArray { address: Some(a) }
            | ChunkIndex::BTreeV2 { address: Some(a) } => {
                st.error = Some(format!(
                    "chunk index address {a:#x} is past the end of the file"
                ));
            }
            _ => {} // never written: no chunks
        }
        st.geom = Some(geom);
        self.chunk_states.insert(ds, st);
        Ok(())
    }
}
