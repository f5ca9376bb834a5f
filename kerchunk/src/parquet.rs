//! kerchunk's Parquet reference format, as `kerchunk.df.refs_to_dataframe`
//! writes it and fsspec's `LazyReferenceMapper` reads it (lazily, one
//! record file at a time):
//!
//! ```text
//! OUT.parq/.zmetadata             {"metadata": {".zgroup": {...}, "var/.zarray": {...}, ...},
//!                                  "record_size": N}
//! OUT.parq/var/refs.<r>.parq      columns path (utf8, nullable), offset (int64),
//!                                 size (int64), raw (bytes, nullable)
//! ```
//!
//! Every metadata key (`.z*`, `*/.z*`) sits in `.zmetadata` as a JSON object
//! (the document's text spliced in verbatim, so `.zattrs` with `NaN` keep
//! Python's bare tokens, which fsspec's `json.loads` reads). A chunk key
//! `var/i.j.k` is row `n % N` of `var/refs.<n / N>.parq`, where `n` is the
//! C-order (ravelled) index of `(i, j, k)` in the chunk grid
//! `ceil(shape / chunks)` of `var/.zarray` (`[1]` for a scalar). A row is
//! `path, offset, size` for a byte range, `path, 0, 0` for a whole object,
//! `raw` for inline data, and all null (0, 0) for a missing chunk (zarr reads
//! the fill value). Unlike kerchunk, every record of every array is written
//! (kerchunk skips records without a reference: rewriting a set in an object
//! store must not leave an older record file in place), and the last record
//! of an array is not padded to N rows (the reader indexes rows, it never
//! counts them).
//!
//! Compression is snappy (kerchunk uses zstd; every Parquet reader takes
//! either, and snappy is pure Rust). The URL column is dictionary-encoded,
//! which is what kerchunk's categorical URL column amounts to on disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;

use crate::json::Json;
use crate::refs::{Ref, RefSet};

/// References per record file: `refs_to_dataframe`'s default.
pub const DEFAULT_RECORD_SIZE: usize = 100_000;

/// Rows written in total (null rows of partly filled records included): a
/// bound on memory for reference sets whose `.zarray` claims a huge grid.
const MAX_ROWS: u64 = 1 << 26;

#[derive(Debug, thiserror::Error)]
pub enum ParquetError {
    /// The reference set has a key the format cannot hold.
    #[error("{key}: cannot be written as Parquet references: {reason}")]
    Unrepresentable { key: String, reason: String },
    /// The Parquet encoder failed.
    #[error("{file}: Parquet encoding failed: {error}")]
    Encode {
        file: String,
        error: parquet::errors::ParquetError,
    },
    /// The output path exists and is not a directory.
    #[error("{0}: exists and is not a directory; not overwriting it with Parquet references")]
    ExistsNotDir(String),
    /// The output directory holds something other than Parquet references.
    #[error(
        "{0}: is a non-empty directory without a Parquet reference set's .zmetadata; not overwriting it"
    )]
    NotARefSet(String),
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
}

/// One file of a Parquet reference set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParquetFile {
    /// Relative to the set's root: `.zmetadata`, `var/refs.0.parq`.
    pub path: String,
    pub bytes: Vec<u8>,
}

/// The chunk grid of one array: chunks along each axis.
struct Grid {
    counts: Vec<u64>,
    total: u64,
}

impl Grid {
    fn from_zarray(key: &str, doc: &Json) -> Result<Grid, ParquetError> {
        let bad = |reason: &str| ParquetError::Unrepresentable {
            key: key.to_string(),
            reason: reason.to_string(),
        };
        let Json::Object(o) = doc else {
            return Err(bad("not a JSON object"));
        };
        let dims = |name: &str| -> Result<Vec<u64>, ParquetError> {
            match o.get(name) {
                Some(Json::Array(items)) => items
                    .iter()
                    .map(|v| v.as_u64().ok_or_else(|| bad("shape/chunks not integers")))
                    .collect(),
                _ => Err(bad("no shape/chunks list")),
            }
        };
        let (shape, chunks) = (dims("shape")?, dims("chunks")?);
        if shape.len() != chunks.len() {
            return Err(bad("shape and chunks differ in length"));
        }
        if let Some(Json::Str(sep)) = o.get("dimension_separator")
            && sep != "."
        {
            return Err(bad("dimension_separator other than \".\""));
        }
        let mut counts = Vec::with_capacity(shape.len().max(1));
        for (s, c) in shape.iter().zip(&chunks) {
            if *c == 0 {
                return Err(bad("zero chunk length"));
            }
            counts.push(s.div_ceil(*c));
        }
        if counts.is_empty() {
            // fsspec: a scalar has one chunk, key `var/0`
            counts.push(1);
        }
        let total = counts
            .iter()
            .try_fold(1u64, |a, n| a.checked_mul(*n))
            .ok_or_else(|| bad("chunk grid overflows"))?;
        Ok(Grid { counts, total })
    }

