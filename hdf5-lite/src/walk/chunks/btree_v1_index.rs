//! Version 1 B-tree chunk index (spec III.A.1, type 1 nodes): walked level
//! by level; leaves hold the chunks.

use super::*;

impl Walker {
    pub(in crate::walk) fn handle_chunk_node(
        &mut self,
        job: Job,
        bytes: Bytes,
        ds: u64,
    ) -> Result<(), Error> {
        let ctx = self.ctx;
        let had = bytes.len();
        let Some(rank) = self
            .chunk_states
            .get(&ds)
            .and_then(|s| s.geom.as_ref())
            .map(|g| g.chunk.len())
        else {
            return Ok(());
        };
        let Some(node) = self.ds_parsed(
            ds,
            &job,
            had,
            "chunk B-tree node",
            btree_v1::parse_chunk_node(&bytes, job.addr, &ctx, rank),
            |v| v.size,
        ) else {
            return Ok(());
        };
        let probe = self.opts.probe_size;
        let size = self.size;
        let max_chunks = self.opts.max_chunks_per_dataset;
        let Some(st) = self.chunk_states.get_mut(&ds) else {
            return Ok(());
        };
        if st.error.is_some() {
            return Ok(());
        }
        st.finish(job.addr);
        let mut next = Vec::new();
        for (key, child) in node.children {
            if node.level > 0 {
                if !st.visited.insert(child) || child >= size {
                    st.error = Some(format!(
                        "chunk B-tree node at {:#x}: bad or repeated child {child:#x}",
                        job.addr
                    ));
                    st.outstanding.abandon();
                    return Ok(());
                }
                st.outstanding.start(child);
                next.push(child);
            } else {
                let in_extent = st.geom.as_ref().is_some_and(|g| g.in_extent(&key.offset));
                if in_extent {
                    st.chunks.push(Chunk {
                        offset: key.offset,
                        address: child,
                        size: key.size as u64,
                        filter_mask: key.filter_mask,
                    });
                }
            }
        }
        if st.chunks.len() as u64 > max_chunks {
            st.error = Some(format!("more than {max_chunks} chunks"));
            st.outstanding.abandon();
            return Ok(());
        }
        for child in next {
            self.push(child, probe, JobKind::ChunkNode { ds });
        }
        Ok(())
    }
}
