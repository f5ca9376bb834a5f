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
        let h = match self.ds_parsed(
            ds,
            &job,
            had,
            "fixed array header",
            fa::parse_header(&bytes, job.addr, &ctx),
        ) {
            Some(v) => v,
            None => return Ok(()),
        };
        self.used(job.addr, h.size);
        let size = h.data_block_size(&ctx);
        let data = h.data_block;
        let Some(st) = self.chunk_states.get_mut(&ds) else {
            return Ok(());
        };
        st.finish(job.addr);
        st.fa = Some(h);
        if let Some(a) = data {
            if a >= self.size || size > self.opts.max_metadata_bytes {
                st.error = Some(format!(
                    "fixed array data block at {a:#x} of {size} bytes is out of bounds"
                ));
                return Ok(());
            }
            st.outstanding.start(a);
            self.push(a, size, JobKind::FaData { ds });
        }
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
        let block = match self.ds_parsed(
            ds,
            &job,
            had,
            "fixed array data block",
            fa::parse_data_block(&bytes, job.addr, &ctx, &h),
        ) {
            Some(v) => v,
            None => return Ok(()),
        };
        self.used(job.addr, block.size);
        self.add_entries(ds, job.addr, 0, block.entries, h.client);
        Ok(())
    }
}
