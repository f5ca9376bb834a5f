//! Version 1 B-trees (spec III.A.1): type 0 (group nodes, keyed by local
//! heap name offsets) and type 1 (raw data chunks), plus symbol table nodes
//! (`SNOD`, III.A.2) that hang off type 0 leaves.
//!
//! Sizes: a node's size depends on how many children it holds, so the walk
//! reads a probe first; every parsed node returns the bytes it occupies
//! (`Node::size`, `SymbolNode::size`), which the walk records.

use crate::parse::{
    Ctx, PResult, StructError, bad, run, short, signature, take, u8_, u16_, u32_, u64_,
};

/// One node; children are addresses of lower nodes (level > 0) or of
/// symbol table nodes / chunks (level 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node<K> {
    pub level: u8,
    /// `entries` children with their left keys (type 1 keys describe the
    /// chunk at the same position).
    pub children: Vec<(K, u64)>,
    /// Bytes the node occupies up to its last key, as parsed (the node is
    /// allocated for more children).
    pub size: u64,
}

/// A chunk's key in a type 1 node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkKey {
    pub size: u32,
    pub filter_mask: u32,
    /// Element offsets, one per dataset dimension (element-size dim dropped).
    pub offset: Vec<u64>,
}

/// Parse a group (type 0) node.
pub fn parse_group_node(bytes: &[u8], address: u64, ctx: &Ctx) -> Result<Node<u64>, StructError> {
    run("group B-tree node", address, bytes, |i| {
        let key_size = ctx.size_of_lengths as usize;
        node(i, ctx, 0, key_size, |k| ctx.length(k))
    })
}

/// Parse a chunk (type 1) node of a dataset of `rank` dimensions.
pub fn parse_chunk_node(
    bytes: &[u8],
    address: u64,
    ctx: &Ctx,
    rank: usize,
) -> Result<Node<ChunkKey>, StructError> {
    run("chunk B-tree node", address, bytes, |i| {
        let key_size = 8 + 8 * (rank + 1);
        node(i, ctx, 1, key_size, |k| {
            let (k, size) = u32_(k)?;
            let (mut k, filter_mask) = u32_(k)?;
            let mut offset = Vec::with_capacity(rank);
            for _ in 0..rank {
                let (kk, o) = u64_(k)?;
                offset.push(o);
                k = kk;
            }
            let (k, _) = u64_(k)?;
            Ok((
                k,
                ChunkKey {
                    size,
                    filter_mask,
                    offset,
                },
            ))
        })
    })
}

fn node<'a, K>(
    i: &'a [u8],
    ctx: &Ctx,
    want_type: u8,
    key_size: usize,
    key: impl Fn(&'a [u8]) -> PResult<'a, K>,
) -> PResult<'a, Node<K>> {
    let (r, ()) = signature(i, b"TREE")?;
    let (r, node_type) = u8_(r)?;
    if node_type != want_type {
        return bad(i, format!("node type {node_type}, expected {want_type}"));
    }
    let (r, level) = u8_(r)?;
    let (r, entries) = u16_(r)?;
    let (r, _left) = ctx.addr(r)?;
    let (mut r, _right) = ctx.addr(r)?;
    let header = 8 + 2 * ctx.size_of_offsets as u64;
    let need =
        header + entries as u64 * (key_size as u64 + ctx.size_of_offsets as u64) + key_size as u64;
    if (i.len() as u64) < need {
        return short(i, need);
    }
    let mut children = Vec::with_capacity(entries as usize);
    for _ in 0..entries {
        let (rr, k) = key(r)?;
        let (rr, child) = ctx.addr_req(rr, "B-tree child")?;
        children.push((k, child));
        r = rr;
    }
    let (r, _) = take(r, key_size)?;
    Ok((
        r,
        Node {
            level,
            children,
            size: need,
        },
    ))
}

/// One entry of a symbol table node (III.A.2 / III.C).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolEntry {
    pub name_offset: u64,
    pub object_header: Option<u64>,
    /// For cache type 2 (soft link): offset of the link value in the heap.
    pub soft_link_offset: Option<u32>,
}

/// A symbol table node: its entries in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolNode {
    pub entries: Vec<SymbolEntry>,
    /// Bytes of the header and the entries in use, as parsed (the node is
    /// allocated for more entries).
    pub size: u64,
}

pub fn parse_symbol_node(bytes: &[u8], address: u64, ctx: &Ctx) -> Result<SymbolNode, StructError> {
    run("symbol table node", address, bytes, |i| {
        let (r, ()) = signature(i, b"SNOD")?;
        let (r, version) = u8_(r)?;
        if version != 1 {
            return bad(i, format!("unsupported symbol node version {version}"));
        }
        let (r, _) = u8_(r)?;
        let (mut r, n) = u16_(r)?;
        let entry = 2 * ctx.size_of_offsets as u64 + 24;
        let need = 8 + n as u64 * entry;
        if (i.len() as u64) < need {
            return short(i, need);
        }
        let mut out = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let (rr, name_offset) = ctx.length(r)?;
            let (rr, object_header) = ctx.addr(rr)?;
            let (rr, cache_type) = u32_(rr)?;
            let (rr, _) = u32_(rr)?;
            let (rr, scratch) = take(rr, 16)?;
            let soft_link_offset = if cache_type == 2 {
                Some(u32_(scratch)?.1)
            } else {
                None
            };
            out.push(SymbolEntry {
                name_offset,
                object_header,
                soft_link_offset,
            });
            r = rr;
        }
        Ok((
            r,
            SymbolNode {
                entries: out,
                size: need,
            },
        ))
    })
}
