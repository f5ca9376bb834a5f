//! Version 2 B-trees (spec III.A.3): header (`BTHD`), internal (`BTIN`) and
//! leaf (`BTLF`) nodes, and their records (III.A.2 record types): a node
//! returns its records raw, since their type is known to the tree's owner,
//! and [`parse_record`] decodes one as a [`Record`] (1 huge objects, 5 link
//! names, 8 attribute names, 10/11 chunks), borrowing from the node.
//!
//! Sizes: [`header_size`] is known from the file's sizes alone, before the
//! header's bytes exist (to size a read); a node's size is in its header.
//! Parsed structures return the bytes they occupy (`Header::size`,
//! `Node::size`), which the walk records instead of recomputing them.

use bytes::Bytes;

use crate::parse::{
    Ctx, PResult, StructError, bad, bytes_needed, consumed, run, short, signature, take, u8_, u16_,
    u32_, uint, verify_checksum,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub tree_type: u8,
    pub node_size: u32,
    pub record_size: u16,
    pub depth: u16,
    pub root: Option<u64>,
    pub root_records: u16,
    pub total_records: u64,
    /// Bytes this structure occupies in the file, as parsed.
    pub size: u64,
}

/// Bytes of a v2 B-tree header (fixed for a file's sizes).
pub fn header_size(ctx: &Ctx) -> u64 {
    22 + ctx.size_of_offsets as u64 + ctx.size_of_lengths as u64
}

pub fn parse_header(bytes: &[u8], address: u64, ctx: &Ctx) -> Result<Header, StructError> {
    run("v2 B-tree header", address, bytes, |i| {
        let (r, ()) = signature(i, b"BTHD")?;
        let (r, version) = u8_(r)?;
        if version != 0 {
            return bad(i, format!("unsupported v2 B-tree version {version}"));
        }
        let (r, tree_type) = u8_(r)?;
        let (r, node_size) = u32_(r)?;
        let (r, record_size) = u16_(r)?;
        let (r, depth) = u16_(r)?;
        let (r, _split) = u8_(r)?;
        let (r, _merge) = u8_(r)?;
        let (r, root) = ctx.addr(r)?;
        let (r, root_records) = u16_(r)?;
        let (r, total_records) = ctx.length(r)?;
        let covered = i.len() - r.len();
        let (r, ()) = verify_checksum(i, covered)?;
        if record_size == 0 || node_size < 16 || (node_size as u64) < record_size as u64 + 10 {
            return bad(
                i,
                format!("node size {node_size} / record size {record_size} inconsistent"),
            );
        }
        if depth > 32 {
            return bad(i, format!("depth {depth} is absurd"));
        }
        Ok((
            r,
            Header {
                tree_type,
                node_size,
                record_size,
                depth,
                root,
                root_records,
                total_records,
                size: consumed(i, r),
            },
        ))
    })
}

/// Per-depth sizes of the "number of records" fields (H5B2 node info).
#[derive(Debug, Clone)]
pub struct Geometry {
    /// Bytes of the "records in child" field.
    max_nrec_size: u8,
    /// Bytes of the "total records below child" field, per node depth.
    cum_size: Vec<u8>,
}

impl Geometry {
    pub fn new(h: &Header, ctx: &Ctx) -> Geometry {
        let so = ctx.size_of_offsets as u64;
        let node = h.node_size as u64;
        let rec = h.record_size as u64;
        let leaf_max = (node.saturating_sub(10)) / rec;
        let max_nrec_size = bytes_needed(leaf_max).max(1);
        let mut cum_max = vec![leaf_max];
        let mut cum_size = vec![0u8];
        for d in 1..=h.depth as usize {
            let ptr = so + max_nrec_size as u64 + if d > 1 { cum_size[d - 1] as u64 } else { 0 };
            let max = node.saturating_sub(10 + ptr) / (rec + ptr);
            let cum = (max + 1).saturating_mul(cum_max[d - 1]).saturating_add(max);
            cum_max.push(cum);
            cum_size.push(bytes_needed(cum).max(1));
        }
        Geometry {
            max_nrec_size,
            cum_size,
        }
    }
}

/// A child pointer of an internal node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildRef {
    pub address: u64,
    pub records: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub records: Vec<Bytes>,
    pub children: Vec<ChildRef>,
    /// Bytes the node occupies: the header's node size (a node is
    /// allocated whole, whatever it holds).
    pub size: u64,
}

