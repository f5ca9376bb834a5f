use super::*;
use crate::attrs::tests::{attr, f4, fixed_str, i4, simple};
use crate::dims::tests::ds;
use hdf5_lite::{Attribute, Chunk, ChunkIndexKind, Dataspace, FillValue, Filter, MemorySource};

fn group(path: &str, address: u64, attributes: Vec<Attribute>, datasets: Vec<Dataset>) -> Group {
    Group {
        path: path.into(),
        address,
        attributes,
        groups: vec![],
        datasets,
        datatypes: vec![],
        other_links: vec![],
    }
}

fn file(root: Group) -> File {
    File {
        source: "mem".into(),
        size: 1 << 16,
        superblock_version: 2,
        size_of_offsets: 8,
        size_of_lengths: 8,
        base_address: 0,
        root,
    }
}

fn s(x: &str) -> Value {
    Value::Str(x.into())
}

fn scale_attrs(name: &str, dimid: i64) -> Vec<Attribute> {
    vec![
        attr(
            "CLASS",
            fixed_str(16),
            Dataspace::Scalar,
            vec![s("DIMENSION_SCALE")],
        ),
        attr("NAME", fixed_str(8), Dataspace::Scalar, vec![s(name)]),
        attr(
            "_Netcdf4Dimid",
            i4(),
            Dataspace::Scalar,
            vec![Value::Int(dimid)],
        ),
    ]
}

fn dimlist(addrs: &[u64]) -> Attribute {
    attr(
        "DIMENSION_LIST",
        i4(),
        simple(&[addrs.len() as u64]),
        addrs
            .iter()
            .map(|a| Value::Vlen(vec![Value::ObjectRef(*a)]))
            .collect(),
    )
}

fn chunk(offset: &[u64], address: u64, size: u64) -> Chunk {
    Chunk {
        offset: offset.to_vec(),
        address,
        size,
        filter_mask: 0,
    }
}

/// A byte pattern where position i holds (i % 251) as u8.
fn memory() -> MemorySource {
    let data: Vec<u8> = (0..(1u32 << 16)).map(|i| (i % 251) as u8).collect();
    MemorySource::new("mem", data)
}

fn run(f: &File, opts: &TranslateOptions) -> Translation {
    let src = memory();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(translate(f, &src, opts)).unwrap()
}

fn meta(t: &Translation, key: &str) -> Json {
    t.refs.get_json(key).unwrap().unwrap()
}

fn netcdf_like() -> File {
    // /x: coordinate variable (scale) 4 x f4, contiguous at 1000 (16 bytes)
    let mut x = ds("/x", 100, scale_attrs("x", 0));
    x.datatype = f4();
    x.dataspace = simple(&[4]);
    x.layout = Layout::Contiguous {
        address: Some(1000),
        size: 16,
    };
    x.fill_value = FillValue {
        value: Some(9.96921e36f32.to_le_bytes().to_vec()),
        user_defined: true,
        ..FillValue::default()
    };
    // /y: dimension without a variable: skipped like kerchunk
    let mut y = ds("/y", 200, scale_attrs("y", 1));
    y.dataspace = simple(&[3]);
    // /v(x, y) chunked 2x2 f4, with _FillValue; 3 of 4 chunks stored
    let mut v = ds(
        "/v",
        300,
        vec![
            attr(
                "_Netcdf4Coordinates",
                i4(),
                simple(&[2]),
                vec![Value::Int(0), Value::Int(1)],
            ),
            dimlist(&[100, 200]),
            attr(
                "_FillValue",
                f4(),
                simple(&[1]),
                vec![Value::Float(f64::from(1e37f32))],
            ),
            attr("units", fixed_str(1), Dataspace::Scalar, vec![s("m")]),
            attr("scale", f4(), simple(&[1]), vec![Value::Float(f64::NAN)]),
        ],
    );
    v.datatype = f4();
    v.dataspace = simple(&[4, 3]);
    v.layout = Layout::Chunked {
        chunk_shape: vec![2, 2],
        index: ChunkIndexKind::BTreeV1,
        chunks: vec![
            chunk(&[0, 0], 2000, 16),
            chunk(&[0, 2], 3000, 600),
            chunk(&[2, 2], 4000, 16),
        ],
    };
    // /n: netCDF variable without _FillValue, incomplete -> HDF5 fill
    let mut n = ds(
        "/n",
        400,
        vec![
            attr(
                "_Netcdf4Coordinates",
                i4(),
                simple(&[1]),
                vec![Value::Int(0)],
            ),
            dimlist(&[100]),
        ],
    );
    n.dataspace = simple(&[4]);
    n.layout = Layout::Chunked {
        chunk_shape: vec![2],
        index: ChunkIndexKind::FixedArray,
        chunks: vec![chunk(&[0], 5000, 8)],
    };
    n.fill_value = FillValue {
        value: Some((-2147483647i32).to_le_bytes().to_vec()),
        user_defined: true,
        ..FillValue::default()
    };
    // /c: same but complete -> null like kerchunk
    let mut c = n.clone();
    c.path = "/c".into();
    c.address = 500;
    c.layout = Layout::Chunked {
        chunk_shape: vec![2],
        index: ChunkIndexKind::FixedArray,
        chunks: vec![chunk(&[0], 5000, 8), chunk(&[2], 5008, 8)],
    };
    // /s: plain HDF5 scalar, compact
    let mut sc = ds("/s", 600, vec![]);
    sc.dataspace = Dataspace::Scalar;
    sc.layout = Layout::Compact {
        data: vec![0xff, 0xff, 0xff, 0x7f],
        size: 4,
    };
    let mut root = group(
        "/",
        96,
        vec![
            attr(
                "_NCProperties",
                fixed_str(30),
                Dataspace::Scalar,
                vec![s("version=2")],
            ),
            attr("title", fixed_str(5), Dataspace::Scalar, vec![s("hello")]),
        ],
        vec![x, y, v, n, c, sc],
    );
    let mut sub = group("/grp", 700, vec![], vec![]);
    let mut g = ds("/grp/z", 800, vec![]);
    g.dataspace = simple(&[2]);
    g.layout = Layout::Contiguous {
        address: Some(6000),
        size: 8,
    };
    sub.datasets.push(g);
    root.groups.push(sub);
    file(root)
}

