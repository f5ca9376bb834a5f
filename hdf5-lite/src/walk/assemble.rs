//! Assembly of the model ([`File`]) from a finished walk.

use super::*;

impl Walker {
    pub(super) fn assemble(&mut self) -> Result<File, Error> {
        let root = self.sb.root_object_header;
        let mut visited = HashMap::new();
        visited.insert(root, "/".to_string());
        let mut soft = Vec::new();
        let mut group = self.build_group(root, "/".to_string(), &mut visited, &mut soft, 0)?;
        // Resolve soft links now that every canonical path is known.
        let by_path: HashMap<&String, u64> = visited.iter().map(|(a, p)| (p, *a)).collect();
        let resolved: Vec<(String, String, Option<u64>)> = soft
            .into_iter()
            .map(|(group_path, name, target): (String, String, String)| {
                let abs = if target.starts_with('/') {
                    target.clone()
                } else {
                    join(&group_path, &target)
                };
                let a = by_path.get(&abs).copied();
                (group_path, name, a)
            })
            .collect();
        fill_soft_targets(&mut group, &resolved);
        Ok(File {
            source: self.name.clone(),
            size: self.size,
            superblock_version: self.sb.version,
            base_address: self.ctx.base,
            size_of_offsets: self.ctx.size_of_offsets,
            size_of_lengths: self.ctx.size_of_lengths,
            root: group,
        })
    }

    pub(super) fn build_group(
        &mut self,
        addr: u64,
        path: String,
        visited: &mut HashMap<u64, String>,
        soft: &mut Vec<(String, String, String)>,
        depth: u32,
    ) -> Result<Group, Error> {
        if depth > 512 {
            return Err(self.format_err("group", addr, "groups nested more than 512 deep"));
        }
        let attributes = self.attributes(addr)?;
        let mut links = self.links_of(addr)?.unwrap_or_default();
        links.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        let mut g = Group {
            path: path.clone(),
            address: addr,
            attributes,
            groups: vec![],
            datasets: vec![],
            datatypes: vec![],
            other_links: vec![],
        };
        for l in links {
            let child_path = join(&path, &l.name);
            match l.target {
                LinkTarget::Hard(a) => {
                    if let Some(canonical) = visited.get(&a) {
                        g.other_links.push(OtherLink::Hard {
                            name: l.name,
                            address: a,
                            canonical_path: canonical.clone(),
                        });
                        continue;
                    }
                    visited.insert(a, child_path.clone());
                    if self.links_of(a)?.is_some() {
                        let child = self.build_group(a, child_path, visited, soft, depth + 1)?;
                        g.groups.push(child);
                    } else if !self.msgs(a, oh::MSG_LAYOUT).is_empty() {
                        g.datasets.push(self.build_dataset(a, child_path)?);
                    } else if let Some(dt) = self.datatype_of(a, 0)? {
                        g.datatypes.push(NamedDatatype {
                            path: child_path,
                            address: a,
                            datatype: dt,
                        });
                    } else {
                        // An object with no recognisable role: treat as an empty group.
                        let child = self.build_group(a, child_path, visited, soft, depth + 1)?;
                        g.groups.push(child);
                    }
                }
                LinkTarget::Soft(target) => {
                    soft.push((path.clone(), l.name.clone(), target.clone()));
                    g.other_links.push(OtherLink::Soft {
                        name: l.name,
                        target,
                        target_address: None,
                    });
                }
                LinkTarget::External { file, object } => g.other_links.push(OtherLink::External {
                    name: l.name,
                    file,
                    object,
                }),
                LinkTarget::Other(t) => g.other_links.push(OtherLink::External {
                    name: l.name,
                    file: format!("<user-defined link type {t}>"),
                    object: String::new(),
                }),
            }
        }
        Ok(g)
    }

    pub(super) fn attributes(&mut self, addr: u64) -> Result<Vec<Attribute>, Error> {
        let msgs = self.attribute_messages(addr)?;
        let mut out = Vec::with_capacity(msgs.len());
        for a in msgs {
            let Some(dt) = self.attr_datatype(addr, &a)? else {
                return Err(self.format_err(
                    "attribute",
                    addr,
                    format!("datatype of {} could not be resolved", a.name),
                ));
            };
            let d = self
                .decode_attribute(&dt, &a)
                .map_err(|e| self.format_err("attribute", addr, format!("{}: {e}", a.name)))?;
            // Every collection the attributes point into was fetched before
            // assembly, so a reference still unresolved names no object (a
            // bad collection address or object index): libhdf5 fails the
            // read too, and a null would pass for a value.
            if let Some(c) = d.missing.first() {
                return Err(self.format_err(
                    "attribute",
                    addr,
                    format!(
                        "{}: a variable-length value names no object of the global heap collection at {c:#x}",
                        a.name
                    ),
                ));
            }
            out.push(Attribute {
                name: a.name,
                datatype: dt,
                dataspace: a.dataspace,
                value: d.values,
            });
        }
        out.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        Ok(out)
    }