/// Parse the node at `address`, holding `nrec` records, at `depth` (0 = leaf).
pub fn parse_node(
    bytes: &Bytes,
    address: u64,
    ctx: &Ctx,
    h: &Header,
    geo: &Geometry,
    depth: u16,
    nrec: u64,
) -> Result<Node, StructError> {
    let structure = if depth == 0 {
        "v2 B-tree leaf"
    } else {
        "v2 B-tree internal node"
    };
    run(structure, address, bytes, |i| {
        node(i, bytes, ctx, h, geo, depth, nrec)
    })
}

fn node<'a>(
    i: &'a [u8],
    bytes: &Bytes,
    ctx: &Ctx,
    h: &Header,
    geo: &Geometry,
    depth: u16,
    nrec: u64,
) -> PResult<'a, Node> {
    let sig = if depth == 0 { b"BTLF" } else { b"BTIN" };
    let (r, ()) = signature(i, sig)?;
    let (r, _version) = u8_(r)?;
    let (r, tree_type) = u8_(r)?;
    if tree_type != h.tree_type {
        return bad(
            i,
            format!("node of type {tree_type} in a type {} tree", h.tree_type),
        );
    }
    if (i.len() as u64) < h.node_size as u64 {
        return short(i, h.node_size as u64);
    }
    let rec = h.record_size as u64;
    let start = 6u64;
    let ptr_size = if depth == 0 {
        0
    } else {
        ctx.size_of_offsets as u64
            + geo.max_nrec_size as u64
            + if depth > 1 {
                geo.cum_size.get(depth as usize - 1).copied().unwrap_or(8) as u64
            } else {
                0
            }
    };
    let nchildren = if depth == 0 { 0 } else { nrec + 1 };
    let used = start + nrec.saturating_mul(rec) + nchildren.saturating_mul(ptr_size) + 4;
    if used > h.node_size as u64 {
        return bad(
            i,
            format!("{nrec} records do not fit a {}-byte node", h.node_size),
        );
    }
    let used = used as usize;
    let (_, ()) = verify_checksum(&i[..used], used - 4)?;
    let mut records = Vec::with_capacity(nrec as usize);
    let mut pos = start as usize;
    for _ in 0..nrec {
        records.push(bytes.slice(pos..pos + rec as usize));
        pos += rec as usize;
    }
    let mut children = Vec::with_capacity(nchildren as usize);
    let mut p = &i[pos..used - 4];
    let _ = r;
    for _ in 0..nchildren {
        let (rr, address) = ctx.addr_req(p, "v2 B-tree child")?;
        let (rr, records) = uint(rr, geo.max_nrec_size)?;
        let rr = if depth > 1 {
            uint(
                rr,
                geo.cum_size.get(depth as usize - 1).copied().unwrap_or(8),
            )?
            .0
        } else {
            rr
        };
        children.push(ChildRef { address, records });
        p = rr;
    }
    Ok((
        &i[used..],
        Node {
            records,
            children,
            size: h.node_size as u64,
        },
    ))
}

// ---------------------------------------------------------------------------
// Records (spec III.A.2, "Version 2 B-tree record types"). A node hands its
// records over raw (their meaning depends on who owns the tree); they are
// decoded here, borrowing from the node's bytes, so the walk never reads a
// record's bytes itself.
// ---------------------------------------------------------------------------

/// How to decode a tree's records: the record types the product reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    /// Type 1: huge objects of a fractal heap, stored unfiltered and reached
    /// through the heap's huge-object tree.
    HugeObject,
    /// Type 5: the link name index of a group's dense link storage.
    LinkName,
    /// Type 8: the attribute name index of an object's dense attributes.
    AttributeName,
    /// Types 10 (unfiltered) and 11 (filtered) chunk records of a dataset
    /// of `rank` dimensions; `size_bytes` is the width of a type 11
    /// record's chunk size field, 0 for type 10 (no size, no filter mask).
    Chunk { rank: usize, size_bytes: u8 },
}

/// A chunk index tree whose record size does not fit the dataset's rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("v2 B-tree chunk records of {record_size} bytes do not match rank {rank}")]
pub struct ChunkRecordMismatch {
    pub record_size: u16,
    pub rank: usize,
}

impl RecordType {
    /// The chunk record type of the chunk index tree `h` of a dataset of
    /// `rank` dimensions: type 11 (filtered) records carry a chunk size
    /// whose width is what the record size leaves (1 to 8 bytes) and a
    /// filter mask; any other tree type is read as type 10.
    pub fn chunks(h: &Header, ctx: &Ctx, rank: usize) -> Result<RecordType, ChunkRecordMismatch> {
        let so = ctx.size_of_offsets as usize;
        let rec = h.record_size as usize;
        let fixed = rank.checked_mul(8).and_then(|o| o.checked_add(so));
        let mismatch = ChunkRecordMismatch {
            record_size: h.record_size,
            rank,
        };
        let Some(fixed) = fixed else {
            return Err(mismatch);
        };
        if h.tree_type == 11 {
            match rec.checked_sub(fixed.saturating_add(4)) {
                Some(n @ 1..=8) => Ok(RecordType::Chunk {
                    rank,
                    size_bytes: n as u8,
                }),
                _ => Err(mismatch),
            }
        } else if rec == fixed {
            Ok(RecordType::Chunk {
                rank,
                size_bytes: 0,
            })
        } else {
            Err(mismatch)
        }
    }
}