#[test]
fn netcdf_like_file() {
    let f = netcdf_like();
    let t = run(&f, &TranslateOptions::new("s3://b/k.nc"));
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    let keys: Vec<&str> = t.refs.refs.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        vec![
            ".zattrs",
            ".zgroup",
            "c/.zarray",
            "c/.zattrs",
            "c/0",
            "c/1",
            "grp/.zgroup",
            "grp/z/.zarray",
            "grp/z/.zattrs",
            "grp/z/0",
            "n/.zarray",
            "n/.zattrs",
            "n/0",
            "s/.zarray",
            "s/.zattrs",
            "s/0",
            "v/.zarray",
            "v/.zattrs",
            "v/0.0",
            "v/0.1",
            "v/1.1",
            "x/.zarray",
            "x/.zattrs",
            "x/0",
        ]
    );
    assert_eq!(meta(&t, ".zattrs").to_compact(), r#"{"title":"hello"}"#);
    assert_eq!(
        meta(&t, "v/.zarray").to_compact(),
        r#"{"chunks":[2,2],"compressor":null,"dtype":"<f4","fill_value":9.999999933815813e+36,"filters":null,"order":"C","shape":[4,3],"zarr_format":2}"#
    );
    assert_eq!(
        t.refs.get("v/.zattrs"),
        Some(&Ref::Text(
            r#"{"_ARRAY_DIMENSIONS":["x","y"],"scale":NaN,"units":"m"}"#.into()
        ))
    );
    // small chunks inline (bytes at 2000..2016 of the pattern), big as ranges
    let expect: Vec<u8> = (2000u32..2016).map(|i| (i % 251) as u8).collect();
    assert_eq!(t.refs.get("v/0.0"), Some(&Ref::inline(&expect)));
    assert_eq!(
        t.refs.get("v/0.1"),
        Some(&Ref::Range {
            url: "s3://b/k.nc".into(),
            offset: 3000,
            length: 600
        })
    );
    // scale: its own name, netCDF var complete -> null fill
    assert_eq!(
        meta(&t, "x/.zattrs").to_compact(),
        r#"{"_ARRAY_DIMENSIONS":["x"]}"#
    );
    assert_eq!(meta(&t, "x/.zarray").get("fill_value"), Some(&Json::Null));
    assert_eq!(meta(&t, "c/.zarray").get("fill_value"), Some(&Json::Null));
    // incomplete netCDF var -> HDF5 (netCDF default) fill
    assert_eq!(
        meta(&t, "n/.zarray").get("fill_value"),
        Some(&Json::Int(-2147483647))
    );
    // compact scalar: inline, chunks [], key "s/0", fill null
    assert_eq!(
        meta(&t, "s/.zarray").to_compact(),
        r#"{"chunks":[],"compressor":null,"dtype":"<i4","fill_value":null,"filters":null,"order":"C","shape":[],"zarr_format":2}"#
    );
    assert_eq!(
        t.refs.get("s/0"),
        Some(&Ref::Binary(vec![0xff, 0xff, 0xff, 0x7f]))
    );
    // plain HDF5 dataset without fill, fully stored: null, phony dims
    assert_eq!(
        meta(&t, "grp/z/.zarray").get("fill_value"),
        Some(&Json::Null)
    );
    assert_eq!(
        meta(&t, "grp/z/.zattrs").to_compact(),
        r#"{"_ARRAY_DIMENSIONS":["phony_dim_0"]}"#
    );
    // deterministic
    let again = run(&f, &TranslateOptions::new("s3://b/k.nc"));
    assert_eq!(again.refs.to_json(), t.refs.to_json());
    // inline threshold 0 disables inlining
    let t0 = run(
        &f,
        &TranslateOptions {
            inline_threshold: 0,
            ..TranslateOptions::new("u")
        },
    );
    assert!(matches!(t0.refs.get("v/0.0"), Some(Ref::Range { .. })));
}

