//! Heaps: local heaps (old-style group link names), fractal heaps
//! (dense links and attributes; the shared message table's heaps), global
//! heap collections (vlen values) and huge heap objects.

use super::*;

impl Walker {
    /// A local heap header: its data segment is queued.
    pub(super) fn handle_local_heap(&mut self, job: Job, bytes: Bytes) -> Result<(), Error> {
        let ctx = self.ctx;
        let had = bytes.len();
        let h = attempt!(
            self,
            job,
            had,
            "local heap",
            local_heap::parse(&bytes, job.addr, &ctx)
        );
        self.used(job.addr, h.size);
        self.check_len("local heap data segment", h.data_address, h.data_size)?;
        self.push(
            h.data_address,
            h.data_size,
            JobKind::LocalHeapData { heap: job.addr },
        );
        Ok(())
    }

    /// The data segment of the local heap at `heap`.
    pub(super) fn handle_local_heap_data(
        &mut self,
        job: Job,
        bytes: Bytes,
        heap: u64,
    ) -> Result<(), Error> {
        if (bytes.len() as u64) < job.len {
            return Err(self.format_err("local heap data segment", job.addr, "truncated"));
        }
        self.local_heaps.entry(heap).or_default().data = Some(bytes);
        Ok(())
    }

    /// A fractal heap header: its root block (and huge-object B-tree) are queued.
    pub(super) fn handle_heap_header(&mut self, job: Job, bytes: Bytes) -> Result<(), Error> {
        let ctx = self.ctx;
        let had = bytes.len();
        let h = attempt!(
            self,
            job,
            had,
            "fractal heap header",
            fh::parse_header(&bytes, job.addr, &ctx)
        );
        self.used(job.addr, h.size);
        let heap = job.addr;
        // Finished before its root is asked for: a root at the
        // header's own address must not be taken as done.
        let was_outstanding = self
            .fheaps
            .get_mut(&heap)
            .is_some_and(|st| st.outstanding.finish(heap));
        self.finished(was_outstanding, "fractal heap header", heap)?;
        if let Some(root) = h.root {
            self.check_addr("fractal heap root block", root)?;
            if h.root_rows == 0 {
                let size = h.filtered_root_size.unwrap_or(h.start_block_size);
                self.check_len("fractal heap direct block", root, size)?;
                self.push(root, size, JobKind::HeapDirect { heap, size });
            } else {
                let nrows = h.root_rows as u32;
                let size = fh::indirect_size(&ctx, &h, nrows);
                self.push(root, size, JobKind::HeapIndirect { heap, nrows });
            }
            if let Some(st) = self.fheaps.get_mut(&heap) {
                st.outstanding.start(root);
                st.visited.insert(root);
            }
        }
        if let Some(bt) = h.huge_btree {
            self.request_btree2(bt)?;
        }
        if let Some(st) = self.fheaps.get_mut(&heap) {
            st.header = Some(h);
        }
        Ok(())
    }

    /// A fractal heap direct block.
    pub(super) fn handle_heap_direct(
        &mut self,
        job: Job,
        bytes: Bytes,
        heap: u64,
        size: u64,
    ) -> Result<(), Error> {
        let ctx = self.ctx;
        let had = bytes.len();
        let Some(h) = self.fheaps.get(&heap).and_then(|s| s.header.clone()) else {
            return Ok(());
        };
        let b = attempt!(
            self,
            job,
            had,
            "fractal heap direct block",
            fh::parse_direct(&bytes, job.addr, &ctx, &h, size)
        );
        self.used(job.addr, b.size);
        if let Some(st) = self.fheaps.get_mut(&heap) {
            st.direct.insert(b.block_offset, b.data);
        }
        self.heap_block_done(heap, job.addr, "fractal heap direct block", Vec::new())
    }

    /// A fractal heap indirect block: its child blocks are queued.
    pub(super) fn handle_heap_indirect(
        &mut self,
        job: Job,
        bytes: Bytes,
        heap: u64,
        nrows: u32,
    ) -> Result<(), Error> {
        let ctx = self.ctx;
        let had = bytes.len();
        let Some(h) = self.fheaps.get(&heap).and_then(|s| s.header.clone()) else {
            return Ok(());
        };
        let ib = attempt!(
            self,
            job,
            had,
            "fractal heap indirect block",
            fh::parse_indirect(&bytes, job.addr, &ctx, &h, nrows)
        );
        self.used(job.addr, ib.size);
        let mut next = Vec::new();
        for (row, a) in &ib.direct {
            let size = h.row_block_size(*row);
            next.push((*a, size, JobKind::HeapDirect { heap, size }));
        }
        for (row, a) in &ib.indirect {
            let rows = h.child_indirect_rows(*row);
            if rows == 0 || rows >= nrows {
                return Err(self.format_err(
                    "fractal heap indirect block",
                    job.addr,
                    "child indirect block is not smaller",
                ));
            }
            let size = fh::indirect_size(&ctx, &h, rows);
            next.push((*a, size, JobKind::HeapIndirect { heap, nrows: rows }));
        }
        self.heap_block_done(heap, job.addr, "fractal heap indirect block", next)
    }

    /// The block at `addr` of the fractal heap at `heap` (`structure` in
    /// errors) was handled: it must have been outstanding; the blocks it
    /// points at (`next`) are queued, each once in the heap's life (one
    /// referenced twice is a cycle).
    fn heap_block_done(
        &mut self,
        heap: u64,
        addr: u64,
        structure: &'static str,
        next: Vec<(u64, u64, JobKind)>,
    ) -> Result<(), Error> {
        // A handler only gets here with the heap's header from its state.
        let Some(st) = self.fheaps.get_mut(&heap) else {
            return self.finished(false, structure, addr);
        };
        let was_outstanding = st.outstanding.finish(addr);
        let children = next.iter().map(|(a, _, _)| *a);
        if st.outstanding.start_new(&mut st.visited, children).is_err() {
            return Err(self.format_err(structure, addr, "cycle: block referenced twice"));
        }
        self.finished(was_outstanding, structure, addr)?;
        for (a, size, kind) in next {
            self.check_addr("fractal heap block", a)?;
            self.check_len("fractal heap block", a, size)?;
            self.push(a, size, kind);
        }
        Ok(())
    }

    /// A global heap collection.
    pub(super) fn handle_global_heap(&mut self, job: Job, bytes: Bytes) -> Result<(), Error> {
        let ctx = self.ctx;
        let had = bytes.len();
        let c = attempt!(
            self,
            job,
            had,
            "global heap collection",
            global_heap::parse(&bytes, job.addr, &ctx)
        );
        self.used(job.addr, job.len);
        self.gheaps.insert(job.addr, c);
        Ok(())
    }

    /// A huge fractal heap object (stored outside the heap).
    pub(super) fn handle_blob(&mut self, job: Job, bytes: Bytes) -> Result<(), Error> {
        if (bytes.len() as u64) < job.len {
            return Err(self.format_err("huge heap object", job.addr, "truncated"));
        }
        self.blobs.insert((job.addr, job.len), bytes);
        Ok(())
    }

    /// The shared object header message table: its heaps are queued.
    pub(super) fn handle_shared_table(&mut self, job: Job, bytes: Bytes) -> Result<(), Error> {
        let ctx = self.ctx;
        let had = bytes.len();
        let t = attempt!(
            self,
            job,
            had,
            "shared message table",
            sohm::parse(&bytes, job.addr, &ctx)
        );
        for (_, heap) in &t.heaps {
            self.request_fheap(*heap)?;
        }
        self.shared_table = Some(t);
        Ok(())
    }
}
