//! Version 2 B-tree chunk index (spec III.A.2, record types 10 and 11): the
//! records, once the tree is read and decoded by `btree_v2::parse_record`,
//! turned into chunks (scaled offsets times the chunk's dimensions, chunks
//! outside the extent dropped).

use super::*;

impl Walker {
    pub(in crate::walk) fn btree2_chunks(
        &self,
        ds: u64,
        bt: u64,
        error: &mut Option<String>,
    ) -> Vec<Chunk> {
        let Some(g) = self.chunk_states.get(&ds).and_then(|s| s.geom.clone()) else {
            return vec![];
        };
        let Some(tree) = self.btrees.get(&bt) else {
            return vec![];
        };
        let Some(h) = &tree.header else { return vec![] };
        let ctx = self.ctx;
        let ty = match btree_v2::RecordType::chunks(h, &ctx, g.chunk.len()) {
            Ok(ty) => ty,
            Err(e) => {
                *error = Some(format!("{}: {e}", self.name));
                return vec![];
            }
        };
        let mut out = Vec::with_capacity(tree.records.len());
        for r in &tree.records {
            let Ok(btree_v2::Record::Chunk(c)) = btree_v2::parse_record(r, bt, ty, &ctx) else {
                *error = Some(format!(
                    "{}: bad v2 B-tree chunk record in tree at {bt:#x}",
                    self.name
                ));
                return vec![];
            };
            let offset: Vec<u64> = c
                .scaled_offsets
                .iter()
                .zip(&g.chunk)
                .map(|(s, d)| s.saturating_mul(*d))
                .collect();
            if g.in_extent(&offset) {
                out.push(Chunk {
                    offset,
                    address: c.address,
                    size: c.size.unwrap_or_else(|| g.chunk_bytes()),
                    filter_mask: c.filter_mask,
                });
            }
        }
        out
    }
}
