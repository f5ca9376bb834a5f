//! Every structure parser returns the bytes it consumed (`size`), and the
//! walk records that instead of recomputing it. Each structure here is
//! hand-built from the layout tables of the HDF5 File Format Specification
//! (field by field), followed by unrelated trailing bytes, and its returned
//! size is checked against the spec's size written out as a sum of fields.

use bytes::Bytes;
use hdf5_lite::checksum::lookup3;
use hdf5_lite::parse::Ctx;
use hdf5_lite::{
    btree_v1, btree_v2, extensible_array as ea, fixed_array as fa, fractal_heap as fh, global_heap,
    local_heap, object_header as oh, superblock,
};

const UNDEF: u64 = u64::MAX;
/// Bytes after every structure, so a size cannot be the input's length.
const TRAILER: [u8; 40] = [0x5a; 40];

/// Little-endian field of `n` bytes.
fn f(v: &mut Vec<u8>, x: u64, n: usize) {
    v.extend_from_slice(&x.to_le_bytes()[..n]);
}

/// Append the lookup3 checksum of everything so far.
fn seal(v: &mut Vec<u8>) {
    let c = lookup3(v);
    v.extend_from_slice(&c.to_le_bytes());
}

fn trailed(mut v: Vec<u8>) -> Bytes {
    v.extend_from_slice(&TRAILER);
    Bytes::from(v)
}

#[test]
fn superblock_sizes_by_version() {
    for version in [0u8, 1] {
        let mut v = b"\x89HDF\r\n\x1a\n".to_vec();
        // version, free-space / root group / reserved / shared header
        // versions, sizes of offsets and lengths, reserved.
        v.extend_from_slice(&[version, 0, 0, 0, 0, 8, 8, 0]);
        f(&mut v, 4, 2); // group leaf K
        f(&mut v, 16, 2); // group internal K
        f(&mut v, 0, 4); // file consistency flags
        if version == 1 {
            f(&mut v, 32, 2); // indexed storage internal K
            f(&mut v, 0, 2); // reserved
        }
        for a in [0, UNDEF, 4096, UNDEF] {
            f(&mut v, a, 8); // base, free space, end of file, driver
        }
        // Root group symbol table entry: name offset, header, cache type,
        // reserved, 16-byte scratch pad.
        f(&mut v, 0, 8);
        f(&mut v, 0x60, 8);
        f(&mut v, 0, 4);
        f(&mut v, 0, 4);
        v.extend_from_slice(&[0; 16]);
        let sb = superblock::parse(&trailed(v), 0).unwrap();
        // 8 + 16 (+ 4 for v1) + 4 addresses + (2 offsets + 24).
        let spec = 8 + 16 + if version == 1 { 4 } else { 0 } + 4 * 8 + (2 * 8 + 24);
        assert_eq!(sb.size, spec, "superblock v{version}");
    }
    let mut v = b"\x89HDF\r\n\x1a\n".to_vec();
    v.extend_from_slice(&[2, 8, 8, 0]); // version, sizes, flags
    for a in [0, UNDEF, 4096, 0x30] {
        f(&mut v, a, 8); // base, extension, end of file, root header
    }
    seal(&mut v);
    let sb = superblock::parse(&trailed(v), 0).unwrap();
    assert_eq!(sb.size, 8 + 4 + 4 * 8 + 4, "superblock v2");
}

#[test]
fn object_header_block_sizes() {
    let ctx = Ctx::new(8, 8, 0);
    // v1: version, reserved, message count, reference count, header size,
    // padding to 16; one NIL message of 8 bytes.
    let mut v = vec![1, 0];
    f(&mut v, 1, 2);
    f(&mut v, 1, 4);
    f(&mut v, 16, 4);
    f(&mut v, 0, 4);
    v.extend_from_slice(&[0; 16]);
    let b = oh::parse_header(&trailed(v), 0, &ctx).unwrap();
    assert_eq!(b.size, 16 + 16);
    // v2: OHDR, version, flags (1-byte chunk size), chunk size, one NIL
    // message (type, size, flags + 3 bytes), checksum.
    let mut v = b"OHDR".to_vec();
    v.extend_from_slice(&[2, 0, 7]);
    v.extend_from_slice(&[0, 3, 0, 0, 0, 0, 0]);
    seal(&mut v);
    let b = oh::parse_header(&trailed(v), 0, &ctx).unwrap();
    assert_eq!(b.size, 4 + 1 + 1 + 1 + 7 + 4);
    // A continuation block is the length its message gives.
    let mut v = b"OCHK".to_vec();
    v.extend_from_slice(&[0, 3, 0, 0, 0, 0, 0]);
    seal(&mut v);
    let cont = oh::Continuation {
        address: 0x100,
        length: v.len() as u64,
    };
    let b = oh::parse_continuation(&trailed(v), cont, 2, 0, &ctx).unwrap();
    assert_eq!(b.size, 4 + 7 + 4);
}

