//! Old-style groups: the group B-tree and its symbol table nodes, which
//! hold the group's links (names in the group's local heap).

use super::*;

impl Walker {
    /// A group B-tree node: its children are queued.
    pub(super) fn handle_group_node(
        &mut self,
        job: Job,
        bytes: Bytes,
        heap: u64,
        tree: u64,
    ) -> Result<(), Error> {
        let ctx = self.ctx;
        let had = bytes.len();
        let node = attempt!(
            self,
            job,
            had,
            "group B-tree node",
            btree_v1::parse_group_node(&bytes, job.addr, &ctx)
        );
        self.used(job.addr, node.size);
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
        Ok(())
    }

    /// A symbol table node: the group's link entries.
    pub(super) fn handle_symbol_node(
        &mut self,
        job: Job,
        bytes: Bytes,
        tree: u64,
    ) -> Result<(), Error> {
        let ctx = self.ctx;
        let had = bytes.len();
        let node = attempt!(
            self,
            job,
            had,
            "symbol table node",
            btree_v1::parse_symbol_node(&bytes, job.addr, &ctx)
        );
        self.used(job.addr, node.size);
        let mut was_outstanding = false;
        if let Some(st) = self.group_trees.get_mut(&tree) {
            was_outstanding = st.outstanding.finish(job.addr);
            st.entries.extend(node.entries);
        }
        self.finished(was_outstanding, "symbol table node", job.addr)?;
        Ok(())
    }
}
