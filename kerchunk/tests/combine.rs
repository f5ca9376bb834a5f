//! End-to-end combine and FMRC views on synthetic OFS runs.
//!
//! 1. `tests/python/combine_make_cycle.py` (venv python + make_ofs.py) writes
//!    dbofs cycles 06z/12z and an sfbofs 03z cycle (n001..n006, f001..f006,
//!    `--scale small`) under `$CARGO_TARGET_TMPDIR/combine-ofs/gen`.
//! 2. Each file is translated (hdf5-lite + `kerchunk::translate`, url
//!    `file:///abs/path`) into `singles/`.
//! 3. FMRC views (model runs, best series) are selected with
//!    `kerchunk::fmrc` and combined with `combine_fetching` into `combined/`;
//!    Rust checks coordinate values and that every `zeta` chunk comes from
//!    the expected member.
//! 4. `tests/python/combine_check.py DIR` compares with xarray (`xr.concat`
//!    of the NetCDF originals) and with MultiZarrToZarr on the same singles.
//!
//! Needs the oracle venv (`.venv`, made by `tests/python/setup-venv.sh`, or
//! `$KERCHUNK_NOS_PYTHON`) and `fixtures/make_ofs.py`; without them the test
//! fails (a skipped oracle is not a pass).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use kerchunk::combine::{CombineOptions, StaticVars, UrlResolver, combine_fetching};
use kerchunk::fmrc::{self, BestRule, FmrcMember, HourKind, RunKinds};
use kerchunk::json::{Json, object};
use kerchunk::{Ref, RefSet, TranslateOptions};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> Option<(PathBuf, PathBuf)> {
    let py = std::env::var_os("KERCHUNK_NOS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin/python"));
    let make = root().join("fixtures/make_ofs.py");
    (py.exists() && make.exists()).then_some((py, make))
}

/// Days since 1970-01-01, by the `time` crate (already in the lock file
/// through aws-config), so the test does not carry its own calendar code.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let month = time::Month::try_from(u8::try_from(m).unwrap()).unwrap();
    let date =
        time::Date::from_calendar_date(i32::try_from(y).unwrap(), month, u8::try_from(d).unwrap())
            .unwrap();
    i64::from(date.to_julian_day()) - 2_440_588
}

/// `nos.{ofs}.fields.{n|f}HHH.YYYYMMDD.tCCz.nc` -> member (test-local
/// parser; the real one is `ingest::ofs_key`).
fn member(key: &str, refs_key: String) -> Option<FmrcMember> {
    let base = key.rsplit('/').next()?;
    let p: Vec<&str> = base.split('.').collect();
    let [_, _, _, nf, ymd, tcc, _] = p.as_slice() else {
        return None;
    };
    let (kind, hour) = nf.split_at(1);
    let hour: u16 = hour.parse().ok()?;
    let y: i64 = ymd.get(0..4)?.parse().ok()?;
    let m: i64 = ymd.get(4..6)?.parse().ok()?;
    let d: i64 = ymd.get(6..8)?.parse().ok()?;
    let cc: i64 = tcc.get(1..3)?.parse().ok()?;
    let cycle = days_from_civil(y, m, d) * 86400 + cc * 3600;
    let (hour_kind, valid) = match kind {
        "f" => (HourKind::Forecast, cycle + i64::from(hour) * 3600),
        "n" => (HourKind::Nowcast, cycle - 6 * 3600 + i64::from(hour) * 3600),
        _ => return None,
    };
    Some(FmrcMember {
        key: refs_key,
        cycle,
        hour_kind,
        hour,
        valid,
    })
}

/// "seconds since 2016-01-01 00:00:00" -> unix seconds of the epoch.
fn epoch(units: &str) -> i64 {
    let date = units.split("since ").nth(1).unwrap().trim();
    let y: i64 = date[0..4].parse().unwrap();
    let m: i64 = date[5..7].parse().unwrap();
    let d: i64 = date[8..10].parse().unwrap();
    assert!(units.starts_with("seconds"), "{units}");
    days_from_civil(y, m, d) * 86400
}

struct Single {
    nc: PathBuf,
    json: PathBuf,
    url: String,
    refs: RefSet,
}

struct Case {
    name: &'static str,
    opts: CombineOptions,
    members: Vec<FmrcMember>,
    xarray: bool,
}

