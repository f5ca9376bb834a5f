//! NetCDF-3 through the format dispatch (`hdf5_lite::open_any` +
//! `kerchunk::translate_opened`): round trips of the header read, HDF5
//! files unchanged by the dispatch, and hostile headers (every truncation,
//! bit flips, extreme counts) that must give an error naming the file,
//! never a panic. Values are checked by `tests/python/check_netcdf3.py`
//! against netCDF4-python.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hdf5_lite::{MemorySource, Opened, Options, RangeSource};
use kerchunk::TranslateOptions;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("fixtures/netcdf3"))
        .expect("fixtures/netcdf3 exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "nc"))
        .collect();
    v.sort();
    assert!(v.len() >= 8, "NetCDF-3 fixtures missing: {v:?}");
    v
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn open(
    rt: &tokio::runtime::Runtime,
    name: &str,
    data: Vec<u8>,
    opts: &Options,
) -> Result<(Opened, hdf5_lite::Stats), hdf5_lite::Error> {
    let src: Arc<dyn RangeSource> = Arc::new(MemorySource::new(name, data));
    rt.block_on(hdf5_lite::open_any(src, opts))
}

#[test]
fn fixtures_open_in_one_request() {
    let rt = rt();
    for p in fixtures() {
        let data = std::fs::read(&p).expect("read");
        let (o, st) = open(&rt, "f.nc", data.clone(), &Options::default()).expect("opens");
        let Opened::NetCdf3(f) = &o else {
            panic!("{p:?} not dispatched to NetCDF-3")
        };
        assert_eq!((st.requests, st.waves), (1, 1), "{p:?}");
        assert_eq!(st.metadata_bytes, f.header.length);
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let want = match &data[3] {
            1 => "netcdf3_classic",
            2 => "netcdf3_64bit_offset",
            _ => "netcdf3_cdf5",
        };
        assert_eq!(o.format_name(), want, "{name}");
    }
}

/// A classic header with `n` fixed float variables of `x` (each with
/// three attributes), followed by their data.
fn big_header_file(n: usize) -> (Vec<u8>, u64) {
    fn name(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as u32).to_be_bytes());
        out.extend(s.as_bytes());
        out.resize(out.len().div_ceil(4) * 4, 0);
    }
    fn u32(out: &mut Vec<u8>, v: u32) {
        out.extend(v.to_be_bytes());
    }
    let build = |data_start: u32| {
        let mut h = b"CDF\x01".to_vec();
        u32(&mut h, 0); // numrecs
        u32(&mut h, 0x0A);
        u32(&mut h, 1);
        name(&mut h, "x");
        u32(&mut h, 10);
        u32(&mut h, 0); // no global attributes
        u32(&mut h, 0);
        u32(&mut h, 0x0B);
        u32(&mut h, n as u32);
        for k in 0..n {
            name(&mut h, &format!("variable_number_{k}"));
            u32(&mut h, 1);
            u32(&mut h, 0); // dimid of x
            u32(&mut h, 0x0C);
            u32(&mut h, 3);
            name(&mut h, "units");
            u32(&mut h, 2);
            u32(&mut h, 13);
            h.extend(b"meter second\0\0\0\0");
            name(&mut h, "long_name");
            u32(&mut h, 2);
            u32(&mut h, 24);
            h.extend(b"a long descriptive name.");
            name(&mut h, "scale_factor");
            u32(&mut h, 6);
            u32(&mut h, 1);
            h.extend(0.5f64.to_be_bytes());
            u32(&mut h, 5); // float
            u32(&mut h, 40); // vsize
            u32(&mut h, data_start + 40 * k as u32);
        }
        h
    };
    let len = build(0).len() as u32;
    let mut file = build(len);
    file.resize(len as usize + 40 * n, 0);
    (file, u64::from(len))
}

#[test]
fn a_long_header_takes_two_requests() {
    let rt = rt();
    for n in [400, 3000, 20000] {
        let (file, header_len) = big_header_file(n);
        assert!(header_len > Options::default().head_size);
        let (o, st) = open(&rt, "big.nc", file, &Options::default()).expect("opens");
        let Opened::NetCdf3(f) = o else {
            panic!("not NetCDF-3")
        };
        assert_eq!(f.header.length, header_len);
        assert_eq!(f.header.variables.len(), n);
        assert_eq!(f.layouts[n - 1].begin, header_len + 40 * (n as u64 - 1));
        assert_eq!(
            (st.requests, st.waves),
            (2, 2),
            "{n} variables, header {header_len} bytes"
        );
        assert!(st.bytes_fetched < header_len * 2 + 40 * n as u64);
    }
}

