//! Asking for structures: each shared resource once, its address and
//! length checked against the file before anything is queued.

use super::*;

impl Walker {
    pub(super) fn format_err(
        &self,
        structure: &'static str,
        address: u64,
        reason: impl Into<String>,
    ) -> Error {
        Error::Format {
            file: self.name.clone(),
            error: FormatError::new(structure, address, reason),
        }
    }

    pub(super) fn check_addr(&self, structure: &'static str, addr: u64) -> Result<(), Error> {
        if addr >= self.size {
            return Err(self.format_err(
                structure,
                addr,
                format!("address is past the end of the file ({} bytes)", self.size),
            ));
        }
        Ok(())
    }

    pub(super) fn push(&mut self, addr: u64, len: u64, kind: JobKind) {
        self.jobs.push(Job { addr, len, kind });
    }

    pub(super) fn request_header(&mut self, addr: u64) -> Result<(), Error> {
        if self.headers.contains_key(&addr) {
            return Ok(());
        }
        self.check_addr("object header", addr)?;
        if self.headers.len() >= self.opts.max_objects {
            return Err(Error::Limit {
                file: self.name.clone(),
                what: format!("more than {} object headers", self.opts.max_objects),
            });
        }
        self.headers.insert(addr, HeaderState::default());
        let probe = self.opts.probe_size;
        self.push(addr, probe, JobKind::Header);
        Ok(())
    }

    pub(super) fn once(&mut self, addr: u64, tag: u8) -> bool {
        self.requested.insert((tag, addr, 0))
    }

    pub(super) fn request_local_heap(&mut self, addr: u64) -> Result<(), Error> {
        if self.once(addr, R_LHEAP) {
            self.check_addr("local heap", addr)?;
            self.local_heaps.insert(addr, LocalHeapState::default());
            // Header plus a guess at the data segment that usually follows it.
            let len = local_heap::header_size(&self.ctx) + 512;
            self.push(addr, len, JobKind::LocalHeap);
        }
        Ok(())
    }

    pub(super) fn request_group_tree(&mut self, tree: u64, heap: u64) -> Result<(), Error> {
        if self.once(tree, R_GTREE) {
            self.check_addr("group B-tree", tree)?;
            let mut st = GroupTreeState {
                outstanding: Outstanding::new(tree),
                ..Default::default()
            };
            st.visited.insert(tree);
            self.group_trees.insert(tree, st);
            let probe = self.opts.probe_size;
            self.push(tree, probe, JobKind::GroupNode { heap, tree });
        }
        Ok(())
    }

    pub(super) fn request_fheap(&mut self, addr: u64) -> Result<(), Error> {
        if self.once(addr, R_FHEAP) {
            self.check_addr("fractal heap header", addr)?;
            self.fheaps.insert(
                addr,
                FHeapState {
                    outstanding: Outstanding::new(addr),
                    ..Default::default()
                },
            );
            let probe = self.opts.heap_probe.max(64);
            self.push(addr, probe, JobKind::HeapHeader);
        }
        Ok(())
    }

    pub(super) fn request_btree2(&mut self, addr: u64) -> Result<(), Error> {
        if self.once(addr, R_BTREE2) {
            self.check_addr("v2 B-tree header", addr)?;
            self.btrees.insert(
                addr,
                BTree2State {
                    outstanding: Outstanding::new(addr),
                    ..Default::default()
                },
            );
            self.push(addr, 64, JobKind::BTree2Header);
        }
        Ok(())
    }

    pub(super) fn request_gheap(&mut self, addr: u64) -> Result<(), Error> {
        if self.once(addr, R_GHEAP) {
            self.check_addr("global heap collection", addr)?;
            self.push(addr, global_heap::MIN_COLLECTION, JobKind::GlobalHeap);
        }
        Ok(())
    }

    pub(super) fn request_blob(&mut self, addr: u64, len: u64) -> Result<(), Error> {
        if self.requested.insert((R_BLOB, addr, len)) {
            self.check_addr("huge heap object", addr)?;
            self.check_len("huge heap object", addr, len)?;
            self.push(addr, len, JobKind::Blob);
        }
        Ok(())
    }

    pub(super) fn check_len(
        &self,
        structure: &'static str,
        addr: u64,
        len: u64,
    ) -> Result<(), Error> {
        if len > self.opts.max_metadata_bytes || addr.saturating_add(len) > self.size {
            return Err(self.format_err(
                structure,
                addr,
                format!("size {len} is past the end of the file or the metadata limit"),
            ));
        }
        Ok(())
    }
}