    pub(super) fn build_dataset(&mut self, addr: u64, path: String) -> Result<Dataset, Error> {
        let ctx = self.ctx;
        let attributes = self.attributes(addr)?;
        let Some(dt) = self.datatype_of(addr, 0)? else {
            return Err(self.format_err("dataset object header", addr, "no datatype message"));
        };
        let space = match self.msgs(addr, oh::MSG_DATASPACE).into_iter().next() {
            Some(m) => match self.unshared(addr, &m)? {
                Some(m) => self.parse_msg(addr, &m, "dataspace message", |i| dataspace(i, &ctx))?,
                None => {
                    return Err(self.format_err(
                        "dataspace message",
                        addr,
                        "shared dataspace not found",
                    ));
                }
            },
            None => {
                return Err(self.format_err("dataset object header", addr, "no dataspace message"));
            }
        };
        let mut filters = Vec::new();
        for m in self.msgs(addr, oh::MSG_FILTER_PIPELINE) {
            if let Some(m) = self.unshared(addr, &m)? {
                filters = self.parse_msg(addr, &m, "filter pipeline message", filter_pipeline)?;
            }
        }
        let mut fill = FillValue::default();
        let mut have_new = false;
        for m in self.msgs(addr, oh::MSG_FILL_VALUE) {
            if let Some(m) = self.unshared(addr, &m)? {
                fill = self.parse_msg(addr, &m, "fill value message", fill_value)?;
                have_new = true;
            }
        }
        if !have_new {
            for m in self.msgs(addr, oh::MSG_FILL_VALUE_OLD) {
                if let Some(m) = self.unshared(addr, &m)? {
                    fill = self.parse_msg(addr, &m, "old fill value message", fill_value_old)?;
                }
            }
        }
        let mut error = None;
        let lay_msg = self.msgs(addr, oh::MSG_LAYOUT).into_iter().next();
        let layout = match lay_msg
            .map(|m| self.parse_msg(addr, &m, "data layout message", |i| layout(i, &ctx)))
        {
            None => Layout::Contiguous {
                address: None,
                size: 0,
            },
            Some(Err(e)) => {
                error = Some(e.to_string());
                Layout::Contiguous {
                    address: None,
                    size: 0,
                }
            }
            Some(Ok(DataLayout::Compact { data })) => Layout::Compact {
                size: data.len() as u64,
                data,
            },
            Some(Ok(DataLayout::Contiguous { address, size })) => {
                let size =
                    size.unwrap_or_else(|| space.num_elements().saturating_mul(dt.size() as u64));
                Layout::Contiguous { address, size }
            }
            Some(Ok(DataLayout::Virtual)) => {
                error = Some("virtual dataset layout is not supported".into());
                Layout::Virtual
            }
            Some(Ok(DataLayout::Chunked { dims, index, .. })) => {
                let kind = match index {
                    ChunkIndex::BTreeV1 { .. } => ChunkIndexKind::BTreeV1,
                    ChunkIndex::SingleChunk { .. } => ChunkIndexKind::SingleChunk,
                    ChunkIndex::Implicit { .. } => ChunkIndexKind::Implicit,
                    ChunkIndex::FixedArray { .. } => ChunkIndexKind::FixedArray,
                    ChunkIndex::ExtensibleArray { .. } => ChunkIndexKind::ExtensibleArray,
                    ChunkIndex::BTreeV2 { .. } => ChunkIndexKind::BTreeV2,
                };
                let mut chunks = Vec::new();
                if let ChunkIndex::BTreeV2 { address: Some(bt) } = index {
                    chunks = self.btree2_chunks(addr, bt, &mut error);
                } else if let Some(st) = self.chunk_states.get_mut(&addr) {
                    if let Some(e) = st.error.take() {
                        error = Some(e);
                    }
                    chunks = std::mem::take(&mut st.chunks);
                }
                chunks.sort_by(|a, b| a.offset.cmp(&b.offset));
                chunks.dedup_by(|a, b| a.offset == b.offset);
                Layout::Chunked {
                    chunk_shape: dims,
                    index: kind,
                    chunks,
                }
            }
        };
        let layout = if let Some(m) = self.msgs(addr, oh::MSG_EXTERNAL_FILES).into_iter().next() {
            error = Some("data stored in external raw files is not supported".into());
            Layout::External {
                files: self.external_files(addr, &m).unwrap_or_default(),
            }
        } else {
            layout
        };
        Ok(Dataset {
            path,
            address: addr,
            datatype: dt,
            dataspace: space,
            layout,
            filters,
            fill_value: fill,
            attributes,
            error,
        })
    }

    pub(super) fn external_files(
        &self,
        addr: u64,
        m: &RawMessage,
    ) -> Result<Vec<ExternalFile>, Error> {
        let ctx = self.ctx;
        let ef = self.parse_msg(addr, m, "external data files message", |i| {
            external_files::external_files(i, &ctx)
        })?;
        let data = ef
            .heap
            .and_then(|h| self.local_heaps.get(&h))
            .and_then(|h| h.data.clone());
        Ok(ef
            .slots
            .into_iter()
            .map(|s| ExternalFile {
                name: data
                    .as_ref()
                    .and_then(|d| local_heap::string_at(d, s.name_offset))
                    .unwrap_or_default(),
                offset: s.offset,
                size: s.size,
            })
            .collect())
    }
}

pub(super) fn join(parent: &str, name: &str) -> String {
    if parent.ends_with('/') {
        format!("{parent}{name}")
    } else {
        format!("{parent}/{name}")
    }
}

pub(super) fn fill_soft_targets(g: &mut Group, resolved: &[(String, String, Option<u64>)]) {
    for l in g.other_links.iter_mut() {
        if let OtherLink::Soft {
            name,
            target_address,
            ..
        } = l
            && let Some((_, _, a)) = resolved.iter().find(|(p, n, _)| *p == g.path && n == name)
        {
            *target_address = *a;
        }
    }
    for c in g.groups.iter_mut() {
        fill_soft_targets(c, resolved);
    }
}
