//! Replays the fuzz regressions on stable `cargo test`.
//!
//! * Every file under `fuzz/regressions/<target>/` is run through the same
//!   harness function the cargo-fuzz target runs (`fuzz/harness/hdf5.rs`,
//!   included below): no panic, and `open_file` must return (Ok or an error
//!   naming the file).
//! * Hostile files are built by patching real fixtures (a B-tree whose child
//!   is itself, a continuation pointing at its own header or block, a
//!   fractal heap indirect block referencing itself, a v2 B-tree of depth 60,
//!   absurd dataspaces, a global heap object larger than its collection), and
//!   `open` must fail with an error that names the problem; likewise hostile
//!   superblocks. They are committed under `fuzz/regressions/` so the
//!   fuzzers start from them too; `write_hostile_regressions` checks the
//!   committed files equal the generator's output (`FUZZ_WRITE_REGRESSIONS=1
//!   cargo test -p hdf5-lite --test fuzz_regressions write_hostile` rewrites
//!   them).
//! * Missing or empty regression directories fail (see
//!   `fuzz/harness/regressions.rs`, the loader shared with ingest's replay).

#[path = "../../fuzz/harness/hdf5.rs"]
mod harness;
#[path = "../../fuzz/harness/regressions.rs"]
mod regressions;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hdf5_lite::parse::Ctx;
use hdf5_lite::{MemorySource, RangeSource};