#[test]
fn local_and_global_heap_sizes() {
    let ctx = Ctx::new(4, 4, 0);
    // HEAP, version, 3 reserved, data segment size (L), free list offset
    // (L), data segment address (O).
    let mut v = b"HEAP".to_vec();
    v.extend_from_slice(&[0, 0, 0, 0]);
    f(&mut v, 88, 4);
    f(&mut v, UNDEF, 4);
    f(&mut v, 0x200, 4);
    let h = local_heap::parse(&trailed(v), 0, &ctx).unwrap();
    assert_eq!(h.size, 4 + 1 + 3 + 4 + 4 + 4);

    // GCOL, version, 3 reserved, collection size (L); header padded to 16.
    let ctx = Ctx::new(8, 8, 0);
    let mut v = b"GCOL".to_vec();
    v.extend_from_slice(&[1, 0, 0, 0]);
    f(&mut v, 4096, 8);
    // Object 1: index, reference count, reserved, size (L), 3 data bytes
    // padded to 8; then free space (index 0) to the end.
    f(&mut v, 1, 2);
    f(&mut v, 1, 2);
    f(&mut v, 0, 4);
    f(&mut v, 3, 8);
    v.extend_from_slice(&[b'a', b'b', b'c', 0, 0, 0, 0, 0]);
    v.resize(4096, 0);
    let c = global_heap::parse(&trailed(v), 0, &ctx).unwrap();
    assert_eq!(c.size, 4096);
    assert_eq!(c.objects[&1].as_ref(), b"abc");
}

/// A version 1 B-tree node: TREE, type, level, entries used, siblings,
/// then keys and children interleaved, ending with a key.
fn v1_node(node_type: u8, keys: &[Vec<u8>], children: &[u64]) -> Vec<u8> {
    let mut v = b"TREE".to_vec();
    v.extend_from_slice(&[node_type, 0]);
    f(&mut v, children.len() as u64, 2);
    f(&mut v, UNDEF, 8);
    f(&mut v, UNDEF, 8);
    for (k, c) in keys.iter().zip(children) {
        v.extend_from_slice(k);
        f(&mut v, *c, 8);
    }
    v.extend_from_slice(&keys[children.len()]);
    v
}

#[test]
fn btree_v1_node_sizes() {
    let ctx = Ctx::new(8, 8, 0);
    // Group node: keys are heap offsets (L).
    let keys: Vec<Vec<u8>> = (0..3u64).map(|k| k.to_le_bytes().to_vec()).collect();
    let n =
        btree_v1::parse_group_node(&trailed(v1_node(0, &keys, &[0x100, 0x200])), 0, &ctx).unwrap();
    assert_eq!(n.children.len(), 2);
    assert_eq!(n.size, 8 + 2 * 8 + 2 * (8 + 8) + 8);

    // Chunk node, rank 2: keys are chunk size (4), filter mask (4) and
    // rank + 1 offsets of 8 bytes.
    let key = |o: u64| {
        let mut k = Vec::new();
        f(&mut k, 100, 4);
        f(&mut k, 0, 4);
        for x in [o, 0, 0] {
            f(&mut k, x, 8);
        }
        k
    };
    let n = btree_v1::parse_chunk_node(
        &trailed(v1_node(1, &[key(0), key(10)], &[0x300])),
        0,
        &ctx,
        2,
    )
    .unwrap();
    assert_eq!(n.size, 8 + 2 * 8 + (4 + 4 + 3 * 8 + 8) + (4 + 4 + 3 * 8));

    // Symbol table node: SNOD, version, reserved, symbols used, entries of
    // name offset (L), header address (O), cache type, reserved, scratch.
    let mut v = b"SNOD".to_vec();
    v.extend_from_slice(&[1, 0]);
    f(&mut v, 2, 2);
    for k in 0..2u64 {
        f(&mut v, 8 * k, 8);
        f(&mut v, 0x400 + k, 8);
        f(&mut v, 0, 4);
        f(&mut v, 0, 4);
        v.extend_from_slice(&[0; 16]);
    }
    let s = btree_v1::parse_symbol_node(&trailed(v), 0, &ctx).unwrap();
    assert_eq!(s.entries.len(), 2);
    assert_eq!(s.size, 8 + 2 * (8 + 8 + 4 + 4 + 16));
}

