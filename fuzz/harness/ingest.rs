//! Fuzz harness bodies for the ingest parsers, shared verbatim by the
//! cargo-fuzz targets (`kerchunk_nos_fuzz::ingest`) and the stable
//! regression replay (`ingest/tests/fuzz_regressions.rs`, via `#[path]`).
//! Both depend on the AWS-free `ofs-keys` crate (which `ingest` re-exports),
//! so the fuzz build skips the AWS SDK.
#![allow(dead_code)]

use ofs_keys::{message, ofs_key};

/// An SQS body: parse, dump, and check the dump agrees with the parse.
pub fn sns_message(data: &[u8]) {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = message::parse(body);
    let dumped = message::dump(body);
    assert_eq!(parsed.is_ok(), dumped.is_ok(), "parse and dump disagree");
    if let Ok(event) = &parsed {
        let _ = event.is_test_event();
        for r in event.records() {
            let _ = format!("{r:?}").len();
        }
    }
    if let Ok(text) = dumped {
        let v: serde_json::Value = serde_json::from_str(&text).expect("dump is JSON");
        if let Ok(message::S3Event::Records(rs)) = &parsed {
            assert_eq!(v.as_array().map(|a| a.len()), Some(rs.len()));
        }
    }
    if let Err(e) = parsed {
        let _ = e.to_string();
    }
    if let Ok(s) = message::form_url_decode(body) {
        assert!(s.len() <= body.len(), "decoding grew the text");
    }
}

/// An object key: parse it, rebuild it, and derive every output key.
pub fn ofs_key(data: &[u8]) {
    let Ok(key) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = ofs_key::parse(key);
    match &parsed {
        Ok(ofs_key::Parsed::Output(k)) => {
            // Parsing accepts one spelling per field: the rebuilt key is the key.
            assert_eq!(k.object_key(), key, "object_key does not round-trip");
            assert_eq!(ofs_key::parse(&k.object_key()), parsed.clone());
            let _ = (
                k.family(),
                k.cycle_time().to_iso8601(),
                k.valid_time().map(|t| t.to_iso8601()),
            );
            for prefix in ["nos", "", "a/b/", "../x"] {
                let _ = ofs_key::model_run_key(prefix, k).map(|s| assert_safe(&s));
                let _ = ofs_key::best_key(prefix, k).map(|s| assert_safe(&s));
            }
            if let Ok(r) = ofs_key::single_ref_key("nos", key) {
                match ofs_key::parse_single_ref_key(&r) {
                    Ok(ofs_key::Parsed::Output(back)) => {
                        assert_eq!(
                            back.file_name(),
                            k.file_name(),
                            "reference key loses the name"
                        );
                    }
                    other => {
                        panic!("reference key {r:?} of {key:?} does not parse back: {other:?}")
                    }
                }
            }
        }
        Ok(ofs_key::Parsed::Skip(reason)) => {
            let _ = (reason.code(), reason.to_string());
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    if let Ok(r) = ofs_key::single_ref_key("nos", key) {
        assert_safe(&r);
    }
    let _ = ofs_key::parse_single_ref_key(key);
    let _ = ofs_key::Date::parse_yyyymmdd(key);
    let _ = ofs_key::nowcast_hours(key);
}

/// An output key must not escape its prefix: no `.`/`..`/empty path
/// component, no leading `/`, no control characters. (`..._0031.nc` is a
/// legal file name: `..` inside a component is harmless.)
fn assert_safe(key: &str) {
    assert!(!key.starts_with('/'), "absolute output key {key:?}");
    assert!(
        !key.chars().any(char::is_control),
        "control character in {key:?}"
    );
    for c in key.split('/') {
        assert!(
            !c.is_empty() && c != "." && c != "..",
            "unsafe output key {key:?}"
        );
    }
}