    /// C-order index of chunk `i.j.k`.
    fn ravel(&self, chunk: &str) -> Option<u64> {
        let mut idx = 0u64;
        let mut parts = chunk.split('.');
        for n in &self.counts {
            let i: u64 = parts.next()?.parse().ok()?;
            if i >= *n {
                return None;
            }
            idx = idx * n + i;
        }
        parts.next().is_none().then_some(idx)
    }
}

/// `.z*` keys (fsspec's `LazyReferenceMapper._is_meta`).
fn is_meta(key: &str) -> bool {
    key.starts_with(".z") || key.contains("/.z")
}

/// Array paths become directories: refuse anything that could escape the
/// output root.
fn check_field(key: &str, field: &str) -> Result<(), ParquetError> {
    let ok = field
        .split('/')
        .all(|s| !s.is_empty() && s != "." && s != ".." && !s.contains(['\\', '\0']));
    if ok {
        Ok(())
    } else {
        Err(ParquetError::Unrepresentable {
            key: key.to_string(),
            reason: "array path is not a safe relative path".into(),
        })
    }
}

/// The files of the Parquet form of `refs`, `.zmetadata` last. `warnings`
/// are listed in `.zmetadata` under `"warnings"` as in the JSON form
/// (fsspec ignores the key).
pub fn to_parquet_files(
    refs: &RefSet,
    record_size: usize,
    warnings: &[(String, String)],
) -> Result<Vec<ParquetFile>, ParquetError> {
    let record_size = u64::try_from(record_size.max(1)).unwrap_or(u64::MAX);
    let mut meta: BTreeMap<&str, &str> = BTreeMap::new();
    let mut grids: BTreeMap<&str, Grid> = BTreeMap::new();
    // field -> (ravelled index -> reference)
    let mut chunks: BTreeMap<&str, BTreeMap<u64, &Ref>> = BTreeMap::new();
    for (key, r) in &refs.refs {
        let key = key.as_str();
        if key == ".zmetadata" {
            // a consolidated copy from another tool: ours replaces it
            continue;
        }
        if is_meta(key) {
            let text = match r {
                Ref::Text(t) => t.as_str(),
                _ => {
                    return Err(ParquetError::Unrepresentable {
                        key: key.into(),
                        reason: "metadata is not inline text".into(),
                    });
                }
            };
            let doc = Json::parse(text).map_err(|e| ParquetError::Unrepresentable {
                key: key.into(),
                reason: format!("metadata is not JSON: {e}"),
            })?;
            if !matches!(doc, Json::Object(_)) {
                return Err(ParquetError::Unrepresentable {
                    key: key.into(),
                    reason: "metadata is not a JSON object".into(),
                });
            }
            if let Some(field) = key.strip_suffix("/.zarray") {
                check_field(key, field)?;
                grids.insert(field, Grid::from_zarray(key, &doc)?);
            }
            meta.insert(key, text);
            continue;
        }
        if !key.contains('/') {
            return Err(ParquetError::Unrepresentable {
                key: key.into(),
                reason: "a top-level key that is neither metadata nor a chunk".into(),
            });
        }
    }
    // Second pass now that every grid is known (keys sort `var/.zarray`
    // after `var/0`).
    for (key, r) in &refs.refs {
        let key = key.as_str();
        if key == ".zmetadata" || is_meta(key) {
            continue;
        }
        let Some((field, chunk)) = key.rsplit_once('/') else {
            continue;
        };
        let Some(grid) = grids.get(field) else {
            return Err(ParquetError::Unrepresentable {
                key: key.into(),
                reason: format!("no {field}/.zarray for this chunk"),
            });
        };
        let Some(i) = grid.ravel(chunk) else {
            return Err(ParquetError::Unrepresentable {
                key: key.into(),
                reason: "chunk index outside the array's chunk grid".into(),
            });
        };
        chunks.entry(field).or_default().insert(i, r);
    }

    // Every record of every array is written, even one holding no
    // reference (all null rows): rewriting a set in an object store (which
    // this module never deletes from) then leaves no stale record file that
    // the new `.zmetadata` could point into.
    let total_rows = grids
        .values()
        .try_fold(0u64, |a, g| a.checked_add(g.total))
        .filter(|n| *n <= MAX_ROWS)
        .ok_or_else(|| ParquetError::Unrepresentable {
            key: ".zmetadata".into(),
            reason: format!("the arrays' chunk grids have more than {MAX_ROWS} cells"),
        })?;
    let mut out = Vec::with_capacity(usize::try_from(total_rows / record_size).unwrap_or(0) + 1);
    let empty = BTreeMap::new();
    for (field, grid) in &grids {
        let by_index = chunks.get(field).unwrap_or(&empty);
        let mut entries = by_index.iter().peekable();
        for rec in 0..grid.total.div_ceil(record_size) {
            let start = rec * record_size;
            let end = start + record_size.min(grid.total - start);
            let mut rows = Vec::new();
            while let Some((i, r)) = entries.next_if(|(i, _)| **i < end) {
                rows.push((i - start, *r));
            }
            let path = format!("{field}/refs.{rec}.parq");
            let bytes = encode_record(&path, end - start, &rows)?;
            out.push(ParquetFile { path, bytes });
        }
    }
    out.push(ParquetFile {
        path: ".zmetadata".into(),
        bytes: zmetadata(&meta, record_size, warnings).into_bytes(),
    });
    Ok(out)
}

