//! The pipeline accepts NetCDF-3 objects like NetCDF-4 ones: extract_single
//! on an OFS-named classic NetCDF-3 object (local-directory stores) writes
//! exactly the reference set `kerchunk::translate_opened` makes of it.

use std::path::Path;
use std::sync::Arc;

use ingest::config::{Config, Pipeline};
use ingest::steps;
use ingest::store::{LocalStore, ObjectStore, StoreUrl};

const SRC: &str = "noaa-ofs-pds";
const KEY: &str = "dbofs.20230323/nos.dbofs.fields.f001.20230323.t12z.nc";

fn message(key: &str) -> String {
    let inner = serde_json::json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventTime": "2023-03-23T13:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": SRC}, "object": {"key": key.replace('/', "%2F"), "size": 1}}
    }]})
    .to_string();
    serde_json::json!({"Type": "Notification", "MessageId": "m", "Message": inner}).to_string()
}

#[test]
fn extract_single_indexes_a_netcdf3_object() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/netcdf3/classic_all.nc");
    let tmp = tempfile::tempdir().unwrap();
    let src_file = tmp.path().join("src").join(SRC).join(KEY);
    std::fs::create_dir_all(src_file.parent().unwrap()).unwrap();
    std::fs::copy(&fixture, &src_file).unwrap();
    let dest_dir = tmp.path().join("dest");
    let config = Config {
        source_root: Some(tmp.path().join("src")),
        dest_override: Some(StoreUrl::Local {
            dir: dest_dir.clone(),
        }),
        ..Config::default()
    };
    let p = Pipeline::new(config);
    let dest: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(&dest_dir).unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let out = steps::extract_single(&p, &message(KEY), &*dest, "nos")
            .await
            .expect("extract_single");
        let want_key = format!("nos/{}.zarr", KEY.rsplit('/').next().unwrap());
        assert_eq!(out.written, vec![format!("{}/{want_key}", dest.url())]);
        let (got, _) = dest.get(&want_key).await.unwrap();

        let src: Arc<dyn hdf5_lite::RangeSource> = Arc::new(hdf5_lite::FileSource::new(&fixture));
        let (opened, _) = hdf5_lite::open_any(src.clone(), &hdf5_lite::Options::default())
            .await
            .unwrap();
        assert!(matches!(opened, hdf5_lite::Opened::NetCdf3(_)));
        let mut opts = kerchunk::TranslateOptions::new(format!("s3://{SRC}/{KEY}"));
        opts.inline_threshold = p.config.inline_threshold;
        let t = kerchunk::translate_opened(&opened, &*src, &opts)
            .await
            .unwrap();
        // The pipeline's output is translate's plus the source stamp (the
        // version it was read from), which fsspec ignores.
        let mut got: serde_json::Value = serde_json::from_slice(&got).unwrap();
        let stamp = got
            .as_object_mut()
            .and_then(|o| o.remove("source"))
            .expect("source stamp");
        assert_eq!(stamp["url"], format!("s3://{SRC}/{KEY}"));
        let want: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
        assert_eq!(got, want);
        assert!(t.to_json().contains("temp/.zarray"));
    });
}
