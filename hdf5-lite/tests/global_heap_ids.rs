//! A global heap ID whose object index does not fit a collection's 16-bit
//! object numbers names no object: opening the file fails on that
//! attribute, it never reads some other object's bytes (an index of 0x10001
//! was read as object 1).
//!
//! Oracle: `sb0_old_groups.h5` (version 0 superblock, so object headers have
//! no checksum to mend), whose root attribute `title` is the vlen string
//! "old style groups" (h5py) stored as global heap object 1.

use std::path::PathBuf;
use std::sync::Arc;

use hdf5_lite::{MemorySource, Options, RangeSource, Value};

const TITLE: &str = "old style groups";

fn title(bytes: Vec<u8>) -> Result<Vec<Value>, String> {
    let src: Arc<dyn RangeSource> = Arc::new(MemorySource::new("sb0_old_groups.h5", bytes));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    let (file, _) = rt
        .block_on(hdf5_lite::open(src, &Options::default()))
        .map_err(|e| e.to_string())?;
    file.root
        .attributes
        .iter()
        .find(|a| a.name == "title")
        .map(|a| a.value.clone())
        .ok_or_else(|| "no title attribute".to_string())
}

#[test]
fn an_object_index_beyond_16_bits_names_no_object() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/files/sb0_old_groups.h5");
    let bytes = std::fs::read(&path).expect("fixture");
    assert_eq!(
        title(bytes.clone()).expect("unpatched file opens"),
        vec![Value::Str(TITLE.into())],
        "the fixture's title as h5py reads it"
    );

    // The attribute's element: length (u32) = 16, collection address
    // (8 bytes, the GCOL signature's position), object index (u32) = 1.
    let gcol = bytes
        .windows(4)
        .position(|w| w == b"GCOL")
        .expect("a global heap collection") as u64;
    let mut id = (TITLE.len() as u32).to_le_bytes().to_vec();
    id.extend_from_slice(&gcol.to_le_bytes());
    id.extend_from_slice(&1u32.to_le_bytes());
    let at = bytes
        .windows(id.len())
        .position(|w| w == id.as_slice())
        .expect("the title's heap ID");
    let mut patched = bytes;
    patched[at + 12..at + 16].copy_from_slice(&0x0001_0001u32.to_le_bytes());

    // A reference that names no object is an error naming the attribute,
    // not some other object's string (nor a null passing for a value).
    let err = title(patched).expect_err("object 0x10001 names no object");
    assert!(
        err.contains("title") && err.contains("names no object"),
        "{err}"
    );
}

/// The same for a dataset's values (`data::read_values`): `tvlstr.h5`'s
/// `Dataset1` holds four vlen strings; the first one's object index
/// (3, "Four score ...", as h5py reads it) gets bit 16 set.
#[test]
fn a_dataset_value_naming_no_object_is_an_error() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/files/hdfgroup/tvlstr.h5");
    let bytes = std::fs::read(&path).expect("fixture");
    let read = |bytes: Vec<u8>| -> Result<Vec<Value>, String> {
        let src: Arc<dyn RangeSource> = Arc::new(MemorySource::new("tvlstr.h5", bytes));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| e.to_string())?;
        let (file, _) = rt
            .block_on(hdf5_lite::open(src.clone(), &Options::default()))
            .map_err(|e| e.to_string())?;
        let ds = file
            .root
            .datasets
            .iter()
            .find(|d| d.path.ends_with("Dataset1"))
            .ok_or("no Dataset1")?;
        rt.block_on(hdf5_lite::data::read_values(&*src, &file, ds))
            .map_err(|e| e.to_string())
    };
    let first = "Four score and seven years ago";
    match read(bytes.clone()).expect("unpatched file reads").first() {
        Some(Value::Str(s)) => assert!(s.starts_with(first), "{s}"),
        other => panic!("first string as h5py reads it, got {other:?}"),
    }
    // The element: length (u32), collection address (8 bytes), object
    // index (u32); its index gets bit 16 set (the low 16 bits, which the
    // truncation read, still name the right object).
    let gcol = bytes
        .windows(4)
        .position(|w| w == b"GCOL")
        .expect("a global heap collection") as u64;
    let full = "Four score and seven years ago our forefathers brought forth on this continent a new nation,";
    let mut id = (full.len() as u32).to_le_bytes().to_vec();
    id.extend_from_slice(&gcol.to_le_bytes());
    let at = bytes
        .windows(id.len())
        .position(|w| w == id.as_slice())
        .expect("the first string's heap ID")
        + id.len();
    let mut patched = bytes;
    let mut index = [0u8; 4];
    index.copy_from_slice(&patched[at..at + 4]);
    let index = u32::from_le_bytes(index) | 0x1_0000;
    patched[at..at + 4].copy_from_slice(&index.to_le_bytes());
    let err = read(patched).expect_err("object 0x10001 names no object");
    assert!(
        err.contains("Dataset1") && err.contains("names no object"),
        "{err}"
    );
}
