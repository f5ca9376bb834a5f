//! Unit tests of the combine algorithm on small synthetic inputs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hdf5_lite::source::{BoxFuture, SourceErrorKind};
use hdf5_lite::{MemorySource, RangeSource, SourceError};

use super::*;

fn zarray(shape: &[u64], chunks: &[u64], dtype: &str, fill: &str) -> Ref {
    Ref::Text(format!(
        r#"{{"chunks":{chunks:?},"compressor":null,"dtype":"{dtype}","fill_value":{fill},"filters":null,"order":"C","shape":{shape:?},"zarr_format":2}}"#
    ))
}
fn zattrs(dims: &[&str]) -> Ref {
    Ref::Text(format!(r#"{{"_ARRAY_DIMENSIONS":{:?},"units":"x"}}"#, dims))
}
fn range(url: &str, offset: u64, length: u64) -> Ref {
    Ref::Range {
        url: url.into(),
        offset,
        length,
    }
}

/// A small ROMS-like input: `t` (times, inline, chunk 512), `zeta(t, y)`
/// chunks `[1, 2]` of shape `[n, 4]`, `h(y)`, `y(y)` coordinate,
/// `it(t)` int32 with chunk 1024 (overhang), `dt` scalar.
fn input(url: &str, times: &[f64]) -> RefSet {
    let n = times.len() as u64;
    let mut s = RefSet::new();
    s.insert(".zgroup", Ref::Text(r#"{"zarr_format":2}"#.into()));
    s.insert(".zattrs", Ref::Text(r#"{"title":"x"}"#.into()));
    s.insert("t/.zarray", zarray(&[n], &[512], "<f8", "null"));
    s.insert("t/.zattrs", zattrs(&["t"]));
    let mut b = Vec::new();
    for t in times {
        b.extend_from_slice(&t.to_le_bytes());
    }
    b.resize(512 * 8, 0);
    s.insert("t/0", Ref::Binary(b));
    s.insert("zeta/.zarray", zarray(&[n, 4], &[1, 2], "<f4", "1e37"));
    s.insert("zeta/.zattrs", zattrs(&["t", "y"]));
    for j in 0..n {
        s.insert(format!("zeta/{j}.0"), range(url, 1000 + 100 * j, 8));
        s.insert(format!("zeta/{j}.1"), range(url, 1050 + 100 * j, 800));
    }
    s.insert("h/.zarray", zarray(&[4], &[4], "<f8", "null"));
    s.insert("h/.zattrs", zattrs(&["y"]));
    s.insert("h/0", range(url, 10, 32));
    s.insert("y/.zarray", zarray(&[4], &[4], "<f8", "null"));
    s.insert("y/.zattrs", zattrs(&["y"]));
    s.insert("y/0", range(url, 50, 32));
    s.insert("it/.zarray", zarray(&[n], &[1024], "<i4", "null"));
    s.insert("it/.zattrs", zattrs(&["t"]));
    s.insert("it/0", range(url, 5000, 4096));
    s.insert("dt/.zarray", zarray(&[], &[], "<f8", "0.0"));
    s.insert("dt/.zattrs", zattrs(&[]));
    s.insert("dt/0", Ref::Binary(10f64.to_le_bytes().to_vec()));
    s
}

fn named(sets: Vec<(&str, RefSet)>) -> Vec<(String, RefSet)> {
    sets.into_iter().map(|(n, s)| (n.to_string(), s)).collect()
}

fn times_of(out: &RefSet) -> Vec<f64> {
    let b = out.get("t/0").and_then(Ref::inline_bytes).unwrap();
    b.chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn url_of(out: &RefSet, key: &str) -> String {
    match out.get(key) {
        Some(Ref::Range { url, .. }) => url.clone(),
        other => panic!("{key}: {other:?}"),
    }
}

#[test]
fn concatenates_sorted_and_renumbers() {
    let ins = named(vec![
        ("c", input("u:c", &[30.0])),
        ("a", input("u:a", &[10.0])),
        ("b", input("u:b", &[20.0])),
    ]);
    let out = combine(&ins, &CombineOptions::new("t")).unwrap();
    assert_eq!(times_of(&out), vec![10.0, 20.0, 30.0]);
    assert_eq!(
        out.get("t/.zarray"),
        Some(&Ref::Text(
            r#"{"chunks":[3],"compressor":null,"dtype":"<f8","fill_value":null,"filters":null,"order":"C","shape":[3],"zarr_format":2}"#.into()
        ))
    );
    assert_eq!(
        out.get_json("t/.zattrs").unwrap().unwrap().to_compact(),
        r#"{"_ARRAY_DIMENSIONS":["t"],"units":"x"}"#
    );
    assert_eq!(url_of(&out, "zeta/0.0"), "u:a");
    assert_eq!(url_of(&out, "zeta/1.1"), "u:b");
    assert_eq!(url_of(&out, "zeta/2.0"), "u:c");
    let z = out.get_json("zeta/.zarray").unwrap().unwrap();
    assert_eq!(z.get("shape").unwrap().to_compact(), "[3,4]");
    assert_eq!(z.get("chunks").unwrap().to_compact(), "[1,2]");
    // static and coordinate arrays from the earliest input (not the
    // first listed), unchanged
    assert_eq!(url_of(&out, "h/0"), "u:a");
    assert_eq!(url_of(&out, "y/0"), "u:a");
    assert_eq!(out.get("dt/0"), ins[0].1.get("dt/0"));
    assert_eq!(
        out.get("h/.zarray"),
        ins[0].1.get("h/.zarray"),
        "static .zarray untouched"
    );
    assert!(out.get(".zgroup").is_some());
    assert!(out.get(".zattrs").is_some());
    // overhanging int chunk trimmed to 4 bytes, chunk 1
    assert_eq!(out.get("it/1"), Some(&range("u:b", 5000, 4)));
    let it = out.get_json("it/.zarray").unwrap().unwrap();
    assert_eq!(it.get("chunks").unwrap().to_compact(), "[1]");
    assert_eq!(it.get("shape").unwrap().to_compact(), "[3]");
    // deterministic and independent of input order
    let mut rev = ins.clone();
    rev.reverse();
    let out2 = combine(&rev, &CombineOptions::new("t")).unwrap();
    assert_eq!(times_of(&out2), times_of(&out));
    assert_eq!(out2.get("zeta/2.1"), out.get("zeta/2.1"));
}

#[test]
fn multi_value_inputs_and_partial_last_chunk() {
    let no_it = |mut s: RefSet| {
        s.refs.retain(|k, _| !k.starts_with("it/"));
        s
    };
    let ins = named(vec![
        ("a", no_it(input("u:a", &[1.0, 2.0]))),
        ("b", no_it(input("u:b", &[3.0, 4.0, 5.0]))),
    ]);
    let out = combine(&ins, &CombineOptions::new("t")).unwrap();
    assert_eq!(times_of(&out), vec![1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(url_of(&out, "zeta/1.0"), "u:a");
    assert_eq!(url_of(&out, "zeta/4.1"), "u:b");
    // `it` (chunk 1024) trims to the extent: 2 in a, 3 in b
    let ins = named(vec![
        ("a", input("u:a", &[1.0, 2.0])),
        ("b", input("u:b", &[3.0, 4.0, 5.0])),
    ]);
    let msg = combine(&ins, &CombineOptions::new("t"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("b: it:") && msg.contains("chunk size along t"),
        "{msg}"
    );
    // equal extents: output chunk 2
    let ins = named(vec![
        ("b", input("u:b", &[3.0, 4.0])),
        ("a", input("u:a", &[1.0, 2.0])),
    ]);
    let out = combine(&ins, &CombineOptions::new("t")).unwrap();
    assert_eq!(out.get("it/1"), Some(&range("u:b", 5000, 8)));
    // a partial chunk in the middle is rejected
    let mut a = input("u:a", &[1.0, 2.0, 3.0]);
    a.insert("zeta/.zarray", zarray(&[3, 4], &[2, 2], "<f4", "1e37"));
    let mut b = input("u:b", &[4.0, 5.0]);
    b.insert("zeta/.zarray", zarray(&[2, 4], &[2, 2], "<f4", "1e37"));
    let ins = named(vec![("a", no_it(a)), ("b", no_it(b))]);
    let msg = combine(&ins, &CombineOptions::new("t"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("partial chunk"), "{msg}");
}

#[test]
fn duplicates_last_or_first_wins() {
    let no_it = |mut s: RefSet| {
        s.refs.retain(|k, _| !k.starts_with("it/"));
        s
    };
    let ins = named(vec![
        ("a", no_it(input("u:a", &[1.0, 2.0]))),
        ("b", no_it(input("u:b", &[2.0, 3.0]))),
    ]);
    let out = combine(&ins, &CombineOptions::new("t")).unwrap();
    assert_eq!(times_of(&out), vec![1.0, 2.0, 3.0]);
    assert_eq!(url_of(&out, "zeta/0.0"), "u:a");
    assert_eq!(url_of(&out, "zeta/1.0"), "u:b");
    assert_eq!(url_of(&out, "zeta/1.1"), "u:b");
    assert_eq!(url_of(&out, "zeta/2.0"), "u:b");
    let mut o = CombineOptions::new("t");
    o.duplicates = Duplicates::FirstWins;
    let out = combine(&ins, &o).unwrap();
    assert_eq!(url_of(&out, "zeta/1.0"), "u:a");
    assert_eq!(url_of(&out, "zeta/2.0"), "u:b");
    // exact duplicate input
    let ins = named(vec![
        ("a", input("u:a", &[1.0])),
        ("a2", input("u:a2", &[1.0])),
    ]);
    let out = combine(&ins, &CombineOptions::new("t")).unwrap();
    assert_eq!(times_of(&out), vec![1.0]);
    assert_eq!(url_of(&out, "zeta/0.0"), "u:a2");
}

#[test]
fn stack_mode_is_mzz() {
    let ins = named(vec![
        ("b", input("u:b", &[2.0])),
        ("a", input("u:a", &[1.0])),
    ]);
    let mut o = CombineOptions::new("t");
    o.static_vars = StaticVars::Stack;
    o.identical_dims = vec!["y".into()];
    let out = combine(&ins, &o).unwrap();
    assert_eq!(url_of(&out, "h/0.0"), "u:a");
    assert_eq!(url_of(&out, "h/1.0"), "u:b");
    assert!(out.get("h/0").is_none());
    let h = out.get_json("h/.zarray").unwrap().unwrap();
    assert_eq!(h.get("shape").unwrap().to_compact(), "[2,4]");
    assert_eq!(h.get("chunks").unwrap().to_compact(), "[1,4]");
    assert_eq!(
        out.get_json("h/.zattrs").unwrap().unwrap().to_compact(),
        r#"{"_ARRAY_DIMENSIONS":["t","y"],"units":"x"}"#
    );
    assert!(out.get("dt/0").is_some() && out.get("dt/1").is_some());
    assert_eq!(
        out.get_json("dt/.zattrs").unwrap().unwrap().to_compact(),
        r#"{"_ARRAY_DIMENSIONS":["t"],"units":"x"}"#
    );
    // coordinates come from the earliest input, whatever the listing order
    assert_eq!(url_of(&out, "y/0"), "u:a");
}

#[test]
fn rejects_inconsistent_inputs_naming_input_and_variable() {
    let base = || input("u:a", &[1.0]);
    type Edit = Box<dyn Fn(&mut RefSet)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "dtype",
            Box::new(|s: &mut RefSet| {
                s.insert("zeta/.zarray", zarray(&[1, 4], &[1, 2], "<f8", "1e37"))
            }),
            "dtype",
        ),
        (
            "fill",
            Box::new(|s: &mut RefSet| {
                s.insert("zeta/.zarray", zarray(&[1, 4], &[1, 2], "<f4", "0.0"))
            }),
            "fill_value",
        ),
        (
            "shape",
            Box::new(|s: &mut RefSet| {
                s.insert("zeta/.zarray", zarray(&[1, 6], &[1, 2], "<f4", "1e37"))
            }),
            "shape (other dims)",
        ),
        (
            "chunks",
            Box::new(|s: &mut RefSet| {
                s.insert("zeta/.zarray", zarray(&[1, 4], &[1, 4], "<f4", "1e37"))
            }),
            "chunks (other dims)",
        ),
        (
            "codec",
            Box::new(|s: &mut RefSet| {
                s.insert("zeta/.zarray", Ref::Text(r#"{"chunks":[1,2],"compressor":{"id":"zlib","level":4},"dtype":"<f4","fill_value":1e37,"filters":null,"order":"C","shape":[1,4],"zarr_format":2}"#.into()))
            }),
            "compressor",
        ),
        (
            "static shape",
            Box::new(|s: &mut RefSet| s.insert("h/.zarray", zarray(&[5], &[5], "<f8", "null"))),
            "shape",
        ),
        (
            "coord dtype",
            Box::new(|s: &mut RefSet| {
                s.insert("t/.zarray", zarray(&[1], &[512], "<i8", "null"));
                s.insert("t/0", Ref::Binary(3i64.to_le_bytes().to_vec()));
            }),
            "dtype",
        ),
    ];
    for (label, f, what) in cases {
        let mut bad = input("u:bad", &[2.0]);
        f(&mut bad);
        let e = combine(
            &named(vec![("first.json", base()), ("bad.json", bad)]),
            &CombineOptions::new("t"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("bad.json: "), "{label}: {e}");
        assert!(e.contains(what), "{label}: {e}");
    }
}

#[test]
fn rejects_interleaved_unsorted_missing_and_nan() {
    let e = combine(
        &named(vec![
            ("a", input("u:a", &[1.0, 3.0])),
            ("b", input("u:b", &[2.0])),
        ]),
        &CombineOptions::new("t"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("interleaved"), "{e}");
    let e = combine(
        &named(vec![("a", input("u:a", &[3.0, 1.0]))]),
        &CombineOptions::new("t"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("strictly increasing"), "{e}");
    let e = combine(
        &named(vec![("a", input("u:a", &[f64::NAN]))]),
        &CombineOptions::new("t"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("NaN"), "{e}");
    let mut s = input("u:a", &[1.0]);
    s.refs.retain(|k, _| !k.starts_with("t/"));
    let e = combine(&named(vec![("a", s)]), &CombineOptions::new("t")).unwrap_err();
    assert!(matches!(e, CombineError::NoCoordinate { .. }), "{e}");
    assert!(matches!(
        combine(&[], &CombineOptions::new("t")),
        Err(CombineError::NoInputs)
    ));
    // a chunk reference below the extent cannot be trimmed
    let mut s = input("u:a", &[1.0]);
    s.insert("it/0", range("u:a", 5000, 2));
    assert!(combine(&named(vec![("a", s)]), &CombineOptions::new("t")).is_err());
}

/// In-memory objects by URL; counts resolves (one per URL per fetch pass).
struct Mem(HashMap<String, Vec<u8>>, Mutex<usize>);
impl Resolver for Mem {
    fn resolve<'a>(
        &'a self,
        url: &'a str,
    ) -> BoxFuture<'a, Result<Arc<dyn RangeSource>, SourceError>> {
        Box::pin(async move {
            if let Ok(mut n) = self.1.lock() {
                *n += 1;
            }
            let d = self
                .0
                .get(url)
                .ok_or_else(|| SourceError::new(SourceErrorKind::NotFound, "no such url"))?;
            let src: Arc<dyn RangeSource> = Arc::new(MemorySource::new(url, d.clone()));
            Ok(src)
        })
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn remote_coordinates_are_fetched() {
    let mut files = HashMap::new();
    let mut ins = Vec::new();
    for (i, t) in [5.0f64, 4.0].iter().enumerate() {
        let url = format!("mem:{i}");
        let mut s = input(&url, &[*t]);
        let mut data = vec![0u8; 6000];
        data[100..108].copy_from_slice(&t.to_le_bytes());
        s.insert("t/0", range(&url, 100, 4096));
        files.insert(url.clone(), data);
        ins.push((url, s));
    }
    let o = CombineOptions::new("t");
    let e = combine(&ins, &o).unwrap_err();
    assert!(matches!(e, CombineError::NeedsFetch { .. }), "{e}");
    let want = coordinate_ranges(&ins, &o).unwrap();
    assert_eq!(
        want[0],
        FetchRange {
            url: "mem:0".into(),
            offset: 100,
            length: 8
        }
    );
    let mem = Mem(files, Mutex::new(0));
    let out = block_on(combine_fetching(&ins, &o, &mem)).unwrap();
    assert_eq!(times_of(&out), vec![4.0, 5.0]);
    // zeta/*.0 (8 bytes) and it/* (4 bytes after trimming) were inlined
    assert!(matches!(
        out.get("zeta/0.0"),
        Some(Ref::Text(_) | Ref::Binary(_))
    ));
    assert!(matches!(
        out.get("it/1"),
        Some(Ref::Text(_) | Ref::Binary(_))
    ));
    assert_eq!(url_of(&out, "zeta/0.1"), "mem:1");
    // 2 urls x 2 passes
    assert_eq!(*mem.1.lock().unwrap(), 4);
    let mut no_inline = o.clone();
    no_inline.inline_threshold = 0;
    let out = block_on(combine_fetching(&ins, &no_inline, &mem)).unwrap();
    assert_eq!(url_of(&out, "zeta/0.0"), "mem:1");
}

#[test]
fn coordinate_codecs_and_types() {
    // big-endian int32 coordinate, zlib compressed
    let mut s = input("u:a", &[1.0]);
    s.refs.retain(|k, _| !k.starts_with("it/"));
    let raw: Vec<u8> = [7i32, 9].iter().flat_map(|v| v.to_be_bytes()).collect();
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(4));
    std::io::Write::write_all(&mut enc, &raw).unwrap();
    s.insert("t/.zarray", Ref::Text(r#"{"chunks":[2],"compressor":{"id":"zlib","level":4},"dtype":">i4","fill_value":-1,"filters":null,"order":"C","shape":[2],"zarr_format":2}"#.into()));
    s.insert("t/0", Ref::Binary(enc.finish().unwrap()));
    s.insert("zeta/.zarray", zarray(&[2, 4], &[1, 2], "<f4", "1e37"));
    let out = combine(&named(vec![("a", s)]), &CombineOptions::new("t")).unwrap();
    let z = out.get_json("t/.zarray").unwrap().unwrap();
    assert_eq!(z.get("dtype").unwrap().to_compact(), r#""<i4""#);
    assert_eq!(z.get("fill_value"), Some(&Json::Null));
    let b = out.get("t/0").and_then(Ref::inline_bytes).unwrap();
    assert_eq!(b.as_ref(), &[7, 0, 0, 0, 9, 0, 0, 0]);
}

#[test]
fn linear_time_144_inputs() {
    let ins: Vec<(String, RefSet)> = (0..144)
        .map(|i| (format!("f{i}"), input(&format!("u:{i}"), &[f64::from(i)])))
        .collect();
    let out = combine(&ins, &CombineOptions::new("t")).unwrap();
    assert_eq!(times_of(&out).len(), 144);
    assert_eq!(url_of(&out, "zeta/143.1"), "u:143");
}

#[test]
fn hostile_coordinate_shape_does_not_hang() {
    // 2^64-1 one-value chunks declared, none present: an error, at once
    let mut s = input("u:a", &[1.0]);
    s.insert("t/.zarray", zarray(&[u64::MAX], &[1], "<f8", "null"));
    s.refs.remove("t/0");
    let ins = named(vec![("a", s)]);
    let o = CombineOptions::new("t");
    assert!(coordinate_ranges(&ins, &o).unwrap().is_empty());
    let e = combine(&ins, &o).unwrap_err().to_string();
    assert!(e.contains("chunk t/0 is missing"), "{e}");
}
