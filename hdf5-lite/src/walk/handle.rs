//! Handling of fetched structures: each job's bytes go through its pure
//! parser, and what the structure points at is queued for the next wave.

use super::*;

impl Walker {
    pub(super) fn handle(&mut self, job: Job, bytes: Bytes) -> Result<(), Error> {
        let ctx = self.ctx;
        let (so, sl) = (ctx.size_of_offsets as u64, ctx.size_of_lengths as u64);
        let had = bytes.len();
        macro_rules! attempt {
            ($structure:expr, $e:expr) => {
                match $e {
                    Ok(v) => v,
                    Err(StructError::Short { need }) => {
                        return self.retry(job, had, need, $structure)
                    }
                    Err(StructError::Bad(e)) => {
                        return Err(Error::Format {
                            file: self.name.clone(),
                            error: e,
                        })
                    }
                }
            };
        }
        match job.kind.clone() {
            JobKind::Header => {
                let block = attempt!("object header", oh::parse_header(&bytes, job.addr, &ctx));
                self.used(job.addr, block.size);
                let conts = block.continuations.clone();
                let st = self.headers.entry(job.addr).or_default();
                st.version = block.version;
                st.flags = block.flags;
                st.messages.extend(block.messages);
                st.parsed_first = true;
                st.seen_blocks.insert(job.addr);
                self.queue_continuations(job.addr, conts)?;
            }
            JobKind::Continuation { owner, cont } => {
                let (version, flags) = match self.headers.get(&owner) {
                    Some(s) => (s.version, s.flags),
                    None => return Ok(()),
                };
                let block = attempt!(
                    "object header continuation",
                    oh::parse_continuation(&bytes, cont, version, flags, &ctx)
                );
                self.used(cont.address, cont.length);
                let conts = block.continuations.clone();
                let mut was_outstanding = false;
                if let Some(st) = self.headers.get_mut(&owner) {
                    st.messages.extend(block.messages);
                    was_outstanding = st.outstanding.finish(job.addr);
                }
                self.finished(was_outstanding, "object header continuation", job.addr)?;
                self.queue_continuations(owner, conts)?;
            }
            JobKind::LocalHeap => {
                let h = attempt!("local heap", local_heap::parse(&bytes, job.addr, &ctx));
                self.used(job.addr, local_heap::header_size(&ctx));
                self.check_len("local heap data segment", h.data_address, h.data_size)?;
                self.push(
                    h.data_address,
                    h.data_size,
                    JobKind::LocalHeapData { heap: job.addr },
                );
            }
            JobKind::LocalHeapData { heap } => {
                if (bytes.len() as u64) < job.len {
                    return Err(self.format_err("local heap data segment", job.addr, "truncated"));
                }
                self.local_heaps.entry(heap).or_default().data = Some(bytes);
            }
            JobKind::GroupNode { heap, tree } => {
                let node = attempt!(
                    "group B-tree node",
                    btree_v1::parse_group_node(&bytes, job.addr, &ctx)
                );
                self.used(
                    job.addr,
                    8 + 2 * so + node.children.len() as u64 * (sl + so) + sl,
                );
                let mut next = Vec::new();
                let mut was_outstanding = false;
                if let Some(st) = self.group_trees.get_mut(&tree) {
                    was_outstanding = st.outstanding.finish(job.addr);
                    for (_, child) in &node.children {
                        if !st.visited.insert(*child) {
                            st.error = Some(FormatError::new(
                                "group B-tree node",
                                job.addr,
                                "cycle in B-tree",
                            ));
                            continue;
                        }
                        st.outstanding.start(*child);
                        next.push(*child);
                    }
                }
                self.finished(was_outstanding, "group B-tree node", job.addr)?;
                for child in next {
                    self.check_addr("group B-tree child", child)?;
                    let kind = if node.level > 0 {
                        JobKind::GroupNode { heap, tree }
                    } else {
                        JobKind::SymbolNode { tree }
                    };
                    let probe = self.opts.probe_size.min(2048);
                    self.push(child, probe, kind);
                }
            }
            JobKind::SymbolNode { tree } => {
                let entries = attempt!(
                    "symbol table node",
                    btree_v1::parse_symbol_node(&bytes, job.addr, &ctx)
                );
                self.used(job.addr, 8 + entries.len() as u64 * (2 * so + 24));
                let mut was_outstanding = false;
                if let Some(st) = self.group_trees.get_mut(&tree) {
                    was_outstanding = st.outstanding.finish(job.addr);
                    st.entries.extend(entries);
                }
                self.finished(was_outstanding, "symbol table node", job.addr)?;
            }
            JobKind::HeapHeader => {
                let h = attempt!(
                    "fractal heap header",
                    fh::parse_header(&bytes, job.addr, &ctx)
                );
                self.used(
                    job.addr,
                    30 + 12 * sl
                        + 3 * so
                        + if h.io_filters_len > 0 {
                            sl + 4 + h.io_filters_len as u64
                        } else {
                            0
                        },
                );
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
            }
            JobKind::HeapDirect { heap, size } => {
                let Some(h) = self.fheaps.get(&heap).and_then(|s| s.header.clone()) else {
                    return Ok(());
                };
                let b = attempt!(
                    "fractal heap direct block",
                    fh::parse_direct(&bytes, job.addr, &ctx, &h, size)
                );
                self.used(job.addr, size);
                let mut was_outstanding = false;
                if let Some(st) = self.fheaps.get_mut(&heap) {
                    was_outstanding = st.outstanding.finish(job.addr);
                    st.direct.insert(b.block_offset, b.data);
                }
                self.finished(was_outstanding, "fractal heap direct block", job.addr)?;
            }
            JobKind::HeapIndirect { heap, nrows } => {
                let Some(h) = self.fheaps.get(&heap).and_then(|s| s.header.clone()) else {
                    return Ok(());
                };
                let ib = attempt!(
                    "fractal heap indirect block",
                    fh::parse_indirect(&bytes, job.addr, &ctx, &h, nrows)
                );
                self.used(job.addr, fh::indirect_size(&ctx, &h, nrows));
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
                let Some(st) = self.fheaps.get_mut(&heap) else {
                    return Ok(());
                };
                let was_outstanding = st.outstanding.finish(job.addr);
                let mut accepted = Vec::new();
                for (a, size, kind) in next {
                    if !st.visited.insert(a) {
                        return Err(self.format_err(
                            "fractal heap indirect block",
                            job.addr,
                            "cycle: block referenced twice",
                        ));
                    }
                    st.outstanding.start(a);
                    accepted.push((a, size, kind));
                }
                self.finished(was_outstanding, "fractal heap indirect block", job.addr)?;
                for (a, size, kind) in accepted {
                    self.check_addr("fractal heap block", a)?;
                    self.check_len("fractal heap block", a, size)?;
                    self.push(a, size, kind);
                }
            }
            JobKind::BTree2Header => {
                let h = attempt!(
                    "v2 B-tree header",
                    btree_v2::parse_header(&bytes, job.addr, &ctx)
                );
                self.used(job.addr, 22 + so + sl);
                let tree = job.addr;
                // Finished before its root is asked for (see the heap).
                let was_outstanding = self
                    .btrees
                    .get_mut(&tree)
                    .is_some_and(|st| st.outstanding.finish(tree));
                self.finished(was_outstanding, "v2 B-tree header", tree)?;
                let geo = btree_v2::Geometry::new(&h, &ctx);
                if let (Some(root), true) = (h.root, h.root_records > 0 || h.depth > 0) {
                    self.check_addr("v2 B-tree root", root)?;
                    let len = h.node_size as u64;
                    self.push(
                        root,
                        len,
                        JobKind::BTree2Node {
                            tree,
                            depth: h.depth,
                            nrec: h.root_records as u64,
                        },
                    );
                    if let Some(st) = self.btrees.get_mut(&tree) {
                        st.outstanding.start(root);
                        st.visited.insert(root);
                    }
                }
                if let Some(st) = self.btrees.get_mut(&tree) {
                    st.header = Some(h);
                    st.geometry = Some(geo);
                }
            }
            JobKind::BTree2Node { tree, depth, nrec } => {
                let Some((h, geo)) = self
                    .btrees
                    .get(&tree)
                    .and_then(|s| Some((s.header.clone()?, s.geometry.clone()?)))
                else {
                    return Ok(());
                };
                let node = attempt!(
                    "v2 B-tree node",
                    btree_v2::parse_node(&bytes, job.addr, &ctx, &h, &geo, depth, nrec)
                );
                self.used(job.addr, h.node_size as u64);
                let Some(st) = self.btrees.get_mut(&tree) else {
                    return Ok(());
                };
                let was_outstanding = st.outstanding.finish(job.addr);
                st.records.extend(node.records);
                let mut next = Vec::new();
                for c in node.children {
                    if !st.visited.insert(c.address) {
                        return Err(self.format_err(
                            "v2 B-tree node",
                            job.addr,
                            "cycle: node referenced twice",
                        ));
                    }
                    st.outstanding.start(c.address);
                    next.push(c);
                }
                self.finished(was_outstanding, "v2 B-tree node", job.addr)?;
                for c in next {
                    self.check_addr("v2 B-tree node", c.address)?;
                    self.push(
                        c.address,
                        h.node_size as u64,
                        JobKind::BTree2Node {
                            tree,
                            depth: depth - 1,
                            nrec: c.records,
                        },
                    );
                }
            }
            JobKind::GlobalHeap => {
                let c = attempt!(
                    "global heap collection",
                    global_heap::parse(&bytes, job.addr, &ctx)
                );
                self.used(job.addr, job.len);
                self.gheaps.insert(job.addr, c);
            }
            JobKind::Data => {}
            JobKind::Blob => {
                if (bytes.len() as u64) < job.len {
                    return Err(self.format_err("huge heap object", job.addr, "truncated"));
                }
                self.blobs.insert((job.addr, job.len), bytes);
            }
            JobKind::SharedTable => {
                let t = attempt!("shared message table", sohm::parse(&bytes, job.addr, &ctx));
                for (_, heap) in &t.heaps {
                    self.request_fheap(*heap)?;
                }
                self.shared_table = Some(t);
            }
            JobKind::ChunkNode { ds } => self.handle_chunk_node(job, bytes, ds)?,
            JobKind::FaHeader { ds } => self.handle_fa_header(job, bytes, ds)?,
            JobKind::FaData { ds } => self.handle_fa_data(job, bytes, ds)?,
            JobKind::EaHeader { ds } => self.handle_ea_header(job, bytes, ds)?,
            JobKind::EaIndex { ds } => self.handle_ea_index(job, bytes, ds)?,
            JobKind::EaSecondary { ds, level, first } => {
                self.handle_ea_secondary(job, bytes, (ds, level, first))?
            }
            JobKind::EaData {
                ds,
                first,
                n,
                page_init,
            } => self.handle_ea_data(job, bytes, (ds, first, n, page_init))?,
        }
        Ok(())
    }

    /// A block was handled: it must have been outstanding (asked for by
    /// its structure and not handled yet), or the walk's bookkeeping is
    /// wrong; that is an error, never a count quietly kept at zero.
    fn finished(
        &self,
        was_outstanding: bool,
        structure: &'static str,
        addr: u64,
    ) -> Result<(), Error> {
        if was_outstanding {
            return Ok(());
        }
        Err(self.format_err(
            structure,
            addr,
            "block handled that was not outstanding (walk bookkeeping)",
        ))
    }

    pub(super) fn queue_continuations(
        &mut self,
        owner: u64,
        conts: Vec<oh::Continuation>,
    ) -> Result<(), Error> {
        for c in conts {
            self.check_addr("object header continuation", c.address)?;
            self.check_len("object header continuation", c.address, c.length)?;
            let Some(st) = self.headers.get_mut(&owner) else {
                continue;
            };
            if !st.seen_blocks.insert(c.address) {
                return Err(self.format_err(
                    "object header continuation",
                    c.address,
                    "cycle: block referenced twice",
                ));
            }
            st.outstanding.start(c.address);
            self.push(
                c.address,
                c.length,
                JobKind::Continuation { owner, cont: c },
            );
        }
        Ok(())
    }
}