/// A decoded record, borrowing from the node's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record<'a> {
    /// Type 1.
    HugeObject(HugeObject),
    /// Types 5 and 8.
    Name(NameRecord<'a>),
    /// Types 10 and 11.
    Chunk(ChunkRecord<'a>),
}

/// A record of a fractal heap's huge-object v2 B-tree (type 1, objects
/// stored unfiltered): where the object is, its length and its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HugeObject {
    pub address: u64,
    pub length: u64,
    pub id: u64,
}

/// A record of a name index, decoded as far as the walk uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRecord<'a> {
    /// Type 5, a link name index: name hash (4) + the link message's heap
    /// id (the rest).
    Link { heap_id: &'a [u8] },
    /// Type 8, an attribute name index: the attribute message's heap id
    /// (8) + its message flags (1) (+ creation order and name hash, unused,
    /// so not required: a record is long enough once it has its flags).
    Attribute { heap_id: &'a [u8], flags: u8 },
}

/// A chunk record (types 10 and 11): the chunk's address, for type 11 its
/// stored size and filter mask, and its scaled offsets (offset in units of
/// the chunk's dimensions; the walk multiplies them out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRecord<'a> {
    pub address: u64,
    /// The stored (filtered) size; `None` for type 10, whose chunks are
    /// stored at full size.
    pub size: Option<u64>,
    /// Filters skipped for this chunk (0 for type 10).
    pub filter_mask: u32,
    pub scaled_offsets: ScaledOffsets<'a>,
}

/// The scaled offsets of a chunk record: `rank` little-endian u64 values,
/// read in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaledOffsets<'a>(&'a [u8]);

impl<'a> ScaledOffsets<'a> {
    /// Number of offsets (the dataset's rank).
    pub fn len(&self) -> usize {
        self.0.len() / 8
    }
    pub fn is_empty(&self) -> bool {
        self.0.len() < 8
    }
    pub fn iter(&self) -> impl Iterator<Item = u64> + 'a {
        self.0
            .chunks_exact(8)
            .map(|c| c.iter().rev().fold(0u64, |v, b| (v << 8) | *b as u64))
    }
}

/// Decode one record of a tree of type `ty`; `address` (the tree's) tags
/// errors. A record shorter than its type needs is `Short`; an undefined
/// address where one is required is `Bad`.
pub fn parse_record<'a>(
    record: &'a [u8],
    address: u64,
    ty: RecordType,
    ctx: &Ctx,
) -> Result<Record<'a>, StructError> {
    run("v2 B-tree record", address, record, |i| match ty {
        RecordType::HugeObject => {
            huge_object_record(i, ctx).map(|(r, h)| (r, Record::HugeObject(h)))
        }
        RecordType::LinkName => link_name(i).map(|(r, n)| (r, Record::Name(n))),
        RecordType::AttributeName => attribute_name(i).map(|(r, n)| (r, Record::Name(n))),
        RecordType::Chunk { rank, size_bytes } => {
            chunk_record(i, ctx, rank, size_bytes).map(|(r, c)| (r, Record::Chunk(c)))
        }
    })
}

fn huge_object_record<'a>(i: &'a [u8], ctx: &Ctx) -> PResult<'a, HugeObject> {
    let (i, address) = ctx.addr_req(i, "huge object")?;
    let (i, length) = ctx.length(i)?;
    let (i, id) = ctx.length(i)?;
    Ok((
        i,
        HugeObject {
            address,
            length,
            id,
        },
    ))
}

fn link_name(i: &[u8]) -> PResult<'_, NameRecord<'_>> {
    let (heap_id, _hash) = u32_(i)?;
    let (r, heap_id) = take(heap_id, heap_id.len())?;
    Ok((r, NameRecord::Link { heap_id }))
}

fn attribute_name(i: &[u8]) -> PResult<'_, NameRecord<'_>> {
    let (r, heap_id) = take(i, 8)?;
    let (r, flags) = u8_(r)?;
    Ok((r, NameRecord::Attribute { heap_id, flags }))
}

