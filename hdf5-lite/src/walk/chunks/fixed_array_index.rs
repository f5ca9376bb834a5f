//! Fixed array chunk index (spec VII.A): a header and one data block.

use super::*;

impl Walker {
    pub(in crate::walk) fn handle_fa_header(
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
            "fixed array header",
            fa::parse_header(&bytes, job.addr, &ctx),
            |v| v.size,
        ) else {
            return Ok(());
        };
        let next = self.index_next_block(
            h.data_block,
            h.data_block_size(&ctx),
            JobKind::FaData { ds },
            "fixed array data block",
        );
        self.index_header_done(ds, job.addr, |st| st.fa = Some(h), next);
        Ok(())
    }

    pub(in crate::walk) fn handle_fa_data(
        &mut self,
        job: Job,
        bytes: Bytes,
        ds: u64,
    ) -> Result<(), Error> {
        let ctx = self.ctx;
        let had = bytes.len();
        let Some(h) = self.chunk_states.get(&ds).and_then(|s| s.fa.clone()) else {
            return Ok(());
        };
        let Some(block) = self.ds_parsed(
            ds,
            &job,
            had,
            "fixed array data block",
            fa::parse_data_block(&bytes, job.addr, &ctx, &h),
            |v| v.size,
        ) else {
            return Ok(());
        };
        self.add_entries(ds, job.addr, 0, block.entries, h.client);
        Ok(())
    }
}