#[test]
fn unrepresentable_datasets_warn_and_emit_nothing() {
    let mut bad = Vec::new();
    let mut d = ds("/virt", 1, vec![]);
    d.layout = Layout::Virtual;
    bad.push(d);
    let mut d = ds("/ext", 2, vec![]);
    d.layout = Layout::External { files: vec![] };
    bad.push(d);
    let mut d = ds("/err", 3, vec![]);
    d.error = Some("corrupt B-tree".into());
    bad.push(d);
    let mut d = ds("/szip", 4, vec![]);
    d.layout = Layout::Chunked {
        chunk_shape: vec![1, 3],
        index: ChunkIndexKind::BTreeV1,
        chunks: vec![chunk(&[0, 0], 100, 12)],
    };
    d.filters = vec![Filter {
        id: 4,
        name: Some("szip".into()),
        optional: false,
        client_data: vec![],
    }];
    bad.push(d);
    let mut d = ds("/vseq", 5, vec![]);
    d.datatype = Datatype::VlenSequence {
        size: 16,
        base: Box::new(i4()),
    };
    bad.push(d);
    // vlen strings whose values cannot be read (data past the end of the
    // source); unwritten ones read as "" and are embedded
    let mut d = ds("/vstr", 6, vec![]);
    d.datatype = crate::attrs::tests::vlen_str();
    d.layout = Layout::Contiguous {
        address: Some(1 << 20),
        size: 96,
    };
    bad.push(d);
    let f = file(group("/", 96, vec![], bad));
    let t = run(&f, &TranslateOptions::new("u"));
    let keys: Vec<&str> = t.refs.refs.keys().map(String::as_str).collect();
    assert_eq!(keys, vec![".zgroup"]);
    let paths: Vec<&str> = t.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        paths,
        vec!["/virt", "/ext", "/err", "/szip", "/vseq", "/vstr"]
    );
    assert!(t.warnings[3].reason.contains("szip"));
    assert!(
        t.warnings[5].reason.contains("truncated"),
        "{:?}",
        t.warnings[5]
    );
}