#[test]
fn btree_v2_header_and_node_sizes() {
    let ctx = Ctx::new(8, 8, 0);
    // BTHD, version, type, node size, record size, depth, split %,
    // merge %, root address (O), root records, total records (L), checksum.
    let mut v = b"BTHD".to_vec();
    v.extend_from_slice(&[0, 5]);
    f(&mut v, 64, 4);
    f(&mut v, 11, 2);
    f(&mut v, 0, 2);
    v.extend_from_slice(&[100, 40]);
    f(&mut v, 0x500, 8);
    f(&mut v, 2, 2);
    f(&mut v, 2, 8);
    seal(&mut v);
    let h = btree_v2::parse_header(&trailed(v), 0, &ctx).unwrap();
    let spec = 4 + 1 + 1 + 4 + 2 + 2 + 1 + 1 + 8 + 2 + 8 + 4;
    assert_eq!(h.size, spec);
    assert_eq!(btree_v2::header_size(&ctx), spec);

    // BTLF, version, type, two type 5 records (hash + 7-byte heap id),
    // checksum; the node is allocated at its full node size.
    let mut v = b"BTLF".to_vec();
    v.extend_from_slice(&[0, 5]);
    for k in 0..2u8 {
        v.extend_from_slice(&[k, 0, 0, 0, 0, k, 0, 0, 0, 0, 0]);
    }
    seal(&mut v);
    v.resize(64, 0);
    let geo = btree_v2::Geometry::new(&h, &ctx);
    let n = btree_v2::parse_node(&trailed(v), 0x500, &ctx, &h, &geo, 0, 2).unwrap();
    assert_eq!(n.records.len(), 2);
    assert_eq!(n.size, 64);
}

#[test]
fn fixed_array_sizes() {
    let ctx = Ctx::new(8, 8, 0);
    // FAHD, version, client, entry size, page bits, entries (L), data
    // block address (O), checksum.
    let mut v = b"FAHD".to_vec();
    v.extend_from_slice(&[0, 0, 8, 10]);
    f(&mut v, 3, 8);
    f(&mut v, 0x600, 8);
    seal(&mut v);
    let h = fa::parse_header(&trailed(v), 0, &ctx).unwrap();
    assert_eq!(h.size, 4 + 1 + 1 + 1 + 1 + 8 + 8 + 4);
    assert_eq!(fa::header_size(&ctx), h.size);
    // FADB, version, client, header address (O), 3 entries of 8, checksum.
    let mut v = b"FADB".to_vec();
    v.extend_from_slice(&[0, 0]);
    f(&mut v, 0, 8);
    for a in [0x700, 0x800, 0x900] {
        f(&mut v, a, 8);
    }
    seal(&mut v);
    let b = fa::parse_data_block(&trailed(v), 0x600, &ctx, &h).unwrap();
    assert_eq!(b.entries.len(), 3);
    assert_eq!(b.size, 4 + 1 + 1 + 8 + 3 * 8 + 4);
}

#[test]
fn extensible_array_sizes() {
    let ctx = Ctx::new(8, 8, 0);
    // EAHD, version, client, entry size, max elements bits, index block
    // elements, data block min elements, secondary block min data pointers,
    // max data block page bits, 6 lengths, index block address, checksum.
    let mut v = b"EAHD".to_vec();
    v.extend_from_slice(&[0, 0, 8, 32, 4, 16, 4, 10]);
    for _ in 0..6 {
        f(&mut v, 0, 8);
    }
    f(&mut v, 0xa00, 8);
    seal(&mut v);
    let h = ea::parse_header(&trailed(v), 0, &ctx).unwrap();
    assert_eq!(h.size, 4 + 1 + 1 + 6 + 6 * 8 + 8 + 4);
    assert_eq!(ea::header_size(&ctx), h.size);

    // EAIB, version, client, header address, 4 elements of 8 bytes,
    // 2 * (4 - 1) data block addresses, then one secondary block address
    // per super block not covered by the index block:
    // (1 + 32 - log2 16) - 2 * log2 4 = 25; checksum.
    let mut v = b"EAIB".to_vec();
    v.extend_from_slice(&[0, 0]);
    f(&mut v, 0, 8);
    v.extend_from_slice(&[0; 4 * 8]);
    for _ in 0..6 + 25 {
        f(&mut v, UNDEF, 8);
    }
    seal(&mut v);
    let ib = ea::parse_index_block(&trailed(v), 0xa00, &ctx, &h).unwrap();
    assert_eq!(ib.secondary_blocks.len(), 25);
    assert_eq!(ib.size, 4 + 1 + 1 + 8 + 4 * 8 + 6 * 8 + 25 * 8 + 4);

    // EASB of super block 4 (4 data blocks of 64 elements, not paged):
    // EASB, version, client, header address, block offset (32 bits -> 4
    // bytes), 4 data block addresses, checksum.
    let info = h.super_blocks()[4];
    assert_eq!((info.data_blocks, info.data_block_elements), (4, 64));
    let mut v = b"EASB".to_vec();
    v.extend_from_slice(&[0, 0]);
    f(&mut v, 0, 8);
    f(&mut v, 0, 4);
    for _ in 0..4 {
        f(&mut v, UNDEF, 8);
    }
    seal(&mut v);
    let sb = ea::parse_secondary_block(&trailed(v), 0xb00, &ctx, &h, &info).unwrap();
    assert_eq!(sb.size, 4 + 1 + 1 + 8 + 4 + 4 * 8 + 4);

    // EADB of 16 elements: EADB, version, client, header address, block
    // offset, 16 entries of 8 bytes, checksum.
    let mut v = b"EADB".to_vec();
    v.extend_from_slice(&[0, 0]);
    f(&mut v, 0, 8);
    f(&mut v, 0, 4);
    v.extend_from_slice(&[0; 16 * 8]);
    seal(&mut v);
    let db = ea::parse_data_block(&trailed(v), 0xc00, &ctx, &h, 16, None).unwrap();
    assert_eq!(db.entries.len(), 16);
    assert_eq!(db.size, 4 + 1 + 1 + 8 + 4 + 16 * 8 + 4);
}

