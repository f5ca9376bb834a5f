//! Extensible array chunk index (spec VII.B): header, index block, secondary
//! blocks and data blocks; element indexes computed with checked arithmetic.

use super::*;

impl Walker {
    pub(in crate::walk) fn handle_ea_header(
        &mut self,
        job: Job,
        bytes: Bytes,
        ds: u64,
    ) -> Result<(), Error> {
        let ctx = self.ctx;
        let had = bytes.len();
        let Some(h) = self.ds_parsed(
            ds,
            &job,
            had,
            "extensible array header",
            ea::parse_header(&bytes, job.addr, &ctx),
            |v| v.size,
        ) else {
            return Ok(());
        };
        let next = self.index_next_block(
            h.index_block,
            h.index_block_size(&ctx),
            JobKind::EaIndex { ds },
            "extensible array index block",
        );
        self.index_header_done(ds, job.addr, |st| st.ea = Some(h), next);
        Ok(())
    }

    pub(in crate::walk) fn handle_ea_index(
        &mut self,
        job: Job,
        bytes: Bytes,
        ds: u64,
    ) -> Result<(), Error> {
        let ctx = self.ctx;
        let had = bytes.len();
        let Some(h) = self.chunk_states.get(&ds).and_then(|s| s.ea.clone()) else {
            return Ok(());
        };
        let Some(ib) = self.ds_parsed(
            ds,
            &job,
            had,
            "extensible array index block",
            ea::parse_index_block(&bytes, job.addr, &ctx, &h),
            |v| v.size,
        ) else {
            return Ok(());
        };
        let levels = h.super_blocks();
        let base = h.index_block_elements as u64;
        let direct: Vec<Option<Bytes>> = ib.elements.into_iter().map(Some).collect();
        self.add_entries_keep_outstanding(ds, 0, direct, h.client);
        // Data blocks hanging off the index block, level by level.
        let mut k = 0usize;
        let mut jobs = Vec::new();
        for info in levels.iter().take(h.index_super_blocks()) {
            for d in 0..info.data_blocks {
                if let Some(Some(a)) = ib.data_blocks.get(k) {
                    let level_first = info.start_index.checked_add(base);
                    let Some((size, kind)) =
                        data_block_job(&ctx, &h, ds, info, level_first, d, None)
                    else {
                        self.fail_chunks(ds, "extensible array index overflows".into());
                        return Ok(());
                    };
                    jobs.push((*a, size, kind));
                }
                k += 1;
            }
        }
        for (s, a) in ib.secondary_blocks.iter().enumerate() {
            let level = h.index_super_blocks() + s;
            if let (Some(a), Some(info)) = (a, levels.get(level)) {
                let Some(first) = base.checked_add(info.start_index) else {
                    self.fail_chunks(ds, "extensible array index overflows".into());
                    return Ok(());
                };
                jobs.push((
                    *a,
                    ea::secondary_block_size(&ctx, &h, info),
                    JobKind::EaSecondary { ds, level, first },
                ));
            }
        }
        self.queue_chunk_jobs(ds, job.addr, jobs);
        Ok(())
    }

    pub(in crate::walk) fn handle_ea_secondary(
        &mut self,
        job: Job,
        bytes: Bytes,
        (ds, level, first): (u64, usize, u64),
    ) -> Result<(), Error> {
        let ctx = self.ctx;
        let had = bytes.len();
        let Some(h) = self.chunk_states.get(&ds).and_then(|s| s.ea.clone()) else {
            return Ok(());
        };
        let levels = h.super_blocks();
        let Some(info) = levels.get(level).copied() else {
            return Ok(());
        };
        let Some(sb) = self.ds_parsed(
            ds,
            &job,
            had,
            "extensible array secondary block",
            ea::parse_secondary_block(&bytes, job.addr, &ctx, &h, &info),
            |v| v.size,
        ) else {
            return Ok(());
        };
        let mut jobs = Vec::new();
        for (d, a) in sb.data_blocks.iter().enumerate() {
            if let Some(a) = a {
                let page_init = sb.page_init.get(d).cloned();
                let Some((size, kind)) =
                    data_block_job(&ctx, &h, ds, &info, Some(first), d as u64, page_init)
                else {
                    self.fail_chunks(ds, "extensible array index overflows".into());
                    return Ok(());
                };
                jobs.push((*a, size, kind));
            }
        }
        self.queue_chunk_jobs(ds, job.addr, jobs);
        Ok(())
    }

    pub(in crate::walk) fn handle_ea_data(
        &mut self,
        job: Job,
        bytes: Bytes,
        (ds, first, n, page_init): (u64, u64, u64, Option<Vec<bool>>),
    ) -> Result<(), Error> {
        let ctx = self.ctx;
        let had = bytes.len();
        let Some(h) = self.chunk_states.get(&ds).and_then(|s| s.ea.clone()) else {
            return Ok(());
        };
        let Some(block) = self.ds_parsed(
            ds,
            &job,
            had,
            "extensible array data block",
            ea::parse_data_block(&bytes, job.addr, &ctx, &h, n, page_init.as_deref()),
            |v| v.size,
        ) else {
            return Ok(());
        };
        self.add_entries(ds, job.addr, first, block.entries, h.client);
        Ok(())
    }
}

/// The size and job of data block `d` of the super block `info` whose first
/// element is `level_first`, as an index or secondary block lists it.
/// `None` when its element index overflows (or `level_first` did): the
/// index of a hostile array's block must not wrap.
fn data_block_job(
    ctx: &Ctx,
    h: &ea::Header,
    ds: u64,
    info: &ea::SuperBlockInfo,
    level_first: Option<u64>,
    d: u64,
    page_init: Option<Vec<bool>>,
) -> Option<(u64, JobKind)> {
    let n = info.data_block_elements;
    let first = d.checked_mul(n)?.checked_add(level_first?)?;
    Some((
        h.data_block_size(ctx, n),
        JobKind::EaData {
            ds,
            first,
            n,
            page_init,
        },
    ))
}
