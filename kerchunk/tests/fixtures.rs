//! Translate every HDF5 fixture under `fixtures/files` and write our
//! reference set to `$KERCHUNK_OURS_DIR/<relpath>.json` (default
//! `target/kerchunk-ours`), with url `file://fixture` like the kerchunk
//! goldens, so `tests/python/compare_kerchunk.py` and `readback.py` can check
//! them. Every HDF5 fixture must open and translate (the walker's own
//! correctness is tested in hdf5-lite against h5py goldens).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kerchunk::TranslateOptions;

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn is_hdf5(p: &Path) -> bool {
    let Ok(data) = std::fs::read(p) else {
        return false;
    };
    // signature at 0, 512, 1024, ...
    let mut off = 0usize;
    while off + 8 <= data.len() {
        if &data[off..off + 8] == b"\x89HDF\r\n\x1a\n" {
            return true;
        }
        off = if off == 0 { 512 } else { off * 2 };
    }
    false
}

#[test]
fn translate_all_fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let files_dir = root.join("fixtures/files");
    let out_dir = std::env::var_os("KERCHUNK_OURS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/kerchunk-ours"));
    let mut files = Vec::new();
    walk(&files_dir, &mut files);
    files.sort();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut translated = 0;
    for path in files.iter().filter(|p| is_hdf5(p)) {
        let rel = path
            .strip_prefix(&files_dir)
            .unwrap()
            .to_string_lossy()
            .to_string();
        let source: Arc<dyn hdf5_lite::RangeSource> = Arc::new(hdf5_lite::FileSource::new(path));
        let opened = rt.block_on(hdf5_lite::open(
            source.clone(),
            &hdf5_lite::Options::default(),
        ));
        let file = match opened {
            Ok((f, _)) => f,
            Err(e) => panic!("open failed  {rel}: {e}"),
        };
        let t = rt
            .block_on(kerchunk::translate(
                &file,
                source.as_ref(),
                &TranslateOptions::new("file://fixture"),
            ))
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        let target = out_dir.join(format!("{rel}.json"));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(&target, t.to_json()).unwrap();
        let mut warn = String::new();
        for w in &t.warnings {
            warn.push_str(&format!("{}\t{}\n", w.path, w.reason));
        }
        std::fs::write(out_dir.join(format!("{rel}.warnings.tsv")), &warn).unwrap();
        println!(
            "ok  {rel}: {} refs, {} warnings",
            t.refs.len(),
            t.warnings.len()
        );
        for w in &t.warnings {
            println!("      {}: {}", w.path, w.reason);
        }
        translated += 1;
    }
    println!(
        "{translated} fixtures translated into {}",
        out_dir.display()
    );
    assert!(translated >= 35, "only {translated} fixtures translated");
}