/// `{"metadata":{key: doc, ...},"record_size":N}` with the documents'
/// text spliced in.
fn zmetadata(
    meta: &BTreeMap<&str, &str>,
    record_size: u64,
    warnings: &[(String, String)],
) -> String {
    let mut s = String::with_capacity(64 + meta.values().map(|t| t.len() + 32).sum::<usize>());
    s.push_str("{\"metadata\":{");
    for (i, (k, text)) in meta.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        Json::Str((*k).to_string()).write(&mut s);
        s.push(':');
        s.push_str(text);
    }
    s.push_str("},\"record_size\":");
    s.push_str(&record_size.to_string());
    if !warnings.is_empty() {
        s.push_str(",\"warnings\":");
        Json::Array(
            warnings
                .iter()
                .map(|(p, r)| {
                    crate::json::object([
                        ("path", Json::from(p.as_str())),
                        ("reason", Json::from(r.as_str())),
                    ])
                })
                .collect(),
        )
        .write(&mut s);
    }
    s.push('}');
    s
}

const SCHEMA: &str = "message schema {
    OPTIONAL BYTE_ARRAY path (UTF8);
    REQUIRED INT64 offset;
    REQUIRED INT64 size;
    OPTIONAL BYTE_ARRAY raw;
}";

fn shared<'a>(urls: &mut BTreeMap<&'a str, Bytes>, u: &'a str) -> ByteArray {
    ByteArray::from(
        urls.entry(u)
            .or_insert_with(|| Bytes::copy_from_slice(u.as_bytes()))
            .clone(),
    )
}

/// The pandas schema fastparquet writes for kerchunk's record files. Without
/// it fastparquet (fsspec's default engine) reads the int64 columns as
/// float64 and fsspec then asks for float byte ranges.
const PANDAS_METADATA: &str = concat!(
    r#"{"column_indexes": [{"field_name": null, "metadata": null, "name": null, "numpy_type": "str", "pandas_type": "mixed-integer"}], "#,
    r#""columns": [{"field_name": "path", "metadata": null, "name": "path", "numpy_type": "object", "pandas_type": "unicode"}, "#,
    r#"{"field_name": "offset", "metadata": null, "name": "offset", "numpy_type": "int64", "pandas_type": "int64"}, "#,
    r#"{"field_name": "size", "metadata": null, "name": "size", "numpy_type": "int64", "pandas_type": "int64"}, "#,
    r#"{"field_name": "raw", "metadata": null, "name": "raw", "numpy_type": "object", "pandas_type": "bytes"}], "#,
    r#""creator": {"library": "kerchunk-nos", "version": ""#,
    env!("CARGO_PKG_VERSION"),
    r#""}, "index_columns": [], "pandas_version": "2.2.3", "partition_columns": []}"#
);