fn chunk_record<'a>(
    i: &'a [u8],
    ctx: &Ctx,
    rank: usize,
    size_bytes: u8,
) -> PResult<'a, ChunkRecord<'a>> {
    let (i, address) = ctx.addr_req(i, "chunk")?;
    let (i, size, filter_mask) = if size_bytes > 0 {
        let (i, s) = uint(i, size_bytes)?;
        let (i, m) = u32_(i)?;
        (i, Some(s), m)
    } else {
        (i, None, 0)
    };
    let Some(n) = rank.checked_mul(8) else {
        return bad(i, format!("rank {rank} is absurd"));
    };
    let (i, offsets) = take(i, n)?;
    Ok((
        i,
        ChunkRecord {
            address,
            size,
            filter_mask,
            scaled_offsets: ScaledOffsets(offsets),
        },
    ))
}

/// A type 5 (link name) record, or `None` if it is too short.
pub fn link_name_record(r: &[u8]) -> Option<NameRecord<'_>> {
    link_name(r).ok().map(|(_, n)| n)
}

/// A type 8 (attribute name) record, or `None` if it is too short.
pub fn attribute_name_record(r: &[u8]) -> Option<NameRecord<'_>> {
    attribute_name(r).ok().map(|(_, n)| n)
}

/// Decode a huge-object record; `None` when it is too short or has no address.
pub fn huge_object(record: &[u8], ctx: &Ctx) -> Option<HugeObject> {
    huge_object_record(record, ctx).ok().map(|(_, h)| h)
}

