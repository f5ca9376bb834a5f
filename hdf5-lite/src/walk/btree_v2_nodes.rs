//! Version 2 B-trees (link and attribute name indexes, huge heap objects,
//! chunk indexes): the header and the nodes, whose records the walk keeps
//! for the structure that asked.

use super::*;

impl Walker {
    /// A v2 B-tree header: its root node is queued.
    pub(super) fn handle_btree2_header(&mut self, job: Job, bytes: Bytes) -> Result<(), Error> {
        let ctx = self.ctx;
        let had = bytes.len();
        let h = attempt!(
            self,
            job,
            had,
            "v2 B-tree header",
            btree_v2::parse_header(&bytes, job.addr, &ctx)
        );
        self.used(job.addr, h.size);
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
        Ok(())
    }

    /// A v2 B-tree node: its records are kept, its children queued.
    pub(super) fn handle_btree2_node(
        &mut self,
        job: Job,
        bytes: Bytes,
        tree: u64,
        depth: u16,
        nrec: u64,
    ) -> Result<(), Error> {
        let ctx = self.ctx;
        let had = bytes.len();
        let Some((h, geo)) = self
            .btrees
            .get(&tree)
            .and_then(|s| Some((s.header.clone()?, s.geometry.clone()?)))
        else {
            return Ok(());
        };
        let node = attempt!(
            self,
            job,
            had,
            "v2 B-tree node",
            btree_v2::parse_node(&bytes, job.addr, &ctx, &h, &geo, depth, nrec)
        );
        self.used(job.addr, node.size);
        let Some(st) = self.btrees.get_mut(&tree) else {
            return Ok(());
        };
        let was_outstanding = st.outstanding.finish(job.addr);
        st.records.extend(node.records);
        let children = node.children.iter().map(|c| c.address);
        if st.outstanding.start_new(&mut st.visited, children).is_err() {
            return Err(self.format_err(
                "v2 B-tree node",
                job.addr,
                "cycle: node referenced twice",
            ));
        }
        self.finished(was_outstanding, "v2 B-tree node", job.addr)?;
        for c in node.children {
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
        Ok(())
    }
}