/// One record file of `n` rows; `entries` are (row, reference), rows
/// ascending.
fn encode_record<'a>(
    file: &str,
    n: u64,
    entries: &[(u64, &'a Ref)],
) -> Result<Vec<u8>, ParquetError> {
    let enc = |error| ParquetError::Encode {
        file: file.to_string(),
        error,
    };
    let too_big = |what: &str| ParquetError::Unrepresentable {
        key: file.to_string(),
        reason: format!("{what} beyond Parquet's int64"),
    };
    let n = usize::try_from(n).map_err(|_| too_big("row count"))?;
    let mut path_def = vec![0i16; n];
    let mut raw_def = vec![0i16; n];
    let mut offsets = vec![0i64; n];
    let mut sizes = vec![0i64; n];
    let mut paths: Vec<ByteArray> = Vec::new();
    let mut raws: Vec<ByteArray> = Vec::new();
    // One shared buffer per distinct URL: a record mostly repeats a few.
    let mut urls: BTreeMap<&'a str, Bytes> = BTreeMap::new();
    for (row, r) in entries {
        let row = usize::try_from(*row).map_err(|_| too_big("row"))?;
        let (Some(pd), Some(rd), Some(o), Some(s)) = (
            path_def.get_mut(row),
            raw_def.get_mut(row),
            offsets.get_mut(row),
            sizes.get_mut(row),
        ) else {
            return Err(too_big("row"));
        };
        match r {
            // Zero bytes as `[url, 0, 0]` would read the whole object.
            Ref::Range { length: 0, .. } => {
                *rd = 1;
                raws.push(ByteArray::from(Vec::new()));
            }
            Ref::Range {
                url: u,
                offset,
                length,
            } => {
                *pd = 1;
                paths.push(shared(&mut urls, u));
                *o = i64::try_from(*offset).map_err(|_| too_big("offset"))?;
                *s = i64::try_from(*length).map_err(|_| too_big("size"))?;
            }
            Ref::Url(u) => {
                *pd = 1;
                paths.push(shared(&mut urls, u));
            }
            Ref::Text(t) => {
                *rd = 1;
                raws.push(ByteArray::from(t.as_bytes().to_vec()));
            }
            Ref::Binary(b) => {
                *rd = 1;
                raws.push(ByteArray::from(b.clone()));
            }
        }
    }

    let schema = parquet::schema::parser::parse_message_type(SCHEMA).map_err(enc)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_statistics_enabled(EnabledStatistics::None)
        .set_column_dictionary_enabled(ColumnPath::from("raw"), false)
        .set_column_dictionary_enabled(ColumnPath::from("offset"), false)
        .set_column_dictionary_enabled(ColumnPath::from("size"), false)
        .set_key_value_metadata(Some(vec![KeyValue::new(
            "pandas".to_string(),
            PANDAS_METADATA.to_string(),
        )]))
        .set_created_by(concat!("kerchunk-nos ", env!("CARGO_PKG_VERSION")).to_string())
        .build();
    let mut buf = Vec::new();
    let mut w =
        SerializedFileWriter::new(&mut buf, Arc::new(schema), Arc::new(props)).map_err(enc)?;
    let mut rg = w.next_row_group().map_err(enc)?;
    let mut column = 0;
    while let Some(mut c) = rg.next_column().map_err(enc)? {
        match column {
            0 => c
                .typed::<ByteArrayType>()
                .write_batch(&paths, Some(&path_def), None),
            1 => c.typed::<Int64Type>().write_batch(&offsets, None, None),
            2 => c.typed::<Int64Type>().write_batch(&sizes, None, None),
            _ => c
                .typed::<ByteArrayType>()
                .write_batch(&raws, Some(&raw_def), None),
        }
        .map_err(enc)?;
        c.close().map_err(enc)?;
        column += 1;
    }
    rg.close().map_err(enc)?;
    w.close().map_err(enc)?;
    Ok(buf)
}

/// True when `dir` holds a Parquet reference set's `.zmetadata`.
fn is_ref_set(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join(".zmetadata"))
        .ok()
        .and_then(|t| Json::parse(&t).ok())
        .is_some_and(|j| match j {
            Json::Object(o) => {
                matches!(o.get("metadata"), Some(Json::Object(_))) && o.contains_key("record_size")
            }
            _ => false,
        })
}

/// Whether `dir` may receive a Parquet reference set: `Ok(true)` when it
/// holds a previous one (to be replaced), `Ok(false)` when it is missing or
/// empty; an error for a file or a directory holding anything else. Callers
/// check before expensive work so that a bad path fails fast.
pub fn check_target(dir: &Path) -> Result<bool, ParquetError> {
    let shown = dir.display().to_string();
    let io = |error| ParquetError::Io {
        path: shown.clone(),
        error,
    };
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {
            let empty = std::fs::read_dir(dir).map_err(io)?.next().is_none();
            if !empty && !is_ref_set(dir) {
                return Err(ParquetError::NotARefSet(shown));
            }
            Ok(!empty)
        }
        Ok(_) => Err(ParquetError::ExistsNotDir(shown)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io(e)),
    }
}