#[test]
fn masked_chunk_is_reencoded_inline() {
    // pipeline shuffle+deflate; chunk 0 normal, chunk 1 stored without deflate
    let raw: Vec<u8> = (0..24u8).collect();
    let shuffled = codecs::shuffle(&raw, 4);
    let mut data = vec![0u8; 64];
    data.extend_from_slice(&shuffled);
    let src = MemorySource::new("m", data);
    let mut d = ds("/v", 1, vec![]);
    d.dataspace = simple(&[12]);
    d.layout = Layout::Chunked {
        chunk_shape: vec![6],
        index: ChunkIndexKind::BTreeV1,
        chunks: vec![
            chunk(&[0], 0, 20),
            Chunk {
                offset: vec![6],
                address: 64,
                size: 24,
                filter_mask: 0b10,
            },
        ],
    };
    d.filters = vec![
        Filter {
            id: 2,
            name: Some("shuffle".into()),
            optional: false,
            client_data: vec![4],
        },
        Filter {
            id: 1,
            name: Some("deflate".into()),
            optional: true,
            client_data: vec![4],
        },
    ];
    let f = file(group("/", 96, vec![], vec![d.clone()]));
    let opts = TranslateOptions {
        inline_threshold: 0,
        ..TranslateOptions::new("u")
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let t = rt.block_on(translate(&f, &src, &opts)).unwrap();
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    assert_eq!(
        meta(&t, "v/.zarray").get("filters").map(Json::to_compact),
        Some(r#"[{"elementsize":4,"id":"shuffle"},{"id":"zlib","level":4}]"#.into())
    );
    let fixed = t.refs.get("v/1").and_then(|r| r.inline_bytes()).unwrap();
    let mut out = Vec::new();
    use std::io::Read;
    flate2::read::ZlibDecoder::new(&fixed[..])
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(hdf5_lite::data::unshuffle(&out, 4), raw);
    assert!(matches!(t.refs.get("v/0"), Some(Ref::Range { .. })));

    // a cap below the chunk size makes the dataset unrepresentable
    let opts = TranslateOptions {
        max_reencode_bytes: 10,
        ..opts
    };
    let t = rt.block_on(translate(&f, &src, &opts)).unwrap();
    assert_eq!(t.warnings.len(), 1);
    assert!(t.refs.get("v/.zarray").is_none());
    assert!(t.refs.get("v/0").is_none());

    // a corrupt masked chunk removes the whole dataset
    let mut d2 = d;
    d2.filters.push(Filter {
        id: 3,
        name: Some("fletcher32".into()),
        optional: false,
        client_data: vec![],
    });
    let f = file(group("/", 96, vec![], vec![d2]));
    let t = rt
        .block_on(translate(&f, &src, &TranslateOptions::new("u")))
        .unwrap();
    assert_eq!(t.warnings.len(), 1, "{:?}", t.warnings);
    assert!(t.warnings[0].reason.contains("fletcher32"));
    assert!(t.refs.refs.keys().all(|k| !k.starts_with("v/")));
}

#[test]
fn split_contiguous_pieces() {
    assert_eq!(split_rows(&[10, 4], 4, 40), Some(2));
    assert_eq!(split_rows(&[10, 4], 4, 1000), None);
    assert_eq!(split_rows(&[7, 4], 4, 40), Some(1));
    assert_eq!(split_rows(&[12], 8, 40), Some(4));
    let mut d = ds("/big", 1, vec![]);
    d.dataspace = simple(&[10, 4]);
    d.layout = Layout::Contiguous {
        address: Some(1000),
        size: 160,
    };
    let f = file(group("/", 96, vec![], vec![d]));
    let t = run(
        &f,
        &TranslateOptions {
            split_contiguous: Some(40),
            inline_threshold: 0,
            ..TranslateOptions::new("u")
        },
    );
    assert_eq!(
        meta(&t, "big/.zarray").get("chunks").map(Json::to_compact),
        Some("[2,4]".into())
    );
    for i in 0..5u64 {
        assert_eq!(
            t.refs.get(&format!("big/{i}.0")),
            Some(&Ref::Range {
                url: "u".into(),
                offset: 1000 + 32 * i,
                length: 32
            })
        );
    }
}

#[test]
fn fill_value_rules() {
    let z = zarr::zarr_dtype(&f4()).unwrap();
    let mut d = ds("/v", 1, vec![]);
    d.datatype = f4();
    // every chunk stored, no _FillValue: null (nothing to fill, nothing
    // for xarray to mask)
    assert_eq!(fill_value(&d, &z, true), Json::Null);
    // plain HDF5 with absent chunks, no fill defined: zeros (what HDF5 reads)
    assert_eq!(fill_value(&d, &z, false), Json::Float(0.0));
    // plain HDF5 with absent chunks, defined fill
    d.fill_value.value = Some(f32::NAN.to_le_bytes().to_vec());
    d.fill_value.user_defined = true;
    assert_eq!(fill_value(&d, &z, false), Json::Str("NaN".into()));
    assert_eq!(fill_value(&d, &z, true), Json::Null);
    // CF time heuristics: null when complete
    d.attributes.push(attr(
        "units",
        fixed_str(20),
        Dataspace::Scalar,
        vec![s("days since 2000-01-01")],
    ));
    assert_eq!(fill_value(&d, &z, true), Json::Null);
    assert_eq!(fill_value(&d, &z, false), Json::Str("NaN".into()));
    // _FillValue wins, encoded with the dataset dtype
    d.attributes.push(attr(
        "_FillValue",
        i4(),
        simple(&[1]),
        vec![Value::Int(-999)],
    ));
    assert_eq!(fill_value(&d, &z, true), Json::Float(-999.0));
    // integer dataset, float _FillValue (repacked files): the value only
    // when it is exactly a value of the dtype, else what the dataset would
    // have without it, and the attribute stays in .zattrs
    let i2 = hdf5_lite::Datatype::FixedPoint {
        size: 2,
        order: hdf5_lite::ByteOrder::LittleEndian,
        signed: true,
        bit_offset: 0,
        bit_precision: 16,
    };
    let zi = zarr::zarr_dtype(&i2).unwrap();
    let with_fill = |v: f64| {
        let mut d = ds(
            "/i",
            2,
            vec![attr(
                "_FillValue",
                f4(),
                simple(&[1]),
                vec![Value::Float(v)],
            )],
        );
        d.datatype = i2.clone();
        d.fill_value.value = Some((-32767i16).to_le_bytes().to_vec());
        d
    };
    assert_eq!(
        fill_value(&with_fill(-32767.0), &zi, true),
        Json::Int(-32767)
    );
    assert_eq!(
        fill_value(&with_fill(32767.0), &zi, true),
        Json::UInt(32767)
    );
    assert_eq!(attr_fill_kept(&with_fill(-32767.0), &zi), None);
    for bad in [9.969209968386869e36, -7.5, 32768.0, -32769.0, f64::NAN] {
        let d = with_fill(bad);
        assert_eq!(fill_value(&d, &zi, true), Json::Null, "{bad}");
        assert_eq!(fill_value(&d, &zi, false), Json::Int(-32767), "{bad}");
        assert!(attr_fill_kept(&d, &zi).is_some(), "{bad}");
    }
    let zu = zarr::zarr_dtype(&hdf5_lite::Datatype::FixedPoint {
        size: 8,
        order: hdf5_lite::ByteOrder::LittleEndian,
        signed: false,
        bit_offset: 0,
        bit_precision: 64,
    })
    .unwrap();
    assert_eq!(encode_attr_fill(&Value::Int(-1), &zu), None);
    assert_eq!(
        encode_attr_fill(&Value::UInt(u64::MAX), &zu),
        Some(Json::UInt(u64::MAX))
    );
    // a double outside float32's range is not a float32 fill
    assert_eq!(encode_attr_fill(&Value::Float(1e300), &z), None);
    // fixed strings: null when complete; else the stripped fill bytes, or
    // one NUL (reads b"" like netCDF's NC_FILL_CHAR; kerchunk's " " reads b" ")
    let zs = zarr::zarr_dtype(&fixed_str(4)).unwrap();
    let mut st = ds("/s", 3, vec![]);
    st.datatype = fixed_str(4);
    assert_eq!(fill_value(&st, &zs, true), Json::Null);
    assert_eq!(fill_value(&st, &zs, false), Json::Str("AA==".into()));
    st.fill_value.value = Some(b"ab\0\0".to_vec());
    assert_eq!(fill_value(&st, &zs, false), Json::Str("YWI=".into()));
}

#[test]
fn embedded_vlen_chunks() {
    let plan = EmbedPlan {
        vlen_base: None,
        prefix: "g/names".into(),
        shape: vec![3],
        chunks: vec![2],
        meta: Json::Null,
        attrs: Json::Null,
    };
    let out = embed(&plan, &[s("a"), Value::Null, s("é\"")]).unwrap();
    assert_eq!(
        out,
        vec![
            ("g/names/0".to_string(), r#"["a","","|O",[2]]"#.to_string()),
            (
                "g/names/1".to_string(),
                r#"["é\"",null,"|O",[2]]"#.to_string()
            ),
        ]
    );
    let scalar = EmbedPlan {
        vlen_base: None,
        prefix: "t".into(),
        shape: vec![],
        chunks: vec![],
        meta: Json::Null,
        attrs: Json::Null,
    };
    assert_eq!(
        embed(&scalar, &[s("x")]).unwrap(),
        vec![("t/0".to_string(), r#"["x","|O",[]]"#.to_string())]
    );
    let grid = EmbedPlan {
        vlen_base: None,
        prefix: "m".into(),
        shape: vec![2, 3],
        chunks: vec![2, 2],
        meta: Json::Null,
        attrs: Json::Null,
    };
    let vals: Vec<Value> = ["a", "b", "c", "d", "e", "f"]
        .iter()
        .map(|x| s(x))
        .collect();
    // 2-D chunks are nested lists, as numcodecs' JSON codec writes them
    // (`chunk.tolist()`) and needs them (`out[:] = items[:-2]`)
    assert_eq!(
        embed(&grid, &vals).unwrap(),
        vec![
            (
                "m/0.0".to_string(),
                r#"[["a","b"],["d","e"],"|O",[2,2]]"#.to_string()
            ),
            (
                "m/0.1".to_string(),
                r#"[["c",null],["f",null],"|O",[2,2]]"#.to_string()
            ),
        ]
    );
    assert!(embed(&grid, &vals[..5]).is_err());
    assert_eq!(
        json_codec().to_compact(),
        r#"{"allow_nan":true,"check_circular":true,"encoding":"utf-8","ensure_ascii":true,"id":"json2","indent":null,"separators":[",",":"],"skipkeys":false,"sort_keys":true,"strict":true}"#
    );
}

#[test]
fn short_read_is_an_error() {
    let mut d = ds("/v", 1, vec![]);
    d.dataspace = simple(&[2]);
    d.layout = Layout::Contiguous {
        address: Some(100),
        size: 8,
    };
    let f = file(group("/", 96, vec![], vec![d]));
    let src = MemorySource::new("tiny", vec![0u8; 104]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let e = rt
        .block_on(translate(&f, &src, &TranslateOptions::new("u")))
        .unwrap_err();
    assert!(matches!(e, Error::ShortRead { .. }), "{e}");
}

fn unlimited(dims: &[u64], max: &[Option<u64>]) -> Dataspace {
    Dataspace::Simple {
        dims: dims.to_vec(),
        max_dims: max.to_vec(),
    }
}

fn coords(ids: &[i64]) -> Attribute {
    attr(
        "_Netcdf4Coordinates",
        i4(),
        simple(&[ids.len() as u64]),
        ids.iter().map(|i| Value::Int(*i)).collect(),
    )
}

/// netCDF-4 file: unlimited `time` (scale, 5 records, chunks of 1),
/// `late(time, x)` with only 2 records written, chunks (1, 2).
fn unlimited_file(late_fill: FillValue, late_chunk: Vec<u64>) -> File {
    let mut time = ds("/time", 100, scale_attrs("time", 0));
    time.dataspace = unlimited(&[5], &[None]);
    time.layout = Layout::Chunked {
        chunk_shape: vec![1],
        index: ChunkIndexKind::ExtensibleArray,
        chunks: (0..5).map(|i| chunk(&[i], 1000 + 4 * i, 4)).collect(),
    };
    let mut x = ds("/x", 200, scale_attrs("x", 1));
    x.dataspace = simple(&[2]);
    x.layout = Layout::Contiguous {
        address: Some(2000),
        size: 8,
    };
    let mut late = ds("/late", 300, vec![coords(&[0, 1]), dimlist(&[100, 200])]);
    late.dataspace = unlimited(&[2, 2], &[None, Some(2)]);
    let rows = late_chunk[0];
    late.layout = Layout::Chunked {
        chunk_shape: late_chunk,
        index: ChunkIndexKind::ExtensibleArray,
        chunks: (0..2u64.div_ceil(rows))
            .map(|i| chunk(&[i * rows, 0], 3000 + 16 * i, 8 * rows))
            .collect(),
    };
    late.fill_value = late_fill;
    file(group("/", 96, vec![], vec![time, x, late]))
}

fn netcdf_fill() -> FillValue {
    FillValue {
        value: Some((-2147483647i32).to_le_bytes().to_vec()),
        user_defined: true,
        ..FillValue::default()
    }
}

#[test]
fn netcdf_unlimited_dimension_length() {
    // fewer records than the dimension: shape = dimension length, the
    // missing records are absent chunks reading as the netCDF fill
    let t = run(
        &unlimited_file(netcdf_fill(), vec![1, 2]),
        &TranslateOptions::new("u"),
    );
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    let m = meta(&t, "late/.zarray");
    assert_eq!(
        m.get("shape").unwrap().to_compact(),
        "[5,2]",
        "{}",
        m.to_compact()
    );
    assert_eq!(m.get("fill_value"), Some(&Json::Int(-2147483647)));
    assert!(t.refs.get("late/1.0").is_some());
    assert!(t.refs.get("late/2.0").is_none());
    assert_eq!(
        meta(&t, "late/.zattrs").to_compact(),
        r#"{"_ARRAY_DIMENSIONS":["time","x"]}"#
    );
    // the scale itself and the fixed dimension keep their extents
    assert_eq!(
        meta(&t, "time/.zarray").get("shape").unwrap().to_compact(),
        "[5]"
    );
    // a chunk straddling the old extent is fine when HDF5 wrote the fill
    // into its unused part (fill time "if set" with a user-defined fill)
    let t = run(
        &unlimited_file(netcdf_fill(), vec![4, 2]),
        &TranslateOptions::new("u"),
    );
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    assert_eq!(
        meta(&t, "late/.zarray").get("shape").unwrap().to_compact(),
        "[5,2]"
    );
    // ... but not when it never writes fill values: HDF5 extent + warning
    let never = FillValue {
        fill_time: 1,
        ..netcdf_fill()
    };
    let t = run(
        &unlimited_file(never.clone(), vec![4, 2]),
        &TranslateOptions::new("u"),
    );
    assert_eq!(
        meta(&t, "late/.zarray").get("shape").unwrap().to_compact(),
        "[2,2]"
    );
    assert_eq!(t.warnings.len(), 1);
    assert!(
        t.warnings[0].reason.contains("boundary chunk"),
        "{:?}",
        t.warnings
    );
    // aligned chunks do not need it
    let t = run(
        &unlimited_file(never, vec![1, 2]),
        &TranslateOptions::new("u"),
    );
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    assert_eq!(
        meta(&t, "late/.zarray").get("shape").unwrap().to_compact(),
        "[5,2]"
    );
    // no HDF5 fill defined: not extended, warned
    let t = run(
        &unlimited_file(FillValue::default(), vec![1, 2]),
        &TranslateOptions::new("u"),
    );
    assert_eq!(
        meta(&t, "late/.zarray").get("shape").unwrap().to_compact(),
        "[2,2]"
    );
    assert!(
        t.warnings[0].reason.contains("no HDF5 fill value"),
        "{:?}",
        t.warnings
    );
    // not a netCDF file (no _Netcdf4* attributes, no _NCProperties): HDF5 extent
    let mut f = unlimited_file(netcdf_fill(), vec![1, 2]);
    for d in &mut f.root.datasets {
        d.attributes.retain(|a| !a.name.starts_with("_Netcdf4"));
    }
    let t = run(&f, &TranslateOptions::new("u"));
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    assert_eq!(
        meta(&t, "late/.zarray").get("shape").unwrap().to_compact(),
        "[2,2]"
    );
}

#[test]
fn spacepad_strings_are_converted_and_inlined() {
    let mut sp = ds("/sp", 100, vec![]);
    sp.datatype = Datatype::String {
        size: 4,
        padding: hdf5_lite::StringPadding::SpacePad,
        charset: hdf5_lite::CharSet::Ascii,
    };
    sp.dataspace = simple(&[2]);
    sp.layout = Layout::Compact {
        data: b"a b ab  ".to_vec(),
        size: 8,
    };
    let f = file(group("/", 96, vec![], vec![sp.clone()]));
    let t = run(&f, &TranslateOptions::new("u"));
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    assert_eq!(t.refs.get("sp/0"), Some(&Ref::inline(b"a b\0ab\0\0")));
    assert_eq!(
        meta(&t, "sp/.zarray").get("chunks").unwrap().to_compact(),
        "[2]"
    );
    // too large to convert: a warning and no keys
    let t = run(
        &f,
        &TranslateOptions {
            max_reencode_bytes: 4,
            ..TranslateOptions::new("u")
        },
    );
    assert_eq!(t.warnings.len(), 1);
    assert!(t.refs.get("sp/.zarray").is_none());
}

#[test]
fn spacepad_conversion_rule() {
    let mut b = b"ab  \0 x  \0      ".to_vec();
    spacepad_to_nullpad(&mut b, 4);
    // trailing spaces only; embedded NULs and inner spaces stay
    assert_eq!(b, b"ab\0\0\0 x\0 \0\0\0\0\0\0\0".to_vec());
    let mut e = Vec::new();
    spacepad_to_nullpad(&mut e, 0);
    assert!(e.is_empty());
}

#[test]
fn complex_compounds_are_numpy_complex() {
    use hdf5_lite::{ByteOrder, CompoundMember};
    let float = |size: u32, order: ByteOrder| hdf5_lite::Datatype::FloatingPoint {
        size,
        order,
        bit_offset: 0,
        bit_precision: (size * 8) as u16,
        exponent_location: 0,
        exponent_size: 0,
        mantissa_location: 0,
        mantissa_size: 0,
        exponent_bias: 0,
    };
    let cplx = |names: [&str; 2], size: u32, order: ByteOrder| hdf5_lite::Datatype::Compound {
        size: 2 * size,
        members: vec![
            CompoundMember {
                name: names[0].into(),
                offset: 0,
                datatype: float(size, order.clone()),
            },
            CompoundMember {
                name: names[1].into(),
                offset: size,
                datatype: float(size, order.clone()),
            },
        ],
    };
    let z = zarr::zarr_dtype(&cplx(["r", "i"], 4, ByteOrder::LittleEndian)).unwrap();
    assert_eq!(z.json, Json::Str("<c8".into()));
    assert_eq!(z.kind, Kind::Complex);
    let z = zarr::zarr_dtype(&cplx(["r", "i"], 8, ByteOrder::BigEndian)).unwrap();
    assert_eq!(z.json, Json::Str(">c16".into()));
    let mut bytes = 1.5f64.to_be_bytes().to_vec();
    bytes.extend_from_slice(&f64::NAN.to_be_bytes());
    assert_eq!(
        zarr::fill_from_bytes(&z, &bytes),
        Some(Json::Array(vec![Json::Float(1.5), Json::Str("NaN".into())]))
    );
    // other member names stay a structured dtype, as in h5py
    let z = zarr::zarr_dtype(&cplx(["re", "im"], 8, ByteOrder::LittleEndian)).unwrap();
    assert_eq!(z.kind, Kind::Void);
}

/// Vlen sequences of numbers (opt-in): the numcodecs `VLenArray` layout
/// (u32 LE count, then u32 LE byte length + elements per item), and the
/// fixtures that hold them translated with the option on into
/// `target/kerchunk-vlen/<rel>.json`, which `tests/python/check_refs.py`
/// reads back through zarr against h5py.
#[test]
fn vlen_sequences_embed_as_vlen_array() {
    let plan = EmbedPlan {
        vlen_base: Some(zarr::zarr_dtype(&i4()).unwrap()),
        prefix: "r".into(),
        shape: vec![3],
        chunks: vec![2],
        meta: Json::Null,
        attrs: Json::Null,
    };
    let vals = vec![
        Value::Vlen(vec![]),
        Value::Vlen(vec![Value::Int(7), Value::Int(-1)]),
        Value::Vlen(vec![Value::Int(5)]),
    ];
    let out = embed_vlen_array(&plan, &vals, plan.vlen_base.as_ref().unwrap()).unwrap();
    let mut c0 = vec![2, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0];
    c0.extend(7i32.to_le_bytes());
    c0.extend((-1i32).to_le_bytes());
    // the edge chunk's position past the end is an empty sequence
    let mut c1 = vec![2, 0, 0, 0, 4, 0, 0, 0];
    c1.extend(5i32.to_le_bytes());
    c1.extend([0, 0, 0, 0]);
    assert_eq!(out, vec![("r/0".to_string(), c0), ("r/1".to_string(), c1)]);
    // a value that does not fit the base type is an error, not a wrap
    let bad = vec![
        Value::Vlen(vec![Value::Int(1 << 40)]),
        Value::Null,
        Value::Null,
    ];
    assert!(embed_vlen_array(&plan, &bad, plan.vlen_base.as_ref().unwrap()).is_err());

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out_dir = root.join("target/kerchunk-vlen");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for rel in ["realfile_types.h5", "netcdf4_features.nc"] {
        let path = root.join("fixtures/files").join(rel);
        let src: std::sync::Arc<dyn RangeSource> =
            std::sync::Arc::new(hdf5_lite::FileSource::new(&path));
        let (f, _) = rt
            .block_on(hdf5_lite::open(src.clone(), &hdf5_lite::Options::default()))
            .unwrap();
        let opts = TranslateOptions {
            vlen_sequences: true,
            ..TranslateOptions::new("file://fixture")
        };
        let t = rt.block_on(translate(&f, src.as_ref(), &opts)).unwrap();
        assert!(
            t.warnings.iter().all(|w| !w.reason.contains("vlen")),
            "{rel}: {:?}",
            t.warnings
        );
        std::fs::create_dir_all(&out_dir).unwrap();
        std::fs::write(out_dir.join(format!("{rel}.json")), t.to_json()).unwrap();
    }
}

/// n-bit / scale-offset datasets (no numcodecs codec) are decoded and
/// inlined up to `max_reencode_bytes` decoded bytes, else warned about.
/// (The inlined bytes are read back against h5py by check_refs.py.)
#[test]
fn nbit_and_scaleoffset_are_decoded_when_small() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = root.join("fixtures/files/realfile_filters.h5");
    let src: std::sync::Arc<dyn RangeSource> =
        std::sync::Arc::new(hdf5_lite::FileSource::new(&path));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (f, _) = rt
        .block_on(hdf5_lite::open(src.clone(), &hdf5_lite::Options::default()))
        .unwrap();
    let names = [
        "nbit_int",
        "nbit_i4_be24",
        "scaleoffset_float",
        "scaleoffset_u2_fill",
    ];
    let t = rt
        .block_on(translate(&f, src.as_ref(), &TranslateOptions::new("x")))
        .unwrap();
    for n in names {
        assert!(t.warnings.iter().all(|w| !w.path.contains(n)), "{n}");
        let m = meta(&t, &format!("{n}/.zarray"));
        assert_eq!(m.get("filters"), Some(&Json::Null), "{n}");
        let chunk = t
            .refs
            .refs
            .get(&format!("{n}/0.0"))
            .or(t.refs.refs.get(&format!("{n}/0")));
        assert!(
            matches!(chunk, Some(Ref::Binary(_) | Ref::Text(_))),
            "{n}: {chunk:?}"
        );
    }
    // nbit_i4_be24 decodes to 40*25*4 = 4000 bytes: over a 3999-byte limit it
    // is a warning, and nothing of it is written
    let opts = TranslateOptions {
        max_reencode_bytes: 3999,
        ..TranslateOptions::new("x")
    };
    let t = rt.block_on(translate(&f, src.as_ref(), &opts)).unwrap();
    let w = t
        .warnings
        .iter()
        .find(|w| w.path == "/nbit_i4_be24")
        .unwrap();
    assert!(
        w.reason.contains("n-bit") && w.reason.contains("4000 bytes"),
        "{}",
        w.reason
    );
    assert!(t.refs.get_json("nbit_i4_be24/.zarray").is_none());
    assert!(t.warnings.iter().any(|w| w.path == "/scaleoffset_int"));
}