#[test]
fn hdf5_files_open_as_before() {
    let rt = rt();
    let p = root().join("fixtures/files/netcdf4_features.nc");
    let data = std::fs::read(&p).expect("read");
    let src: Arc<dyn RangeSource> = Arc::new(MemorySource::new("n4.nc", data.clone()));
    let (direct, st1) = rt
        .block_on(hdf5_lite::open(src.clone(), &Options::default()))
        .expect("opens");
    let (any, st2) = open(&rt, "n4.nc", data, &Options::default()).expect("opens");
    let Opened::Hdf5(f) = any else {
        panic!("HDF5 file dispatched to NetCDF-3")
    };
    assert_eq!(format!("{direct:?}"), format!("{f:?}"));
    assert_eq!(
        (st1.requests, st1.waves, st1.bytes_fetched),
        (st2.requests, st2.waves, st2.bytes_fetched),
        "sniffing must cost nothing"
    );
}

/// Open and translate `data`; a panic is returned as `Err`. An error must
/// name the file.
fn survive(rt: &tokio::runtime::Runtime, data: Vec<u8>, opts: &Options) -> Result<(), String> {
    const NAME: &str = "hostile-input.nc";
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let src: Arc<dyn RangeSource> = Arc::new(MemorySource::new(NAME, data));
        match rt.block_on(hdf5_lite::open_any(src.clone(), opts)) {
            Ok((o, _)) => {
                let t = rt.block_on(kerchunk::translate_opened(
                    &o,
                    &*src,
                    &TranslateOptions::new("x"),
                ));
                if let Err(e) = t {
                    assert!(e.to_string().contains(NAME), "{e}");
                }
                let _ = o.model();
            }
            Err(e) => {
                assert_eq!(e.file(), NAME);
                assert!(e.to_string().contains(NAME), "{e}");
            }
        }
    }));
    r.map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into())
    })
}

#[test]
fn truncated_headers_name_the_file_and_field() {
    let rt = rt();
    let opts = Options::default();
    let data = std::fs::read(root().join("fixtures/netcdf3/classic_all.nc")).expect("read");
    let src: Arc<dyn RangeSource> = Arc::new(MemorySource::new("t.nc", data[..1000].to_vec()));
    let e = rt
        .block_on(hdf5_lite::open_any(src, &opts))
        .expect_err("truncated");
    let msg = e.to_string();
    assert!(
        msg.starts_with("t.nc: netCDF-3 header") && msg.contains("truncated in"),
        "{msg}"
    );
}

#[test]
fn hostile_headers_never_panic() {
    let rt = rt();
    let opts = Options {
        max_chunks_per_dataset: 10_000,
        max_metadata_bytes: 16 * 1024 * 1024,
        ..Options::default()
    };
    let mut panics = Vec::new();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut runs = 0;
    for p in fixtures() {
        let data = std::fs::read(&p).expect("read");
        let hlen = match hdf5_lite::netcdf3::header::parse(&data) {
            Ok(h) => h.length as usize,
            Err(e) => panic!("{p:?}: {e}"),
        };
        // every truncation of the header, and a few of the data
        for cut in (0..=hlen.min(data.len())).chain([data.len() - 1, data.len() / 2]) {
            runs += 1;
            if let Err(m) = survive(&rt, data[..cut].to_vec(), &opts) {
                panics.push(format!("{p:?} cut at {cut}: {m}"));
            }
        }
        // bit flips and extreme 4-byte values in the header
        for k in 0..1000 {
            let mut d = data.clone();
            let at = (next() % hlen as u64) as usize;
            if k % 3 == 0 {
                let v: [u8; 4] = match next() % 4 {
                    0 => [0xff; 4],
                    1 => [0x7f, 0xff, 0xff, 0xff],
                    2 => [0x80, 0, 0, 0],
                    _ => [0, 0, 0, 0],
                };
                let at = at & !3;
                let end = (at + 4).min(d.len());
                d[at..end].copy_from_slice(&v[..end - at]);
            } else {
                d[at] ^= 1 << (next() % 8);
            }
            runs += 1;
            if let Err(m) = survive(&rt, d, &opts) {
                panics.push(format!("{p:?} mutation {k} at {at}: {m}"));
            }
        }
    }
    assert!(
        panics.is_empty(),
        "{} of {runs} inputs panicked: {:?}",
        panics.len(),
        &panics[..panics.len().min(10)]
    );
}