/// Writes the Parquet form of `refs` to the directory `dir`, all or
/// nothing: into a temporary sibling directory, then renamed into place. An
/// existing empty directory or previous Parquet reference set is replaced;
/// a file, or a directory holding anything else, is an error and stays
/// untouched.
pub fn write_dir(
    refs: &RefSet,
    dir: &Path,
    record_size: usize,
    warnings: &[(String, String)],
) -> Result<(), ParquetError> {
    let existing = check_target(dir)?;
    let shown = dir.display().to_string();
    let io = |p: &Path, error| ParquetError::Io {
        path: p.display().to_string(),
        error,
    };
    let files = to_parquet_files(refs, record_size, warnings)?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| ParquetError::ExistsNotDir(shown.clone()))?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tag = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let tmp = parent.join(format!(".{name}.tmp-{tag}"));
    let result = (|| {
        std::fs::create_dir(&tmp).map_err(|e| io(&tmp, e))?;
        for f in &files {
            let p = tmp.join(&f.path);
            if let Some(d) = p.parent() {
                std::fs::create_dir_all(d).map_err(|e| io(d, e))?;
            }
            std::fs::write(&p, &f.bytes).map_err(|e| io(&p, e))?;
        }
        if existing {
            let old = parent.join(format!(".{name}.old-{tag}"));
            std::fs::rename(dir, &old).map_err(|e| io(dir, e))?;
            if let Err(e) = std::fs::rename(&tmp, dir) {
                // put the previous set back
                let _ = std::fs::rename(&old, dir);
                return Err(io(dir, e));
            }
            // the new set is in place; a leftover old copy is only litter
            let _ = std::fs::remove_dir_all(&old);
        } else {
            // rename(2) replaces an empty directory
            std::fs::rename(&tmp, dir).map_err(|e| io(dir, e))?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// `OUT.parq`, `OUT.parquet` (with or without a trailing `/`): the output
/// names that mean the Parquet form (fsspec opens these lazily by name).
pub fn is_parquet_path(path: &str) -> bool {
    let p = path.trim_end_matches('/');
    p.ends_with(".parq") || p.ends_with(".parquet")
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    fn set() -> RefSet {
        let mut r = RefSet::new();
        r.insert(".zgroup", Ref::Text(r#"{"zarr_format":2}"#.into()));
        r.insert(".zattrs", Ref::Text(r#"{"x":NaN}"#.into()));
        r.insert(
            "t/.zarray",
            Ref::Text(r#"{"chunks":[2,3],"shape":[5,3],"dtype":"<f4"}"#.into()),
        );
        r.insert("t/.zattrs", Ref::Text("{}".into()));
        r.insert(
            "t/0.0",
            Ref::Range {
                url: "s3://b/a.nc".into(),
                offset: 10,
                length: 20,
            },
        );
        r.insert("t/1.0", Ref::Binary(vec![0xff, 0]));
        r.insert("t/2.0", Ref::Url("s3://b/w.nc".into()));
        r.insert("s/.zarray", Ref::Text(r#"{"chunks":[],"shape":[]}"#.into()));
        r.insert("s/0", Ref::Text("ab".into()));
        r
    }

    fn rows(bytes: &[u8]) -> Vec<Vec<Field>> {
        let reader = SerializedFileReader::new(Bytes::from(bytes.to_vec())).expect("parquet");
        reader
            .get_row_iter(None)
            .expect("rows")
            .map(|r| {
                r.expect("row")
                    .get_column_iter()
                    .map(|(_, f)| f.clone())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn layout_rows_and_zmetadata() {
        let files = to_parquet_files(&set(), 2, &[]).expect("writes");
        let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            names,
            [
                "s/refs.0.parq",
                "t/refs.0.parq",
                "t/refs.1.parq",
                ".zmetadata"
            ]
        );
        let zm = String::from_utf8(files[3].bytes.clone()).expect("utf8");
        assert_eq!(
            zm,
            r#"{"metadata":{".zattrs":{"x":NaN},".zgroup":{"zarr_format":2},"s/.zarray":{"chunks":[],"shape":[]},"t/.zarray":{"chunks":[2,3],"shape":[5,3],"dtype":"<f4"},"t/.zattrs":{}},"record_size":2}"#
        );
        let s = Field::Str;
        let b = |v: &[u8]| Field::Bytes(v.to_vec().into());
        assert_eq!(
            rows(&files[0].bytes),
            [vec![Field::Null, Field::Long(0), Field::Long(0), b(b"ab")]]
        );
        // grid 3x1: t/0.0 -> 0, t/1.0 -> 1 (record 0), t/2.0 -> 2 (record 1, 1 row)
        assert_eq!(
            rows(&files[1].bytes),
            [
                vec![
                    s("s3://b/a.nc".into()),
                    Field::Long(10),
                    Field::Long(20),
                    Field::Null
                ],
                vec![Field::Null, Field::Long(0), Field::Long(0), b(&[0xff, 0])],
            ]
        );
        assert_eq!(
            rows(&files[2].bytes),
            [vec![
                s("s3://b/w.nc".into()),
                Field::Long(0),
                Field::Long(0),
                Field::Null
            ]]
        );
    }

    #[test]
    fn missing_chunks_are_null_rows() {
        let mut r = set();
        r.refs.remove("t/0.0");
        let files = to_parquet_files(&r, 100, &[("/x".into(), "why".into())]).expect("writes");
        let t = files.iter().find(|f| f.path == "t/refs.0.parq").expect("t");
        let got = rows(&t.bytes);
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[0],
            [Field::Null, Field::Long(0), Field::Long(0), Field::Null]
        );
        let zm = files.last().expect("zmetadata");
        assert!(
            String::from_utf8_lossy(&zm.bytes)
                .ends_with(r#""record_size":100,"warnings":[{"path":"/x","reason":"why"}]}"#)
        );
    }

    #[test]
    fn unrepresentable_keys_are_errors() {
        for (k, v) in [
            ("t/9.0", Ref::Text("x".into())),
            ("t/0", Ref::Text("x".into())),
            ("t/0.0.0", Ref::Text("x".into())),
            ("u/0", Ref::Text("x".into())),
            ("top", Ref::Text("x".into())),
            ("t/.zattrs", Ref::Text("[1]".into())),
            ("t/.zattrs", Ref::Binary(vec![1])),
            (
                "../e/.zarray",
                Ref::Text(r#"{"chunks":[1],"shape":[1]}"#.into()),
            ),
        ] {
            let mut r = set();
            r.insert(k, v);
            let e = to_parquet_files(&r, 10, &[]).expect_err(k);
            assert!(
                matches!(e, ParquetError::Unrepresentable { .. }),
                "{k}: {e}"
            );
        }
        let mut r = set();
        r.insert(
            "h/.zarray",
            Ref::Text(r#"{"chunks":[1,1],"shape":[100000,100000]}"#.into()),
        );
        r.insert("h/99999.99999", Ref::Text("x".into()));
        assert!(to_parquet_files(&r, 1 << 40, &[]).is_err());
    }

    #[test]
    fn write_dir_is_all_or_nothing() {
        let tmp = std::env::temp_dir().join(format!("kerchunk-pq-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).expect("tmp");
        let out = tmp.join("o.parq");
        write_dir(&set(), &out, 10, &[]).expect("new");
        assert!(out.join("t/refs.0.parq").is_file());
        // a previous set is replaced
        let mut r = set();
        r.refs.remove("s/0");
        r.refs.remove("s/.zarray");
        write_dir(&r, &out, 10, &[]).expect("replace");
        assert!(!out.join("s/refs.0.parq").exists());
        // a file, a foreign directory: errors, untouched
        let f = tmp.join("f.parq");
        std::fs::write(&f, b"keep").expect("file");
        assert!(matches!(
            write_dir(&set(), &f, 10, &[]),
            Err(ParquetError::ExistsNotDir(_))
        ));
        assert_eq!(std::fs::read(&f).expect("file"), b"keep");
        let d = tmp.join("d.parq");
        std::fs::create_dir(&d).expect("dir");
        std::fs::write(d.join("x"), b"keep").expect("file");
        assert!(matches!(
            write_dir(&set(), &d, 10, &[]),
            Err(ParquetError::NotARefSet(_))
        ));
        // an unrepresentable set leaves nothing behind
        let mut bad = set();
        bad.insert("top", Ref::Text("x".into()));
        assert!(write_dir(&bad, &tmp.join("n.parq"), 10, &[]).is_err());
        let mut left: Vec<String> = std::fs::read_dir(&tmp)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["d.parq", "f.parq", "o.parq"]);
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
