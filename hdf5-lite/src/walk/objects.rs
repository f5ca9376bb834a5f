//! Object headers once complete: what their messages point at (links,
//! heaps, shared messages, committed datatypes, global heap collections).

use super::*;

impl Walker {
    /// Interpret a complete header and request what its messages point at.
    pub(super) fn expand(&mut self, addr: u64) -> Result<(), Error> {
        if let Some(h) = self.headers.get_mut(&addr) {
            h.expanded = true;
        }
        let ctx = self.ctx;
        // Shared messages anywhere in the header.
        let shared_msgs: Vec<RawMessage> = self
            .headers
            .get(&addr)
            .map(|h| {
                h.messages
                    .iter()
                    .filter(|m| m.flags & oh::FLAG_SHARED != 0)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for m in shared_msgs {
            let s = self.parse_msg(addr, &m, "shared message", |i| shared(i, &ctx))?;
            if let SharedRef::ObjectHeader(a) = s {
                self.request_header(a)?;
            }
        }
        for m in self.msgs(addr, oh::MSG_ATTRIBUTE) {
            let a = self.parse_msg(addr, &m, "attribute message", |i| attribute(i, &ctx))?;
            if let MaybeShared::Shared(SharedRef::ObjectHeader(t)) = a.datatype {
                self.request_header(t)?;
            }
        }
        for m in self.msgs(addr, oh::MSG_SYMBOL_TABLE) {
            let st = self.parse_msg(addr, &m, "symbol table message", |i| symbol_table(i, &ctx))?;
            self.request_local_heap(st.local_heap)?;
            self.request_group_tree(st.btree, st.local_heap)?;
        }
        for m in self.msgs(addr, oh::MSG_LINK_INFO) {
            let li = self.parse_msg(addr, &m, "link info message", |i| link_info(i, &ctx))?;
            if let (Some(h), Some(b)) = (li.fractal_heap, li.name_index) {
                self.request_fheap(h)?;
                self.request_btree2(b)?;
            }
        }
        for m in self.msgs(addr, oh::MSG_ATTRIBUTE_INFO) {
            let ai = self.parse_msg(addr, &m, "attribute info message", |i| {
                attribute_info(i, &ctx)
            })?;
            if let (Some(h), Some(b)) = (ai.fractal_heap, ai.name_index) {
                self.request_fheap(h)?;
                self.request_btree2(b)?;
            }
        }
        for m in self.msgs(addr, file_space::MSG_FILE_SPACE_INFO) {
            // Only the superblock extension carries it; a version we do not
            // know just means no page-sized reads.
            if let Ok(info) = crate::parse::run("file space info message", addr, &m.body, |i| {
                file_space::file_space_info(i, &ctx)
            }) {
                self.page_size = info.paged();
            }
        }
        for m in self.msgs(addr, oh::MSG_SHARED_MESSAGE_TABLE) {
            let (table, _n) = self.parse_msg(addr, &m, "shared message table message", |i| {
                let (r, _version) = crate::parse::u8_(i)?;
                let (r, a) = ctx.addr_req(r, "shared message table")?;
                let (r, n) = crate::parse::u8_(r)?;
                Ok((r, (a, n)))
            })?;
            if self.once(table, R_FHEAP + 100) {
                self.check_addr("shared message table", table)?;
                self.push(table, 1024, JobKind::SharedTable);
            }
        }
        for m in self.msgs(addr, oh::MSG_EXTERNAL_FILES) {
            // The file names live in a local heap.
            let heap = self.parse_msg(addr, &m, "external data files message", |i| {
                external_files::heap_address(i, &ctx)
            })?;
            if let Some(h) = heap {
                self.request_local_heap(h)?;
            }
        }
        if !self.msgs(addr, oh::MSG_LAYOUT).is_empty() {
            self.plan_chunks(addr)?;
        }
        Ok(())
    }

    /// The resolved datatype message of a header (following committed types).
    pub(super) fn datatype_of(&self, addr: u64, depth: u32) -> Result<Option<Datatype>, Error> {
        if depth > 8 {
            return Err(self.format_err(
                "datatype message",
                addr,
                "committed datatype chain too long",
            ));
        }
        let ctx = self.ctx;
        let Some(m) = self.msgs(addr, oh::MSG_DATATYPE).into_iter().next() else {
            return Ok(None);
        };
        if m.flags & oh::FLAG_SHARED != 0 {
            let s = self.parse_msg(addr, &m, "shared datatype", |i| shared(i, &ctx))?;
            return self.resolve_shared_datatype(addr, s, depth);
        }
        Ok(Some(self.parse_msg(
            addr,
            &m,
            "datatype message",
            datatype,
        )?))
    }

    pub(super) fn resolve_shared_datatype(
        &self,
        owner: u64,
        s: SharedRef,
        depth: u32,
    ) -> Result<Option<Datatype>, Error> {
        match s {
            SharedRef::ObjectHeader(a) => {
                if !self.headers.get(&a).is_some_and(|h| h.complete()) {
                    return Ok(None);
                }
                match self.datatype_of(a, depth + 1)? {
                    Some(d) => Ok(Some(d)),
                    None => Err(self.format_err(
                        "committed datatype",
                        a,
                        "object has no datatype message",
                    )),
                }
            }
            SharedRef::Heap(id) => {
                let Some(body) = self.shared_heap_message(oh::MSG_DATATYPE, &id)? else {
                    return Ok(None);
                };
                let m = RawMessage {
                    kind: oh::MSG_DATATYPE,
                    flags: 0,
                    creation_order: None,
                    body,
                };
                Ok(Some(self.parse_msg(
                    owner,
                    &m,
                    "shared datatype message",
                    datatype,
                )?))
            }
        }
    }

    /// A message body from the shared-message (SOHM) heap of `kind`.
    pub(super) fn shared_heap_message(
        &self,
        kind: u16,
        id: &[u8; 8],
    ) -> Result<Option<Bytes>, Error> {
        let Some(t) = &self.shared_table else {
            return Ok(None);
        };
        for (flags, heap) in &t.heaps {
            if flags & (1 << sohm::message_type_bit(kind)) != 0 {
                return self.heap_object(*heap, id);
            }
        }
        Err(self.format_err(
            "shared message table",
            0,
            format!("no index holds message type {kind:#x}"),
        ))
    }

    /// The message of `kind` at `addr`, following a SOHM reference.
    pub(super) fn unshared(&self, addr: u64, m: &RawMessage) -> Result<Option<RawMessage>, Error> {
        if m.flags & oh::FLAG_SHARED == 0 {
            return Ok(Some(m.clone()));
        }
        let ctx = self.ctx;
        let s = self.parse_msg(addr, m, "shared message", |i| shared(i, &ctx))?;
        match s {
            SharedRef::Heap(id) => {
                Ok(self
                    .shared_heap_message(m.kind, &id)?
                    .map(|body| RawMessage {
                        kind: m.kind,
                        flags: 0,
                        creation_order: m.creation_order,
                        body,
                    }))
            }
            SharedRef::ObjectHeader(a) => {
                if !self.headers.get(&a).is_some_and(|h| h.complete()) {
                    return Ok(None);
                }
                Ok(self.msgs(a, m.kind).into_iter().next())
            }
        }
    }

    /// Bytes of a fractal heap object, once the heap is fully read.
    pub(super) fn heap_object(&self, heap: u64, id: &[u8]) -> Result<Option<Bytes>, Error> {
        let Some(st) = self.fheaps.get(&heap) else {
            return Ok(None);
        };
        if !st.outstanding.is_empty() {
            return Ok(None);
        }
        let Some(h) = &st.header else { return Ok(None) };
        let hid = fh::parse_id(id, h, &self.ctx)
            .map_err(|e| self.format_err("fractal heap id", heap, e))?;
        match hid {
            fh::HeapId::Tiny(d) => Ok(Some(Bytes::from(d))),
            fh::HeapId::Managed { offset, length } => {
                let Some((start, block)) = st.direct.range(..=offset).next_back() else {
                    return Err(self.format_err(
                        "fractal heap",
                        heap,
                        format!("no direct block holds offset {offset}"),
                    ));
                };
                let s = (offset - start) as usize;
                match s.checked_add(length as usize).and_then(|e| block.get(s..e)) {
                    Some(_) => Ok(Some(block.slice(s..s + length as usize))),
                    None => Err(self.format_err(
                        "fractal heap",
                        heap,
                        format!("object at {offset}+{length} overruns its block"),
                    )),
                }
            }
            fh::HeapId::HugeDirect { address, length } => {
                Ok(self.blobs.get(&(address, length)).cloned())
            }
            fh::HeapId::HugeKey(key) => {
                let Some(bt) = h.huge_btree else {
                    return Err(self.format_err(
                        "fractal heap",
                        heap,
                        "huge object without a huge-object B-tree",
                    ));
                };
                let Some(tree) = self.btrees.get(&bt) else {
                    return Ok(None);
                };
                if !tree.outstanding.is_empty() {
                    return Ok(None);
                }
                if let Some(h) = btree_v2::find_huge_object(&tree.records, &self.ctx, key) {
                    return Ok(self.blobs.get(&(h.address, h.length)).cloned());
                }
                Err(self.format_err("fractal heap", heap, format!("huge object {key} not found")))
            }
        }
    }

    /// Huge heap objects referenced by ids that need a separate fetch.
    pub(super) fn request_huge(&mut self, heap: u64, id: &[u8]) -> Result<(), Error> {
        let Some(h) = self.fheaps.get(&heap).and_then(|s| s.header.clone()) else {
            return Ok(());
        };
        let ctx = self.ctx;
        match fh::parse_id(id, &h, &ctx) {
            Ok(fh::HeapId::HugeDirect { address, length }) => self.request_blob(address, length),
            Ok(fh::HeapId::HugeKey(key)) => {
                let Some(tree) = h.huge_btree.and_then(|b| self.btrees.get(&b)) else {
                    return Ok(());
                };
                let found = btree_v2::find_huge_object(&tree.records, &ctx, key)
                    .map(|h| (h.address, h.length));
                match found {
                    Some((a, l)) => self.request_blob(a, l),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// Links of a group whose link storage is complete; `None` otherwise
    /// (or when the object is not a group).
    pub(super) fn links_of(&mut self, addr: u64) -> Result<Option<Vec<Link>>, Error> {
        let Some(h) = self.headers.get(&addr) else {
            return Ok(None);
        };
        if !h.complete() {
            return Ok(None);
        }
        let ctx = self.ctx;
        let mut links = Vec::new();
        let mut is_group = false;
        for m in self.msgs(addr, oh::MSG_LINK) {
            is_group = true;
            links.push(self.parse_msg(addr, &m, "link message", |i| link(i, &ctx))?);
        }
        for m in self.msgs(addr, oh::MSG_LINK_INFO) {
            is_group = true;
            let li: LinkInfo =
                self.parse_msg(addr, &m, "link info message", |i| link_info(i, &ctx))?;
            let (Some(heap), Some(bt)) = (li.fractal_heap, li.name_index) else {
                continue;
            };
            let (Some(hs), Some(ts)) = (self.fheaps.get(&heap), self.btrees.get(&bt)) else {
                return Ok(None);
            };
            if !hs.outstanding.is_empty() || !ts.outstanding.is_empty() {
                return Ok(None);
            }
            let records = ts.records.clone();
            for r in records {
                let Some(btree_v2::NameRecord::Link { heap_id: id }) =
                    btree_v2::link_name_record(&r)
                else {
                    return Err(self.format_err("link name index", bt, "record too short"));
                };
                let Some(body) = self.heap_object(heap, id)? else {
                    self.request_huge(heap, id)?;
                    return Ok(None);
                };
                let m = RawMessage {
                    kind: oh::MSG_LINK,
                    flags: 0,
                    creation_order: None,
                    body,
                };
                links.push(self.parse_msg(heap, &m, "dense link message", |i| link(i, &ctx))?);
            }
        }
        for m in self.msgs(addr, oh::MSG_SYMBOL_TABLE) {
            is_group = true;
            let st = self.parse_msg(addr, &m, "symbol table message", |i| symbol_table(i, &ctx))?;
            let Some(tree) = self.group_trees.get(&st.btree) else {
                return Ok(None);
            };
            if !tree.outstanding.is_empty() {
                return Ok(None);
            }
            if let Some(e) = &tree.error {
                return Err(Error::Format {
                    file: self.name.clone(),
                    error: e.clone(),
                });
            }
            let Some(data) = self
                .local_heaps
                .get(&st.local_heap)
                .and_then(|h| h.data.clone())
            else {
                return Ok(None);
            };
            for e in &tree.entries {
                let Some(name) = local_heap::string_at(&data, e.name_offset) else {
                    return Err(self.format_err(
                        "local heap",
                        st.local_heap,
                        format!("no name at offset {}", e.name_offset),
                    ));
                };
                let target = match (e.soft_link_offset, e.object_header) {
                    (Some(off), _) => match local_heap::string_at(&data, off as u64) {
                        Some(p) => LinkTarget::Soft(p),
                        None => {
                            return Err(self.format_err(
                                "local heap",
                                st.local_heap,
                                format!("no soft link value at offset {off}"),
                            ));
                        }
                    },
                    (None, Some(a)) => LinkTarget::Hard(a),
                    (None, None) => {
                        return Err(self.format_err(
                            "symbol table node",
                            st.btree,
                            format!("entry {name} has no object header"),
                        ));
                    }
                };
                links.push(Link {
                    name,
                    creation_order: None,
                    target,
                });
            }
        }
        Ok(is_group.then_some(links))
    }

    /// Fetch the global heap collections that attribute values point into.
    pub(super) fn request_vlen_collections(&mut self) -> Result<(), Error> {
        let mut need = Vec::new();
        let addrs: Vec<u64> = self.headers.keys().copied().collect();
        for addr in addrs {
            for a in self.attribute_messages(addr)? {
                let Some(dt) = self.attr_datatype(addr, &a)? else {
                    continue;
                };
                if !has_vlen(&dt) {
                    continue;
                }
                if let Ok(d) = self.decode_attribute(&dt, &a) {
                    need.extend(d.missing);
                }
            }
        }
        need.sort_unstable();
        need.dedup();
        for a in need {
            if !self.gheaps.contains_key(&a) {
                self.request_gheap(a)?;
            }
        }
        Ok(())
    }

    /// An attribute's value, its variable-length elements looked up in the
    /// global heap collections fetched so far (`missing` names the others).
    pub(super) fn decode_attribute(
        &self,
        dt: &Datatype,
        a: &AttributeMessage,
    ) -> Result<value::Decoded, String> {
        let lookup = |id: value::GlobalId| {
            self.gheaps
                .get(&id.0)
                // a collection numbers its objects with 16 bits; a larger index
                // names no object (`as u16` would pick another one's bytes)
                .and_then(|c| c.objects.get(&u16::try_from(id.1).ok()?).cloned())
        };
        let count = a.dataspace.num_elements();
        value::decode(dt, count, &a.data, &self.ctx, &lookup)
    }

    /// Every attribute message of an object: compact ones and dense ones.
    pub(super) fn attribute_messages(&mut self, addr: u64) -> Result<Vec<AttributeMessage>, Error> {
        let ctx = self.ctx;
        let mut out = Vec::new();
        for m in self.msgs(addr, oh::MSG_ATTRIBUTE) {
            let Some(m) = self.unshared(addr, &m)? else {
                continue;
            };
            out.push(self.parse_msg(addr, &m, "attribute message", |i| attribute(i, &ctx))?);
        }
        for m in self.msgs(addr, oh::MSG_ATTRIBUTE_INFO) {
            let ai: AttributeInfo = self.parse_msg(addr, &m, "attribute info message", |i| {
                attribute_info(i, &ctx)
            })?;
            let (Some(heap), Some(bt)) = (ai.fractal_heap, ai.name_index) else {
                continue;
            };
            let Some(ts) = self.btrees.get(&bt) else {
                continue;
            };
            let records = ts.records.clone();
            for r in records {
                let Some(btree_v2::NameRecord::Attribute { heap_id: id, flags }) =
                    btree_v2::attribute_name_record(&r)
                else {
                    return Err(self.format_err("attribute name index", bt, "record too short"));
                };
                let Some(body) = self.heap_object(heap, id)? else {
                    self.request_huge(heap, id)?;
                    continue;
                };
                let raw = RawMessage {
                    kind: oh::MSG_ATTRIBUTE,
                    flags,
                    creation_order: None,
                    body,
                };
                let Some(raw) = self.unshared(addr, &raw)? else {
                    continue;
                };
                out.push(self.parse_msg(heap, &raw, "dense attribute message", |i| {
                    attribute(i, &ctx)
                })?);
            }
        }
        Ok(out)
    }

    pub(super) fn attr_datatype(
        &self,
        owner: u64,
        a: &AttributeMessage,
    ) -> Result<Option<Datatype>, Error> {
        match &a.datatype {
            MaybeShared::Inline(d) => Ok(Some(d.clone())),
            MaybeShared::Shared(s) => self.resolve_shared_datatype(owner, *s, 0),
        }
    }
}

pub(super) fn has_vlen(dt: &Datatype) -> bool {
    match dt {
        Datatype::VlenString { .. } | Datatype::VlenSequence { .. } => true,
        Datatype::Compound { members, .. } => members.iter().any(|m| has_vlen(&m.datatype)),
        Datatype::Array { base, .. } => has_vlen(base),
        _ => false,
    }
}
