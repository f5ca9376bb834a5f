//! Version 2 B-trees (spec III.A.3): header (`BTHD`), internal (`BTIN`) and
//! leaf (`BTLF`) nodes. Records are returned raw; callers decode them by
//! tree type (5 link names, 8 attribute names, 10/11 chunks, 1 huge objects).

use bytes::Bytes;

use crate::parse::{
    Ctx, PResult, StructError, bad, bytes_needed, run, short, signature, u8_, u16_, u32_, uint,
    verify_checksum,
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
    Ok((&i[used..], Node { records, children }))
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
    /// (8) + its message flags (1) (+ creation order and name hash, unused).
    Attribute { heap_id: &'a [u8], flags: u8 },
}

/// A type 5 (link name) record, or `None` if it is too short.
pub fn link_name_record(r: &[u8]) -> Option<NameRecord<'_>> {
    Some(NameRecord::Link {
        heap_id: r.get(4..)?,
    })
}

/// A type 8 (attribute name) record, or `None` if it is too short.
pub fn attribute_name_record(r: &[u8]) -> Option<NameRecord<'_>> {
    Some(NameRecord::Attribute {
        heap_id: r.get(..8)?,
        flags: *r.get(8)?,
    })
}

/// Decode a huge-object record; `None` when it is too short or has no address.
pub fn huge_object(record: &[u8], ctx: &Ctx) -> Option<HugeObject> {
    let rec: PResult<'_, HugeObject> = (|| {
        let (i, address) = ctx.addr_req(record, "huge object")?;
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
    })();
    rec.ok().map(|(_, h)| h)
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
}