#[test]
fn fractal_heap_sizes() {
    let ctx = Ctx::new(8, 8, 0);
    // FRHP, version, heap id length, filter length, flags, max managed
    // size, then (L/O as the spec lists them) next huge id, huge B-tree,
    // free space, free space manager, managed space, allocated space,
    // iterator offset, managed objects, huge size, huge objects, tiny size,
    // tiny objects; table width, start block size, max direct block size,
    // max heap size bits, starting rows, root address, current rows,
    // checksum.
    let mut v = b"FRHP".to_vec();
    v.push(0);
    f(&mut v, 7, 2);
    f(&mut v, 0, 2);
    v.push(0);
    f(&mut v, 4096, 4);
    let fields: [(u64, usize); 12] = [
        (0, 8),
        (UNDEF, 8),
        (0, 8),
        (UNDEF, 8),
        (0, 8),
        (0, 8),
        (0, 8),
        (0, 8),
        (0, 8),
        (0, 8),
        (0, 8),
        (0, 8),
    ];
    for (x, n) in fields {
        f(&mut v, x, n);
    }
    f(&mut v, 4, 2);
    f(&mut v, 512, 8);
    f(&mut v, 65536, 8);
    f(&mut v, 32, 2);
    f(&mut v, 0, 2);
    f(&mut v, 0xd00, 8);
    f(&mut v, 1, 2);
    seal(&mut v);
    let h = fh::parse_header(&trailed(v), 0, &ctx).unwrap();
    // 4+1+2+2+1+4 fixed, 10 lengths + 2 offsets, then 2+8+8+2+2+8+2, checksum.
    let spec = (4 + 1 + 2 + 2 + 1 + 4) + (10 * 8 + 2 * 8) + (2 + 8 + 8 + 2 + 2 + 8 + 2) + 4;
    assert_eq!(h.size, spec);

    // FHIB of 1 row (4 direct blocks): FHIB, version, heap header address,
    // block offset (32 bits -> 4 bytes), 4 child addresses, checksum.
    let mut v = b"FHIB".to_vec();
    v.push(0);
    f(&mut v, 0, 8);
    f(&mut v, 0, 4);
    for a in [0xe00, UNDEF, UNDEF, UNDEF] {
        f(&mut v, a, 8);
    }
    seal(&mut v);
    let ib = fh::parse_indirect(&trailed(v), 0xd00, &ctx, &h, 1).unwrap();
    assert_eq!(ib.direct, vec![(0, 0xe00)]);
    assert_eq!(ib.size, 4 + 1 + 8 + 4 + 4 * 8 + 4);
    assert_eq!(fh::indirect_size(&ctx, &h, 1), ib.size);

    // FHDB of the starting block size: FHDB, version, heap header address,
    // block offset, then objects to the block's end (no checksum: flags 0).
    let mut v = b"FHDB".to_vec();
    v.push(0);
    f(&mut v, 0, 8);
    f(&mut v, 0, 4);
    v.resize(512, 0);
    let db = fh::parse_direct(&trailed(v), 0xe00, &ctx, &h, 512).unwrap();
    assert_eq!(db.size, 512);
}
