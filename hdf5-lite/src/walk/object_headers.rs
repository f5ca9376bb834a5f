//! Object headers: the first block and its continuation blocks, whose
//! messages the walk collects until the header is complete.

use super::*;

impl Walker {
    /// The first block of an object header.
    pub(super) fn handle_header(&mut self, job: Job, bytes: Bytes) -> Result<(), Error> {
        let ctx = self.ctx;
        let had = bytes.len();
        let block = attempt!(
            self,
            job,
            had,
            "object header",
            oh::parse_header(&bytes, job.addr, &ctx)
        );
        self.used(job.addr, block.size);
        let conts = block.continuations.clone();
        let st = self.headers.entry(job.addr).or_default();
        st.version = block.version;
        st.flags = block.flags;
        st.messages.extend(block.messages);
        st.parsed_first = true;
        st.seen_blocks.insert(job.addr);
        self.queue_continuations(job.addr, conts)?;
        Ok(())
    }

    /// A continuation block of the header at `owner`.
    pub(super) fn handle_continuation(
        &mut self,
        job: Job,
        bytes: Bytes,
        owner: u64,
        cont: oh::Continuation,
    ) -> Result<(), Error> {
        let ctx = self.ctx;
        let had = bytes.len();
        let (version, flags) = match self.headers.get(&owner) {
            Some(s) => (s.version, s.flags),
            None => return Ok(()),
        };
        let block = attempt!(
            self,
            job,
            had,
            "object header continuation",
            oh::parse_continuation(&bytes, cont, version, flags, &ctx)
        );
        self.used(cont.address, block.size);
        let conts = block.continuations.clone();
        let mut was_outstanding = false;
        if let Some(st) = self.headers.get_mut(&owner) {
            st.messages.extend(block.messages);
            was_outstanding = st.outstanding.finish(job.addr);
        }
        self.finished(was_outstanding, "object header continuation", job.addr)?;
        self.queue_continuations(owner, conts)?;
        Ok(())
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