/// The first record for huge object `id` (the walk fetches and reads the
/// same one, whatever a hostile tree repeats).
pub fn find_huge_object(records: &[Bytes], ctx: &Ctx, id: u64) -> Option<HugeObject> {
    records
        .iter()
        .filter_map(|r| huge_object(r, ctx))
        .find(|h| h.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_records_decode_or_are_too_short() {
        let r = [1, 2, 3, 4, 9, 9, 9, 9, 9, 9, 9];
        assert_eq!(
            link_name_record(&r),
            Some(NameRecord::Link {
                heap_id: &[9; 7][..]
            })
        );
        assert_eq!(link_name_record(&r[..3]), None);
        let a = [5, 5, 5, 5, 5, 5, 5, 5, 1, 0, 0, 0, 0];
        assert_eq!(
            attribute_name_record(&a),
            Some(NameRecord::Attribute {
                heap_id: &[5; 8][..],
                flags: 1
            })
        );
        assert_eq!(attribute_name_record(&a[..8]), None);
    }

    fn rec(address: u64, length: u64, id: u64) -> Bytes {
        let mut v = Vec::new();
        for x in [address, length, id] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        Bytes::from(v)
    }

    #[test]
    fn huge_objects_are_found_by_id_first_record_wins() {
        let ctx = Ctx::new(8, 8, 0);
        let records = vec![
            Bytes::from_static(b"short"),
            rec(0x100, 10, 7),
            rec(0x200, 20, 7),
            rec(0x300, 30, 9),
        ];
        let h = find_huge_object(&records, &ctx, 7).unwrap();
        assert_eq!((h.address, h.length), (0x100, 10));
        assert_eq!(find_huge_object(&records, &ctx, 9).unwrap().address, 0x300);
        assert!(find_huge_object(&records, &ctx, 8).is_none());
        assert!(huge_object(b"short", &ctx).is_none());
    }

    fn header(tree_type: u8, record_size: u16) -> Header {
        Header {
            tree_type,
            node_size: 512,
            record_size,
            depth: 0,
            root: None,
            root_records: 0,
            total_records: 0,
            size: 38,
        }
    }

    /// Spec III.A.2 layouts, hand-built with 4-byte offsets and lengths.
    #[test]
    fn records_decode_per_spec_layout() {
        let ctx = Ctx::new(4, 4, 0x10);
        // Type 1: address (offsets), length (lengths), id (lengths).
        let r = [0x00, 0x01, 0, 0, 0x20, 0, 0, 0, 3, 0, 0, 0];
        assert_eq!(
            parse_record(&r, 0, RecordType::HugeObject, &ctx),
            Ok(Record::HugeObject(HugeObject {
                address: 0x110,
                length: 0x20,
                id: 3
            }))
        );
        // Type 5: hash (4), heap id (7).
        let r = [0xaa, 0xbb, 0xcc, 0xdd, 1, 2, 3, 4, 5, 6, 7];
        assert_eq!(
            parse_record(&r, 0, RecordType::LinkName, &ctx),
            Ok(Record::Name(NameRecord::Link {
                heap_id: &[1, 2, 3, 4, 5, 6, 7][..]
            }))
        );
        // Type 8: heap id (8), flags (1), creation order (4), hash (4).
        let r = [
            1, 2, 3, 4, 5, 6, 7, 8, 2, 9, 0, 0, 0, 0xaa, 0xbb, 0xcc, 0xdd,
        ];
        assert_eq!(
            parse_record(&r, 0, RecordType::AttributeName, &ctx),
            Ok(Record::Name(NameRecord::Attribute {
                heap_id: &[1, 2, 3, 4, 5, 6, 7, 8][..],
                flags: 2
            }))
        );
        // Type 10, rank 2: address, two 8-byte scaled offsets.
        let mut r = vec![0x00, 0x02, 0, 0];
        r.extend_from_slice(&3u64.to_le_bytes());
        r.extend_from_slice(&5u64.to_le_bytes());
        let ty = RecordType::chunks(&header(10, 20), &ctx, 2).unwrap();
        assert_eq!(
            ty,
            RecordType::Chunk {
                rank: 2,
                size_bytes: 0
            }
        );
        let Ok(Record::Chunk(c)) = parse_record(&r, 0, ty, &ctx) else {
            panic!("type 10 record")
        };
        assert_eq!((c.address, c.size, c.filter_mask), (0x210, None, 0));
        assert_eq!(c.scaled_offsets.len(), 2);
        assert_eq!(c.scaled_offsets.iter().collect::<Vec<_>>(), vec![3, 5]);
        // Type 11, rank 1: address, 3-byte chunk size, filter mask, offset.
        let mut r = vec![0x00, 0x03, 0, 0, 0x34, 0x12, 0x01, 2, 0, 0, 0];
        r.extend_from_slice(&u64::MAX.to_le_bytes());
        let ty = RecordType::chunks(&header(11, 19), &ctx, 1).unwrap();
        let Ok(Record::Chunk(c)) = parse_record(&r, 0, ty, &ctx) else {
            panic!("type 11 record")
        };
        assert_eq!(
            (c.address, c.size, c.filter_mask),
            (0x310, Some(0x011234), 2)
        );
        assert_eq!(c.scaled_offsets.iter().collect::<Vec<_>>(), vec![u64::MAX]);
    }

    #[test]
    fn chunk_record_sizes_must_fit_the_rank() {
        let ctx = Ctx::new(8, 8, 0);
        // Type 10 rank 3: 8 + 24 bytes exactly.
        assert!(RecordType::chunks(&header(10, 32), &ctx, 3).is_ok());
        let e = RecordType::chunks(&header(10, 33), &ctx, 3).unwrap_err();
        assert_eq!(
            e.to_string(),
            "v2 B-tree chunk records of 33 bytes do not match rank 3"
        );
        // Type 11 rank 1: 8 + (1..=8) + 4 + 8 bytes.
        assert!(RecordType::chunks(&header(11, 20), &ctx, 1).is_err());
        assert_eq!(
            RecordType::chunks(&header(11, 21), &ctx, 1),
            Ok(RecordType::Chunk {
                rank: 1,
                size_bytes: 1
            })
        );
        assert!(RecordType::chunks(&header(11, 28), &ctx, 1).is_ok());
        assert!(RecordType::chunks(&header(11, 29), &ctx, 1).is_err());
        assert!(RecordType::chunks(&header(11, 29), &ctx, usize::MAX).is_err());
    }

    #[test]
    fn short_and_undefined_records_are_typed_errors() {
        let ctx = Ctx::new(8, 8, 0);
        let ty = RecordType::Chunk {
            rank: 2,
            size_bytes: 0,
        };
        let short_rec = [0u8; 8 + 15];
        assert_eq!(
            parse_record(&short_rec, 0x40, ty, &ctx),
            Err(StructError::Short { need: None })
        );
        let undefined = [0xffu8; 8 + 16];
        let Err(StructError::Bad(e)) = parse_record(&undefined, 0x40, ty, &ctx) else {
            panic!("undefined chunk address accepted")
        };
        assert_eq!((e.structure, e.address), ("v2 B-tree record", 0x40));
        assert!(e.reason.contains("undefined address"), "{e}");
        assert!(matches!(
            parse_record(&[0; 8], 0, RecordType::AttributeName, &ctx),
            Err(StructError::Short { .. })
        ));
        assert!(matches!(
            parse_record(&[0; 3], 0, RecordType::LinkName, &ctx),
            Err(StructError::Short { .. })
        ));
        assert!(matches!(
            parse_record(&[0; 23], 0, RecordType::HugeObject, &ctx),
            Err(StructError::Short { .. })
        ));
    }
}
