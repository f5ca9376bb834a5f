//! Version 2 B-tree chunk index (spec III.A.2, record types 10 and 11): the
//! records, once the tree is read, decoded into chunks.

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
        let rank = g.chunk.len();
        let so = ctx.size_of_offsets as usize;
        let rec = h.record_size as usize;
        let filtered = h.tree_type == 11;
        let len_size = if filtered {
            rec.saturating_sub(so + 4 + 8 * rank)
        } else {
            0
        };
        if rec != so + 8 * rank + if filtered { len_size + 4 } else { 0 }
            || (filtered && !(1..=8).contains(&len_size))
        {
            *error = Some(format!(
                "{}: v2 B-tree chunk records of {rec} bytes do not match rank {rank}",
                self.name
            ));
            return vec![];
        }
        let mut out = Vec::with_capacity(tree.records.len());
        for r in &tree.records {
            let parsed: PResult<'_, Chunk> = (|| {
                let (i, a) = ctx.addr_req(r, "chunk")?;
                let (i, size, mask) = if filtered {
                    let (i, s) = crate::parse::uint(i, len_size as u8)?;
                    let (i, m) = crate::parse::u32_(i)?;
                    (i, s, m)
                } else {
                    (i, g.chunk_bytes(), 0)
                };
                let mut i = i;
                let mut offset = Vec::with_capacity(rank);
                for d in 0..rank {
                    let (ii, s) = crate::parse::u64_(i)?;
                    offset.push(s.saturating_mul(g.chunk[d]));
                    i = ii;
                }
                Ok((
                    i,
                    Chunk {
                        offset,
                        address: a,
                        size,
                        filter_mask: mask,
                    },
                ))
            })();
            match parsed {
                Ok((_, c)) if g.in_extent(&c.offset) => out.push(c),
                Ok(_) => {}
                Err(_) => {
                    *error = Some(format!(
                        "{}: bad v2 B-tree chunk record in tree at {bt:#x}",
                        self.name
                    ));
                    return vec![];
                }
            }
        }
        out
    }
}