fn main_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture(name: &str) -> Vec<u8> {
    let p = main_dir().join("fixtures/files").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn replay_open_file() {
    let rt = harness::runtime();
    let n = regressions::replay("open_file", |d| {
        let r = harness::open_file(&rt, d);
        eprintln!("open_file: {}", r.err().unwrap_or_else(|| "ok".into()));
    });
    // The hand-made hostile files are always there.
    assert!(
        n >= 6,
        "expected the hostile files under fuzz/regressions/open_file, found {n}"
    );
}

#[test]
fn replay_superblock() {
    let n = regressions::replay("superblock", harness::superblock);
    // The hand-made hostile superblocks are always there.
    assert!(n >= hostile_superblocks().len(), "found {n}");
}

#[test]
fn replay_object_header() {
    regressions::replay("object_header", harness::object_header);
}

#[test]
fn replay_messages() {
    regressions::replay("messages", harness::messages);
}

#[test]
fn replay_btree_v1() {
    regressions::replay("btree_v1", harness::btree_v1);
}

#[test]
fn replay_btree_v2() {
    regressions::replay("btree_v2", harness::btree_v2);
}

#[test]
fn replay_fractal_heap() {
    regressions::replay("fractal_heap", harness::fractal_heap);
}

#[test]
fn replay_arrays() {
    regressions::replay("arrays", harness::arrays);
}

#[test]
fn replay_global_heap() {
    regressions::replay("global_heap", harness::global_heap);
}

#[test]
fn replay_value_decode() {
    regressions::replay("value_decode", harness::value_decode);
}

#[test]
fn replay_layout_entry() {
    regressions::replay("layout_entry", harness::layout_entry);
}

// ---------------------------------------------------------------------------
// Hostile files built from fixtures
// ---------------------------------------------------------------------------

fn find(b: &[u8], sig: &[u8]) -> Vec<usize> {
    b.windows(sig.len())
        .enumerate()
        .filter(|(_, w)| *w == sig)
        .map(|(i, _)| i)
        .collect()
}

fn rd(b: &[u8], at: usize, n: usize) -> u64 {
    let mut v = [0u8; 8];
    v[..n].copy_from_slice(&b[at..at + n]);
    u64::from_le_bytes(v)
}

fn wr(b: &mut [u8], at: usize, n: usize, v: u64) {
    b[at..at + n].copy_from_slice(&v.to_le_bytes()[..n]);
}

fn fix_checksum(b: &mut [u8], start: usize, at: usize) {
    let c = hdf5_lite::checksum::lookup3(&b[start..at]);
    b[at..at + 4].copy_from_slice(&c.to_le_bytes());
}

/// (kind, body offset, body size) of the messages of the v1 object header at
/// `addr` (base 0), following continuations.
fn v1_messages(b: &[u8], addr: usize) -> Vec<(u16, usize, usize)> {
    assert_eq!(b[addr], 1, "not a v1 object header at {addr:#x}");
    let size = rd(b, addr + 8, 4) as usize;
    let mut blocks = vec![(addr + 16, addr + 16 + size)];
    let mut out = Vec::new();
    while let Some((mut p, end)) = blocks.pop() {
        while p + 8 <= end {
            let kind = rd(b, p, 2) as u16;
            let n = rd(b, p + 2, 2) as usize;
            if kind == 0x10 {
                let (a, l) = (rd(b, p + 8, 8) as usize, rd(b, p + 16, 8) as usize);
                blocks.push((a, a + l));
            }
            out.push((kind, p + 8, n));
            p += 8 + n;
        }
    }
    out
}

/// The root object header of a version 0 superblock at offset 0.
fn v0_root(b: &[u8]) -> usize {
    assert_eq!(b[8], 0, "not a v0 superblock");
    rd(b, 64, 8) as usize
}

/// A group B-tree (v1) internal node whose first child is the node itself.
fn btree_v1_self_child() -> Vec<u8> {
    let mut b = fixture("sb0_old_groups.h5");
    let p = *find(&b, b"TREE")
        .iter()
        .find(|&&p| b[p + 4] == 0 && b[p + 5] >= 1)
        .expect("an internal group B-tree node");
    // signature, type, level, entries, left, right (24 bytes), then key 0 (a
    // length) and child 0.
    wr(&mut b, p + 24 + 8, 8, p as u64);
    b
}

/// The root header's continuation message pointing back at the header.
fn continuation_to_own_header() -> Vec<u8> {
    let mut b = fixture("sb0_old_groups.h5");
    let root = v0_root(&b);
    let (_, body, _) = *v1_messages(&b, root)
        .iter()
        .find(|m| m.0 == 0x10)
        .expect("a continuation message");
    let len = 16 + rd(&b, root + 8, 4);
    wr(&mut b, body, 8, root as u64);
    wr(&mut b, body + 8, 8, len);
    b
}

/// A continuation block whose first message of 16+ bytes other than the
/// symbol table message (the attribute, in this fixture) is turned into a
/// continuation pointing at the block itself.
fn continuation_to_itself() -> Vec<u8> {
    let mut b = fixture("sb0_old_groups.h5");
    let root = v0_root(&b);
    let (_, body, _) = *v1_messages(&b, root)
        .iter()
        .find(|m| m.0 == 0x10)
        .expect("a continuation message");
    let (ca, cl) = (rd(&b, body, 8) as usize, rd(&b, body + 8, 8) as usize);
    let mut p = ca;
    while p + 8 <= ca + cl {
        let (kind, n) = (rd(&b, p, 2), rd(&b, p + 2, 2) as usize);
        if kind != 0x11 && n >= 16 {
            wr(&mut b, p, 2, 0x10);
            wr(&mut b, p + 8, 8, ca as u64);
            wr(&mut b, p + 16, 8, cl as u64);
            return b;
        }
        p += 8 + n;
    }
    panic!("no message of 16+ bytes in the continuation block at {ca:#x}");
}

/// The root indirect block of a fractal heap listing itself as its first
/// direct child (checksum recomputed).
fn fractal_heap_indirect_self() -> Vec<u8> {
    let mut b = fixture("sb3_dense_attrs.h5");
    let ctx = Ctx::new(8, 8, 0);
    let p = find(&b, b"FHIB")[0];
    let heap = rd(&b, p + 5, 8) as usize;
    let h = hdf5_lite::fractal_heap::parse_header(&b[heap..], heap as u64, &ctx).unwrap();
    assert!(
        h.root_rows > 0 && h.root == Some(p as u64),
        "FHIB is the heap's root"
    );
    let size = hdf5_lite::fractal_heap::indirect_size(&ctx, &h, h.root_rows as u32) as usize;
    let first = p + 4 + 1 + 8 + h.offset_size() as usize;
    wr(&mut b, first, 8, p as u64);
    fix_checksum(&mut b, p, p + size - 4);
    b
}

/// A v2 B-tree header claiming depth 60 (checksum recomputed).
fn btree_v2_depth_60() -> Vec<u8> {
    let mut b = fixture("sb3_dense_attrs.h5");
    let p = *find(&b, b"BTHD")
        .iter()
        .find(|&&p| rd(&b, p + 16, 8) != u64::MAX)
        .expect("a v2 B-tree with a root");
    wr(&mut b, p + 12, 2, 60);
    fix_checksum(&mut b, p, p + 34);
    b
}

/// The first object of the global heap collection claims 1 TiB.
fn global_heap_object_too_large() -> Vec<u8> {
    let mut b = fixture("sb0_attrs_all_types.h5");
    let p = find(&b, b"GCOL")[0];
    // Collection header is 16 bytes; an object: index, refcount, reserved, size.
    assert_ne!(rd(&b, p + 16, 2), 0, "first object is not the free space");
    wr(&mut b, p + 16 + 8, 8, 1 << 40);
    b
}

/// Every dataset's v1 dataspace message patched by `patch(bytes, body)`.
fn patch_dataspaces(patch: impl Fn(&mut Vec<u8>, usize)) -> Vec<u8> {
    let mut b = fixture("sb0_datasets_all_types.h5");
    let file =
        hdf5_lite::open_path(main_dir().join("fixtures/files/sb0_datasets_all_types.h5")).unwrap();
    let mut addrs = Vec::new();
    collect_datasets(&file.root, &mut addrs);
    assert!(!addrs.is_empty());
    for a in addrs {
        for (kind, body, _) in v1_messages(&b.clone(), a as usize) {
            if kind == 1 {
                patch(&mut b, body);
            }
        }
    }
    b
}

fn collect_datasets(g: &hdf5_lite::Group, out: &mut Vec<u64>) {
    let j = serde_json::to_value(g).unwrap();
    fn walk(v: &serde_json::Value, out: &mut Vec<u64>) {
        match v {
            serde_json::Value::Object(m) => {
                if let (Some(a), Some(_)) = (
                    m.get("address").and_then(|a| a.as_u64()),
                    m.get("dataspace"),
                ) {
                    out.push(a);
                }
                m.values().for_each(|x| walk(x, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(&j, out);
}

/// Dimensions (and maximum dimensions) of u64::MAX.
fn dataspace_dims_max() -> Vec<u8> {
    patch_dataspaces(|b, body| {
        let (version, rank, flags) = (b[body], b[body + 1] as usize, b[body + 2]);
        let dims = if version == 1 { body + 8 } else { body + 4 };
        let n = if flags & 1 != 0 { 2 * rank } else { rank };
        for k in 0..n {
            wr(b, dims + 8 * k, 8, u64::MAX);
        }
    })
}

/// Rank 255 (the dimensions then run past the message).
fn dataspace_rank_255() -> Vec<u8> {
    patch_dataspaces(|b, body| b[body + 1] = 255)
}

/// A fixed array header claiming 2^61 entries (checksum recomputed): the
/// data block size overflows u64.
fn fixed_array_entries_huge() -> Vec<u8> {
    let mut b = fixture("latest_chunk_indexes.h5");
    let p = find(&b, b"FAHD")[0];
    wr(&mut b, p + 8, 8, 1 << 61);
    fix_checksum(&mut b, p, p + 24);
    b
}

/// Hostile superblocks: (name, superblock bytes at offset 0, a word the
/// parse error must contain). Built from the v0 superblock of
/// `sb0_old_groups.h5` (96 bytes) and the v3 one of `sb3_dense_attrs.h5` (48
/// bytes, checksum at 44, recomputed unless the case is about it).
fn hostile_superblocks() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let v0 = fixture("sb0_old_groups.h5")[..96].to_vec();
    let v3 = fixture("sb3_dense_attrs.h5")[..48].to_vec();
    assert_eq!(
        (v0[8], v3[8]),
        (0, 3),
        "superblock versions of the fixtures"
    );
    let patch = |base: &[u8], f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = base.to_vec();
        f(&mut b);
        if b[8] >= 2 && b.len() >= 48 {
            fix_checksum(&mut b, 0, 44);
        }
        b
    };
    vec![
        (
            "v0_size_of_offsets_3",
            patch(&v0, &|b| b[13] = 3),
            "size of offsets",
        ),
        (
            "v0_size_of_lengths_16",
            patch(&v0, &|b| b[14] = 16),
            "size of offsets",
        ),
        (
            "v0_group_leaf_k_0",
            patch(&v0, &|b| wr(b, 16, 2, 0)),
            "B-tree K of 0",
        ),
        (
            "v0_root_undefined",
            patch(&v0, &|b| wr(b, 64, 8, u64::MAX)),
            "root group",
        ),
        ("v0_truncated_in_root_entry", v0[..70].to_vec(), "truncated"),
        (
            "version_4",
            patch(&v0, &|b| b[8] = 4),
            "superblock version 4",
        ),
        (
            "v3_size_of_offsets_16",
            patch(&v3, &|b| b[9] = 16),
            "size of offsets",
        ),
        (
            "v3_root_undefined",
            patch(&v3, &|b| wr(b, 36, 8, u64::MAX)),
            "root group",
        ),
        (
            "v3_checksum_mismatch",
            {
                let mut b = v3.clone();
                b[28] ^= 1;
                b
            },
            "checksum",
        ),
        (
            "v3_truncated_before_checksum",
            v3[..44].to_vec(),
            "truncated",
        ),
    ]
}

/// All hostile files: (name, bytes).
fn hostile() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("btree_v1_self_child.h5", btree_v1_self_child()),
        (
            "continuation_to_own_header.h5",
            continuation_to_own_header(),
        ),
        ("continuation_to_itself.h5", continuation_to_itself()),
        (
            "fractal_heap_indirect_self.h5",
            fractal_heap_indirect_self(),
        ),
        ("btree_v2_depth_60.h5", btree_v2_depth_60()),
        (
            "global_heap_object_too_large.h5",
            global_heap_object_too_large(),
        ),
        ("dataspace_dims_max.h5", dataspace_dims_max()),
        ("dataspace_rank_255.h5", dataspace_rank_255()),
        ("fixed_array_entries_2_61.h5", fixed_array_entries_huge()),
    ]
}

/// Open hostile bytes the way the `open_file` target does.
fn open(data: Vec<u8>) -> Result<hdf5_lite::File, hdf5_lite::Error> {
    let rt = harness::runtime();
    let src: Arc<dyn RangeSource> = Arc::new(MemorySource::new(harness::FILE_NAME, data));
    rt.block_on(hdf5_lite::open(src, &harness::options()))
        .map(|(f, _)| f)
}

/// `open` must fail, naming the file and containing one of `words`.
fn assert_open_fails(data: Vec<u8>, words: &[&str]) -> String {
    let msg = match open(data) {
        Ok(f) => panic!("hostile file opened: {:#?}", f.root),
        Err(e) => e.to_string(),
    };
    assert!(msg.contains(harness::FILE_NAME), "{msg}");
    assert!(
        words
            .iter()
            .any(|w| msg.to_lowercase().contains(&w.to_lowercase())),
        "error {msg:?} mentions none of {words:?}"
    );
    msg
}

#[test]
fn hostile_superblocks_are_rejected() {
    for (name, b, word) in hostile_superblocks() {
        match hdf5_lite::superblock::parse(&b, 0) {
            Ok(sb) => panic!("{name}: parsed {sb:?}"),
            Err(e) => {
                let msg = e.into_format("superblock", 0, b.len()).to_string();
                assert!(msg.contains(word), "{name}: {msg:?} lacks {word:?}");
            }
        }
    }
}

/// The same superblocks at the start of the whole file: `open` fails and
/// names the file (truncated ones are complete again here).
#[test]
fn files_with_hostile_superblocks_do_not_open() {
    for (name, sb, _) in hostile_superblocks() {
        let (fixture_name, full) = if sb[8] == 3 {
            ("sb3_dense_attrs.h5", 48)
        } else {
            ("sb0_old_groups.h5", 96)
        };
        if sb.len() < full {
            continue;
        }
        let mut b = fixture(fixture_name);
        b[..sb.len()].copy_from_slice(&sb);
        match open(b) {
            Ok(_) => panic!("{name}: opened"),
            Err(e) => assert!(e.to_string().contains(harness::FILE_NAME), "{name}: {e}"),
        }
    }
}

#[test]
fn hostile_fixtures_still_open_unpatched() {
    // The patches only make sense if the originals open cleanly.
    for name in [
        "sb0_old_groups.h5",
        "sb3_dense_attrs.h5",
        "sb0_attrs_all_types.h5",
        "sb0_datasets_all_types.h5",
    ] {
        open(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn btree_v1_child_pointing_to_itself_is_a_cycle() {
    assert_open_fails(btree_v1_self_child(), &["cycle"]);
}

#[test]
fn continuation_pointing_to_its_own_header_is_rejected() {
    assert_open_fails(continuation_to_own_header(), &["cycle", "object header"]);
}

#[test]
fn continuation_pointing_to_itself_is_a_cycle() {
    assert_open_fails(continuation_to_itself(), &["cycle"]);
}

#[test]
fn fractal_heap_indirect_block_referencing_itself_is_a_cycle() {
    assert_open_fails(fractal_heap_indirect_self(), &["cycle"]);
}

#[test]
fn btree_v2_of_depth_60_is_rejected() {
    assert_open_fails(btree_v2_depth_60(), &["v2 B-tree"]);
}

#[test]
fn global_heap_object_larger_than_collection_is_rejected() {
    assert_open_fails(global_heap_object_too_large(), &["global heap"]);
}

/// Dimensions of u64::MAX (2^64 - 1 elements of 4 bytes in a 20-byte
/// contiguous block) must not panic anywhere (whether `open` accepts them is
/// the next test's business).
#[test]
fn absurd_dataspace_dimensions_do_not_panic() {
    let _ = open(dataspace_dims_max());
}

/// The dataspace parser rejects element counts that overflow 64 bits
/// (finding F1 in fuzz/README.md, fixed).
#[test]
fn absurd_dataspace_dimensions_are_rejected() {
    match open(dataspace_dims_max()) {
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains("dataspace") || msg.contains("elements"),
                "{msg}"
            );
        }
        Ok(f) => {
            let j = serde_json::to_string(&f.root).unwrap();
            assert!(
                !j.contains("18446744073709551615") || j.contains("\"error\":\""),
                "dims of u64::MAX accepted without an error"
            );
        }
    }
}

#[test]
fn dataspace_rank_255_is_rejected() {
    assert_open_fails(dataspace_rank_255(), &["dataspace", "rank"]);
}

/// A chunk index error is per dataset: `open` may succeed, but the dataset
/// must carry an error naming the fixed array (or `open` fails naming it).
#[test]
fn fixed_array_with_2_61_entries_is_rejected() {
    match open(fixed_array_entries_huge()) {
        Err(e) => assert!(e.to_string().contains("fixed array"), "{e}"),
        Ok(f) => {
            let j = serde_json::to_value(&f.root).unwrap().to_string();
            assert!(
                j.contains("fixed array"),
                "no dataset error names the fixed array"
            );
        }
    }
}

/// The hand-made hostile inputs under `fuzz/regressions/` are exactly what
/// this generator builds from the fixtures (so a reader can trust where they
/// came from). `FUZZ_WRITE_REGRESSIONS=1` rewrites them after a change.
#[test]
fn write_hostile_regressions() {
    let dir = main_dir().join("fuzz/regressions");
    let write = std::env::var_os("FUZZ_WRITE_REGRESSIONS").is_some();
    let stale = std::cell::RefCell::new(Vec::new());
    let put = |target: &str, name: &str, data: &[u8]| {
        let d = dir.join(target);
        if write {
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(name), data).unwrap();
        } else if std::fs::read(d.join(name)).ok().as_deref() != Some(data) {
            stale.borrow_mut().push(format!("{target}/{name}"));
        }
    };
    for (name, data) in hostile() {
        put("open_file", name, &data);
    }
    // Superblock target input: selector byte 0 (no checksum repair), then
    // the superblock.
    for (name, data, _) in hostile_superblocks() {
        put("superblock", name, &[&[0u8][..], &data].concat());
    }
    // Structure-level variants in each harness's input format.
    let b = btree_v2_depth_60();
    let p = find(&b, b"BTHD")
        .into_iter()
        .find(|&p| rd(&b, p + 12, 2) == 60)
        .unwrap();
    let root = rd(&b, p + 16, 8) as usize;
    let node = rd(&b, p + 6, 4) as usize;
    let mut v = vec![0, 0, 0, 0];
    v.extend_from_slice(&b[p..p + 38]);
    v.extend_from_slice(&b[root..root + node]);
    put("btree_v2", "depth_60", &v);
    v[0] = 2;
    v[1] = 59;
    put("btree_v2", "depth_60_child_59", &v);

    let b = global_heap_object_too_large();
    let p = find(&b, b"GCOL")[0];
    let size = rd(&b, p + 8, 8) as usize;
    put(
        "global_heap",
        "object_larger_than_collection",
        &b[p..p + size],
    );

    let b = fractal_heap_indirect_self();
    let p = find(&b, b"FHIB")[0];
    let heap = rd(&b, p + 5, 8) as usize;
    let mut v = vec![1];
    v.extend_from_slice(&146u16.to_le_bytes());
    v.extend_from_slice(&b[heap..heap + 146]);
    v.extend_from_slice(&b[p..(p + 4096).min(b.len())]);
    put("fractal_heap", "indirect_self", &v);

    let b = btree_v1_self_child();
    let p = find(&b, b"TREE")
        .into_iter()
        .find(|&p| b[p + 4] == 0 && b[p + 5] >= 1)
        .unwrap();
    let mut v = vec![0, 0];
    v.extend_from_slice(&b[p..(p + 4096).min(b.len())]);
    put("btree_v1", "group_node_self_child", &v);

    // Dataspace messages: rank 255, rank 32 of u64::MAX, truncated.
    let mut ds = vec![1u8, 2, 1, 0, 0, 0, 0, 0];
    ds.extend_from_slice(&[0xff; 32]);
    put(
        "messages",
        "dataspace_v1_dims_max",
        &[&[1u8][..], &ds].concat(),
    );
    let mut ds = vec![2u8, 255, 0, 1];
    ds.extend_from_slice(&[0xff; 64]);
    put(
        "messages",
        "dataspace_v2_rank_255",
        &[&[1u8][..], &ds].concat(),
    );
    let mut ds = vec![2u8, 32, 1, 1];
    ds.extend(std::iter::repeat_n(0xffu8, 8 * 64));
    put(
        "messages",
        "dataspace_v2_rank_32_max",
        &[&[1u8][..], &ds].concat(),
    );
    let stale = stale.into_inner();
    assert!(
        stale.is_empty(),
        "committed hostile inputs differ from the generator (rerun with FUZZ_WRITE_REGRESSIONS=1): {stale:?}"
    );
}
