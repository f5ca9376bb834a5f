//! Handling of fetched structures: each job's bytes go to the handler of
//! its structure (in the structure's file: `object_headers`, `heaps`,
//! `links`, `btree_v2_nodes`, `chunks/`), which runs the pure parser and
//! queues what the structure points at for the next wave. This file only
//! dispatches.

use super::*;

impl Walker {
    pub(super) fn handle(&mut self, job: Job, bytes: Bytes) -> Result<(), Error> {
        match job.kind.clone() {
            JobKind::Header => self.handle_header(job, bytes)?,
            JobKind::Continuation { owner, cont } => {
                self.handle_continuation(job, bytes, owner, cont)?
            }
            JobKind::LocalHeap => self.handle_local_heap(job, bytes)?,
            JobKind::LocalHeapData { heap } => self.handle_local_heap_data(job, bytes, heap)?,
            JobKind::GroupNode { heap, tree } => self.handle_group_node(job, bytes, heap, tree)?,
            JobKind::SymbolNode { tree } => self.handle_symbol_node(job, bytes, tree)?,
            JobKind::HeapHeader => self.handle_heap_header(job, bytes)?,
            JobKind::HeapDirect { heap, size } => {
                self.handle_heap_direct(job, bytes, heap, size)?
            }
            JobKind::HeapIndirect { heap, nrows } => {
                self.handle_heap_indirect(job, bytes, heap, nrows)?
            }
            JobKind::BTree2Header => self.handle_btree2_header(job, bytes)?,
            JobKind::BTree2Node { tree, depth, nrec } => {
                self.handle_btree2_node(job, bytes, tree, depth, nrec)?
            }
            JobKind::GlobalHeap => self.handle_global_heap(job, bytes)?,
            JobKind::Data => {}
            JobKind::Blob => self.handle_blob(job, bytes)?,
            JobKind::SharedTable => self.handle_shared_table(job, bytes)?,
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
    pub(super) fn finished(
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
}
