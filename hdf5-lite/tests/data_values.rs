//! Raw data reads agree with h5py for vlen strings and filtered chunks.
//! Expected values come from `fixtures/golden-data/*.json`, written by
//! `fixtures/oracle_data.py` (h5py).

use std::path::PathBuf;
use std::sync::Arc;

use hdf5_lite::{Dataset, Group, Value};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn find<'a>(g: &'a Group, path: &str) -> Option<&'a Dataset> {
    g.datasets
        .iter()
        .find(|d| d.path == path)
        .or_else(|| g.groups.iter().find_map(|c| find(c, path)))
}

fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::json;
    match v {
        Value::Int(i) => json!(i),
        Value::UInt(u) => json!(u),
        Value::Float(f) if f.is_nan() => json!("NaN"),
        Value::Float(f) if f.is_infinite() => {
            json!(if *f > 0.0 { "Infinity" } else { "-Infinity" })
        }
        Value::Float(f) => json!(f),
        Value::Str(s) => json!(s),
        Value::Bytes(b) => {
            json!({ "hex": b.iter().map(|x| format!("{x:02x}")).collect::<String>() })
        }
        Value::Enum { value, .. } => json!(value),
        Value::Array(a) | Value::Vlen(a) => {
            serde_json::Value::Array(a.iter().map(to_json).collect())
        }
        Value::Compound(m) => {
            serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
        Value::Null => serde_json::Value::Null,
        Value::ObjectRef(a) => json!({ "ref_addr": a }),
        Value::OtherRef(_) => json!({ "region_ref": true }),
    }
}

#[test]
fn values_match_h5py() {
    let dir = fixtures().join("golden-data");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures/golden-data exists") {
        let path = entry.expect("dir entry").path();
        let golden: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read golden"))
                .expect("golden json");
        let file_path = fixtures()
            .join("files")
            .join(golden["file"].as_str().expect("file"));
        let file = hdf5_lite::open_path(&file_path).expect("open fixture");
        let src: Arc<dyn hdf5_lite::RangeSource> = Arc::new(hdf5_lite::FileSource::new(&file_path));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        for (ds_path, expected) in golden["datasets"].as_object().expect("datasets") {
            let ds = find(&file.root, ds_path).unwrap_or_else(|| panic!("{ds_path} not found"));
            let values = rt
                .block_on(hdf5_lite::data::read_values(&*src, &file, ds))
                .unwrap_or_else(|e| panic!("{ds_path}: {e}"));
            let got = serde_json::Value::Array(values.iter().map(to_json).collect());
            assert_eq!(&got, expected, "{} {ds_path}", file_path.display());
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} datasets checked");
}