#[test]
fn ofs_fmrc_views_combine_and_match_xarray_and_mzz() {
    let Some((py, make_ofs)) = python() else {
        panic!(
            "oracle venv python or fixtures/make_ofs.py missing: run tests/python/setup-venv.sh"
        );
    };
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("combine-ofs");
    let _ = std::fs::remove_dir_all(&dir);
    let gen_dir = dir.join("gen");
    std::fs::create_dir_all(&gen_dir).unwrap();
    let out = Command::new(&py)
        .arg(root().join("tests/python/combine_make_cycle.py"))
        .arg(&gen_dir)
        .arg("--make-ofs")
        .arg(&make_ofs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "generator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split('\t').next().map(String::from))
        .collect();
    assert_eq!(keys.len(), 36);

    // translate every file
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let singles_dir = dir.join("singles");
    std::fs::create_dir_all(&singles_dir).unwrap();
    let mut singles: BTreeMap<String, Single> = BTreeMap::new();
    let mut members: Vec<FmrcMember> = Vec::new();
    for key in &keys {
        let nc = std::fs::canonicalize(gen_dir.join(key)).unwrap();
        let url = format!("file://{}", nc.display());
        let source: Arc<dyn hdf5_lite::RangeSource> = Arc::new(hdf5_lite::FileSource::new(&nc));
        let (file, _) = rt
            .block_on(hdf5_lite::open(
                source.clone(),
                &hdf5_lite::Options::default(),
            ))
            .unwrap();
        let t = rt
            .block_on(kerchunk::translate(
                &file,
                source.as_ref(),
                &TranslateOptions::new(url.clone()),
            ))
            .unwrap();
        assert!(t.warnings.is_empty(), "{key}: {:?}", t.warnings);
        let base = key.rsplit('/').next().unwrap();
        let refs_key = format!("nos/{base}.zarr");
        let json = singles_dir.join(format!("{base}.json"));
        std::fs::write(&json, t.refs.to_json()).unwrap();
        members.push(member(key, refs_key.clone()).unwrap());
        singles.insert(
            refs_key,
            Single {
                nc,
                json,
                url,
                refs: t.refs,
            },
        );
    }

    let of = |model: &str| -> Vec<FmrcMember> {
        members
            .iter()
            .filter(|m| m.key.contains(&format!(".{model}.")))
            .cloned()
            .collect()
    };
    let dbofs = of("dbofs");
    let sfbofs = of("sfbofs");
    let day = days_from_civil(2023, 3, 23) * 86400;
    let c06 = day + 6 * 3600;
    let c12 = day + 12 * 3600;
    let c03 = day + 3 * 3600;
    let cloned = |v: Vec<&FmrcMember>| v.into_iter().cloned().collect::<Vec<_>>();
    let stack = |mut o: CombineOptions| {
        o.static_vars = StaticVars::Stack;
        o
    };

    // FMRC selections, checked here
    let run12 = cloned(fmrc::model_run(&dbofs, c12, RunKinds::Forecast));
    let run12_both = cloned(fmrc::model_run(&dbofs, c12, RunKinds::Both));
    let best = cloned(fmrc::best_time_series(&dbofs, BestRule::NewestCycle));
    let best_orig = cloned(fmrc::best_time_series(&dbofs, BestRule::Original));
    let sf_run = cloned(fmrc::model_run(&sfbofs, c03, RunKinds::Forecast));
    assert_eq!(run12.len(), 6);
    assert_eq!(run12_both.len(), 12);
    let hours = |v: &[FmrcMember]| -> Vec<(i64, char, u16)> {
        v.iter()
            .map(|m| {
                (
                    (m.cycle - day) / 3600,
                    if m.hour_kind == HourKind::Nowcast {
                        'n'
                    } else {
                        'f'
                    },
                    m.hour,
                )
            })
            .collect()
    };
    let mut want_best: Vec<(i64, char, u16)> = (1..=6).map(|h| (6, 'n', h)).collect();
    want_best.extend((1..=6).map(|h| (12, 'n', h)));
    want_best.extend((1..=6).map(|h| (12, 'f', h)));
    assert_eq!(hours(&best), want_best);
    let mut want_orig: Vec<(i64, char, u16)> = (1..=6).map(|h| (6, 'f', h)).collect();
    want_orig.extend((1..=6).map(|h| (12, 'f', h)));
    assert_eq!(hours(&best_orig), want_orig);

    // duplicate valid time 12:00 (c12 n006 and c06 f006): MZZ lets the
    // later input win
    let pick = |cyc: i64, kind: HourKind, hour: u16| {
        dbofs
            .iter()
            .find(|m| m.cycle == cyc && m.hour_kind == kind && m.hour == hour)
            .cloned()
            .unwrap()
    };
    let dup = vec![
        pick(c12, HourKind::Nowcast, 5),
        pick(c12, HourKind::Nowcast, 6),
        pick(c06, HourKind::Forecast, 6),
    ];

    let cases = vec![
        Case {
            name: "dbofs.fields.20230323.t12z",
            opts: CombineOptions::roms(),
            members: run12.clone(),
            xarray: true,
        },
        Case {
            name: "dbofs.fields.20230323.t12z.mzz-stack",
            opts: stack(CombineOptions::roms()),
            members: run12,
            xarray: false,
        },
        Case {
            name: "dbofs.fields.nowcast+forecast.20230323.t12z",
            opts: CombineOptions::roms(),
            members: run12_both,
            xarray: true,
        },
        Case {
            name: "dbofs.fields.best",
            opts: CombineOptions::roms(),
            members: best,
            xarray: true,
        },
        Case {
            name: "dbofs.fields.best-original",
            opts: CombineOptions::roms(),
            members: best_orig,
            xarray: true,
        },
        Case {
            name: "sfbofs.fields.20230323.t03z",
            opts: CombineOptions::fvcom(),
            members: sf_run.clone(),
            xarray: true,
        },
        Case {
            name: "sfbofs.fields.20230323.t03z.mzz-stack",
            opts: stack(CombineOptions::fvcom()),
            members: sf_run,
            xarray: false,
        },
        Case {
            name: "dbofs.duplicate-valid-time.mzz-stack",
            opts: stack(CombineOptions::roms()),
            members: dup,
            xarray: false,
        },
    ];

    let combined_dir = dir.join("combined");
    std::fs::create_dir_all(&combined_dir).unwrap();
    let resolver = UrlResolver::default();
    let mut manifest = Vec::new();
    for case in &cases {
        let inputs: Vec<(String, RefSet)> = case
            .members
            .iter()
            .map(|m| (m.key.clone(), singles[&m.key].refs.clone()))
            .collect();
        let refs = rt
            .block_on(combine_fetching(&inputs, &case.opts, &resolver))
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let dim = case.opts.concat_dim.as_str();

        // coordinate = valid times of the members (distinct, ascending)
        let units = refs
            .get_json(&format!("{dim}/.zattrs"))
            .unwrap()
            .unwrap()
            .get("units")
            .and_then(Json::as_str)
            .unwrap()
            .to_string();
        let e = epoch(&units);
        let bytes = refs
            .get(&format!("{dim}/0"))
            .and_then(Ref::inline_bytes)
            .unwrap();
        let got: Vec<i64> = bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as i64 + e)
            .collect();
        let mut want: Vec<i64> = case.members.iter().map(|m| m.valid).collect();
        want.dedup();
        assert_eq!(got, want, "{}", case.name);

        // every zeta chunk from the member owning that time (last wins)
        let mut owner: BTreeMap<i64, &str> = BTreeMap::new();
        for m in &case.members {
            owner.insert(m.valid, &singles[&m.key].url);
        }
        for (t, (valid, url)) in owner.iter().enumerate() {
            let rank = if dim == "ocean_time" { 3 } else { 2 };
            let key = format!("zeta/{t}{}", ".0".repeat(rank - 1));
            match refs.get(&key) {
                Some(Ref::Range { url: u, .. }) => assert_eq!(u, url, "{} {key}", case.name),
                other => panic!("{}: {key} ({valid}): {other:?}", case.name),
            }
        }

        let path = combined_dir.join(format!("{}.json", case.name));
        std::fs::write(&path, refs.to_json()).unwrap();
        let strs = |v: Vec<String>| Json::Array(v.into_iter().map(Json::Str).collect());
        manifest.push(object([
            ("name", Json::from(case.name)),
            ("concat_dim", Json::from(dim)),
            ("identical_dims", strs(case.opts.identical_dims.clone())),
            (
                "static_vars",
                Json::from(match case.opts.static_vars {
                    StaticVars::First => "first",
                    StaticVars::Stack => "stack",
                }),
            ),
            (
                "inputs",
                strs(
                    case.members
                        .iter()
                        .map(|m| singles[&m.key].json.display().to_string())
                        .collect(),
                ),
            ),
            (
                "originals",
                strs(
                    case.members
                        .iter()
                        .map(|m| singles[&m.key].nc.display().to_string())
                        .collect(),
                ),
            ),
            ("out", Json::from(path.display().to_string())),
            ("xarray", Json::Bool(case.xarray)),
        ]));
    }
    let manifest_path = dir.join("manifest.json");
    std::fs::write(&manifest_path, Json::Array(manifest).to_compact()).unwrap();

    let out = Command::new(&py)
        .arg(root().join("tests/python/combine_check.py"))
        .arg(&manifest_path)
        .output()
        .unwrap();
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success(),
        "combine_check.py failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
