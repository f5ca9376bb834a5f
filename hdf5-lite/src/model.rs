//! The plain data model a walk produces: no I/O handles, no borrowed file
//! bytes, so it can be sent across threads, serialised for `inspect --json`
//! and translated by the `kerchunk` crate without knowing how it was read.

use serde::Serialize;

/// One HDF5 file after a full walk.
#[derive(Debug, Clone, Serialize)]
pub struct File {
    /// Where the file came from (path or URL), for error messages and refs.
    pub source: String,
    /// Size of the file in bytes.
    pub size: u64,
    /// Superblock version (0..=3).
    pub superblock_version: u8,
    /// Offset of the HDF5 signature (non-zero when a user block precedes it).
    /// Every address in this model is already absolute (base address added).
    pub base_address: u64,
    /// Bytes of a stored address (superblock "size of offsets"); needed to
    /// decode vlen heap ids and object references in raw data.
    pub size_of_offsets: u8,
    /// Bytes of a stored length (superblock "size of lengths").
    pub size_of_lengths: u8,
    pub root: Group,
}

/// A group and everything below it. Children (and attributes) are sorted by
/// name, byte-wise, as h5py iterates by default; a tracked creation order is
/// not used.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// Absolute path, `/` for the root.
    pub path: String,
    /// Address of the group's object header.
    pub address: u64,
    pub attributes: Vec<Attribute>,
    pub groups: Vec<Group>,
    pub datasets: Vec<Dataset>,
    /// Named (committed) datatypes stored in this group.
    pub datatypes: Vec<NamedDatatype>,
    /// Links that do not lead to a new object below this group: soft links
    /// (already resolved to a target path), external links, and hard links to
    /// objects first reached through another path.
    pub other_links: Vec<OtherLink>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NamedDatatype {
    pub path: String,
    pub address: u64,
    pub datatype: Datatype,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OtherLink {
    /// Soft link; `target_address` is the object it resolves to, if any.
    Soft {
        name: String,
        target: String,
        target_address: Option<u64>,
    },
    /// External link: reported, never followed.
    External {
        name: String,
        file: String,
        object: String,
    },
    /// A hard link to an object already listed under `canonical_path`.
    Hard {
        name: String,
        address: u64,
        canonical_path: String,
    },
}

/// A dataset's metadata and, for chunked layouts, its full chunk list.
#[derive(Debug, Clone, Serialize)]
pub struct Dataset {
    pub path: String,
    /// Address of the dataset's object header (the identity HDF5 object
    /// references point at, used to resolve `DIMENSION_LIST`).
    pub address: u64,
    pub datatype: Datatype,
    pub dataspace: Dataspace,
    pub layout: Layout,
    /// Filter pipeline, in application order (first applied on write first).
    pub filters: Vec<Filter>,
    pub fill_value: FillValue,
    pub attributes: Vec<Attribute>,
    /// Why this dataset's storage could not be indexed (virtual layout, an
    /// unsupported chunk index, a corrupt B-tree...). The rest of the file
    /// still indexes; consumers must report, not silently drop, these.
    pub error: Option<String>,
}

impl Dataset {
    /// The dataset's name, the last path component.
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Dataspace {
    Scalar,
    /// A dataspace with no elements at all (`H5S_NULL`).
    Null,
    Simple {
        dims: Vec<u64>,
        /// `None` entries are unlimited (`H5S_UNLIMITED`).
        max_dims: Vec<Option<u64>>,
    },
}

impl Dataspace {
    /// Shape as zarr sees it: `[]` for scalar, the dims for simple, `[0]` for null.
    pub fn shape(&self) -> Vec<u64> {
        match self {
            Dataspace::Scalar => vec![],
            Dataspace::Null => vec![0],
            Dataspace::Simple { dims, .. } => dims.clone(),
        }
    }

    pub fn num_elements(&self) -> u64 {
        match self {
            Dataspace::Scalar => 1,
            Dataspace::Null => 0,
            Dataspace::Simple { dims, .. } => dims.iter().fold(1u64, |a, d| a.saturating_mul(*d)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ByteOrder {
    LittleEndian,
    BigEndian,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StringPadding {
    NullTerminate,
    NullPad,
    SpacePad,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CharSet {
    Ascii,
    Utf8,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceKind {
    /// `H5R_OBJECT` (hobj_ref_t): an object header address.
    Object,
    /// `H5R_DATASET_REGION`: a global heap id of a region description.
    Region,
    /// HDF5 1.12+ revised references (`H5R_OBJECT2`, ...), opaque blobs.
    Other(u8),
}

/// An HDF5 datatype (spec section IV.A.2.d), fully resolved: committed
/// datatypes are replaced by their definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "class", rename_all = "snake_case")]
pub enum Datatype {
    FixedPoint {
        size: u32,
        order: ByteOrder,
        signed: bool,
        bit_offset: u16,
        bit_precision: u16,
    },
    FloatingPoint {
        size: u32,
        order: ByteOrder,
        bit_offset: u16,
        bit_precision: u16,
        exponent_location: u8,
        exponent_size: u8,
        mantissa_location: u8,
        mantissa_size: u8,
        exponent_bias: u32,
    },
    /// Fixed-length string.
    String {
        size: u32,
        padding: StringPadding,
        charset: CharSet,
    },
    Bitfield {
        size: u32,
        order: ByteOrder,
        bit_offset: u16,
        bit_precision: u16,
    },
    Opaque {
        size: u32,
        tag: String,
    },
    Compound {
        size: u32,
        members: Vec<CompoundMember>,
    },
    Reference {
        size: u32,
        kind: ReferenceKind,
    },
    Enum {
        size: u32,
        base: Box<Datatype>,
        /// (name, raw value bytes in the base type's order)
        members: Vec<(String, Vec<u8>)>,
    },
    /// Variable-length sequence of `base`.
    VlenSequence {
        size: u32,
        base: Box<Datatype>,
    },
    /// Variable-length string (stored in the global heap).
    VlenString {
        size: u32,
        padding: StringPadding,
        charset: CharSet,
    },
    Array {
        size: u32,
        dims: Vec<u32>,
        base: Box<Datatype>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompoundMember {
    pub name: String,
    pub offset: u32,
    pub datatype: Datatype,
}

impl Datatype {
    /// Size in bytes of one element as stored in the file (for vlen types,
    /// the 4-byte length + global heap id that the file holds).
    pub fn size(&self) -> u32 {
        match self {
            Datatype::FixedPoint { size, .. }
            | Datatype::FloatingPoint { size, .. }
            | Datatype::String { size, .. }
            | Datatype::Bitfield { size, .. }
            | Datatype::Opaque { size, .. }
            | Datatype::Compound { size, .. }
            | Datatype::Reference { size, .. }
            | Datatype::Enum { size, .. }
            | Datatype::Array { size, .. }
            | Datatype::VlenSequence { size, .. }
            | Datatype::VlenString { size, .. } => *size,
        }
    }
}

/// One filter of a dataset's pipeline (spec IV.A.2.l).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Filter {
    /// 1 deflate, 2 shuffle, 3 fletcher32, 4 szip, 5 nbit, 6 scaleoffset,
    /// >= 256 registered third-party filters (32000 lzf, 32001 blosc, ...).
    pub id: u16,
    pub name: Option<String>,
    /// Set when the filter may be skipped for a chunk (`H5Z_FLAG_OPTIONAL`).
    pub optional: bool,
    pub client_data: Vec<u32>,
}

pub const FILTER_DEFLATE: u16 = 1;
pub const FILTER_SHUFFLE: u16 = 2;
pub const FILTER_FLETCHER32: u16 = 3;
pub const FILTER_SZIP: u16 = 4;
pub const FILTER_NBIT: u16 = 5;
pub const FILTER_SCALEOFFSET: u16 = 6;

/// Fill value information merged from the old (0x0004) and new (0x0005)
/// fill value messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FillValue {
    /// Raw bytes of the fill value in the dataset's datatype, if one is
    /// defined. `None` means "library default" (zeros), which is what HDF5
    /// returns for unwritten elements in that case.
    pub value: Option<Vec<u8>>,
    /// `H5D_FILL_TIME_*`: 0 on alloc, 1 never, 2 if set.
    pub fill_time: u8,
    /// `H5D_ALLOC_TIME_*`: 1 early, 2 late, 3 incremental.
    pub alloc_time: u8,
    /// True when the user explicitly defined the fill value (new message
    /// "fill value defined" flag, or any old-style message).
    pub user_defined: bool,
}

impl Default for FillValue {
    fn default() -> Self {
        FillValue {
            value: None,
            fill_time: 2,
            alloc_time: 2,
            user_defined: false,
        }
    }
}

/// Storage layout (data layout message, IV.A.2.i), with chunk lists
/// already gathered from whatever index the file used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Layout {
    /// Raw data stored inside the object header.
    Compact {
        #[serde(skip)]
        data: Vec<u8>,
        size: u64,
    },
    /// One contiguous extent; `address` is `None` when never allocated.
    Contiguous { address: Option<u64>, size: u64 },
    Chunked {
        /// Chunk shape in elements (without the element-size dimension
        /// layout versions 1-3 append).
        chunk_shape: Vec<u64>,
        index: ChunkIndexKind,
        /// Every allocated chunk, sorted by logical offset (C order).
        chunks: Vec<Chunk>,
    },
    /// Virtual dataset: recognised, not indexed.
    Virtual,
    /// Data in external raw files (external data files message).
    External { files: Vec<ExternalFile> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExternalFile {
    pub name: String,
    pub offset: u64,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChunkIndexKind {
    BTreeV1,
    SingleChunk,
    Implicit,
    FixedArray,
    ExtensibleArray,
    BTreeV2,
}

/// One stored chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chunk {
    /// Logical offset of the chunk's first element, in elements, per dim.
    pub offset: Vec<u64>,
    /// Absolute file address of the stored bytes.
    pub address: u64,
    /// Stored (possibly filtered) size in bytes.
    pub size: u64,
    /// Bit `i` set means filter `i` of the pipeline was NOT applied.
    pub filter_mask: u32,
}

/// An attribute with its value decoded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attribute {
    pub name: String,
    pub datatype: Datatype,
    pub dataspace: Dataspace,
    /// Elements in C order; empty for null dataspaces.
    pub value: Vec<Value>,
}

/// A decoded element value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Int(i64),
    UInt(u64),
    Float(f64),
    /// Fixed or variable-length string, decoded lossily as UTF-8 after
    /// stripping padding the way HDF5 readers do.
    Str(String),
    /// Opaque/bitfield bytes, or integers too wide for 64 bits.
    Bytes(Vec<u8>),
    Compound(Vec<(String, Value)>),
    Array(Vec<Value>),
    /// Enum: the member name when the value matches one.
    Enum {
        name: Option<String>,
        value: i64,
    },
    /// Object reference: the referenced object header's absolute address.
    ObjectRef(u64),
    /// Region reference or other reference kinds, kept raw.
    OtherRef(Vec<u8>),
    Vlen(Vec<Value>),
    /// A vlen/reference that points nowhere (null global heap id).
    Null,
}
