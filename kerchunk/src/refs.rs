//! Reference sets (fsspec `ReferenceFileSystem`, spec version 1) and their
//! deterministic JSON form.
//!
//! Output is `{"version":1,"refs":{...}}`, compact, keys sorted, so the same
//! input always gives byte-identical output.

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::error::Error;
use crate::json::Json;

/// One reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    /// Inline text: metadata documents, and inline data that is valid UTF-8
    /// (fsspec encodes a text reference as UTF-8 on read, so this reads back
    /// as exactly these bytes).
    Text(String),
    /// Inline bytes, written as `"base64:..."`.
    Binary(Vec<u8>),
    /// `[url, offset, length]`.
    Range {
        url: String,
        offset: u64,
        length: u64,
    },
    /// `[url]`: a whole object.
    Url(String),
}

impl Ref {
    /// Inline data, as text when that reads back byte-identical through
    /// fsspec (valid UTF-8 that does not itself start with `base64:`),
    /// otherwise base64.
    pub fn inline(bytes: &[u8]) -> Ref {
        match std::str::from_utf8(bytes) {
            Ok(s) if !s.starts_with("base64:") => Ref::Text(s.to_string()),
            _ => Ref::Binary(bytes.to_vec()),
        }
    }

    /// Inline bytes (text or binary), or `None` for a remote reference.
    pub fn inline_bytes(&self) -> Option<Cow<'_, [u8]>> {
        match self {
            Ref::Text(s) => Some(Cow::Borrowed(s.as_bytes())),
            Ref::Binary(b) => Some(Cow::Borrowed(b)),
            _ => None,
        }
    }

    /// Write the reference's JSON form (what [`Ref::to_json`] builds)
    /// directly, without building a value tree first.
    fn write_json(&self, out: &mut String) {
        match self {
            Ref::Text(s) => crate::json::write_str(s, out),
            Ref::Binary(b) => {
                out.push_str("\"base64:");
                B64.encode_string(b, out);
                out.push('"');
            }
            Ref::Range {
                url,
                offset,
                length,
            } => {
                use std::fmt::Write as _;
                out.push('[');
                crate::json::write_str(url, out);
                let _ = write!(out, ",{offset},{length}]");
            }
            Ref::Url(url) => {
                out.push('[');
                crate::json::write_str(url, out);
                out.push(']');
            }
        }
    }

    #[cfg(test)]
    fn to_json(&self) -> Json {
        match self {
            Ref::Text(s) => Json::Str(s.clone()),
            Ref::Binary(b) => Json::Str(format!("base64:{}", B64.encode(b))),
            Ref::Range {
                url,
                offset,
                length,
            } => Json::Array(vec![
                Json::Str(url.clone()),
                Json::UInt(*offset),
                Json::UInt(*length),
            ]),
            Ref::Url(url) => Json::Array(vec![Json::Str(url.clone())]),
        }
    }
}

/// A reference set: key (`"var/.zarray"`, `"var/0.0"`) to reference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefSet {
    pub refs: BTreeMap<String, Ref>,
}

impl RefSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, key: impl Into<String>, r: Ref) {
        self.refs.insert(key.into(), r);
    }

    /// Insert a metadata document (`.zarray`, `.zattrs`, `.zgroup`).
    pub fn insert_json(&mut self, key: impl Into<String>, doc: &Json) {
        self.refs.insert(key.into(), Ref::Text(doc.to_compact()));
    }

    pub fn get(&self, key: &str) -> Option<&Ref> {
        self.refs.get(key)
    }

    /// Parse a metadata document stored under `key`.
    pub fn get_json(&self, key: &str) -> Option<Result<Json, String>> {
        let r = self.refs.get(key)?;
        let bytes = r.inline_bytes()?;
        Some(
            std::str::from_utf8(&bytes)
                .map_err(|e| e.to_string())
                .and_then(Json::parse),
        )
    }

    pub fn len(&self) -> usize {
        self.refs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.refs.is_empty()
    }

    /// `{"version":1,"refs":{...}}`, compact, sorted, deterministic.
    pub fn to_json(&self) -> String {
        self.to_json_with_warnings(&[])
    }

    /// Like [`RefSet::to_json`], plus a top-level `"warnings"` list of
    /// `{"path", "reason"}` for the objects that could not be represented
    /// (only when there are any). fsspec ignores unknown top-level keys, so
    /// the set still opens everywhere; a reader sees what is missing and why.
    pub fn to_json_with_warnings(&self, warnings: &[(String, String)]) -> String {
        self.to_json_with_source(None, warnings)
    }

    /// Like [`RefSet::to_json_with_warnings`], plus a top-level `"source"`
    /// value (the version of the file the references were made from: etag,
    /// size, modification time), ignored by fsspec like `"warnings"`.
    pub fn to_json_with_source(
        &self,
        source: Option<&serde_json::Value>,
        warnings: &[(String, String)],
    ) -> String {
        let mut out = String::with_capacity(64 * self.refs.len() + 32);
        out.push_str("{\"refs\":{");
        for (i, (k, v)) in self.refs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            crate::json::write_str(k, &mut out);
            out.push(':');
            v.write_json(&mut out);
        }
        out.push('}');
        if let Some(src) = source {
            out.push_str(",\"source\":");
            out.push_str(&src.to_string());
        }
        out.push_str(",\"version\":1");
        if !warnings.is_empty() {
            out.push_str(",\"warnings\":[");
            for (i, (path, reason)) in warnings.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                crate::json::object([
                    ("path", Json::Str(path.clone())),
                    ("reason", Json::Str(reason.clone())),
                ])
                .write(&mut out);
            }
            out.push(']');
        }
        out.push('}');
        out
    }

    /// Read a reference set: version 1 (`{"version":1,"refs":...}`, with
    /// optional `templates`) or version 0 (a flat mapping). Metadata given as
    /// JSON objects rather than strings is accepted and stored as text.
    /// `gen` (generated keys) is not supported.
    pub fn from_json(text: &str) -> Result<RefSet, Error> {
        // Strict JSON in the usual shape is read in one serde_json pass
        // straight into references, no intermediate tree; anything else
        // (bare NaN in an object-valued metadata document, unusual shapes,
        // every error) takes the tolerant path, which gives the same set or
        // the error message.
        if let Some(set) = crate::refs_read::from_json(text) {
            return Ok(set);
        }
        Self::from_json_tolerant(text)
    }

    /// [`RefSet::from_json`] through [`Json::parse_tolerant`] only.
    pub fn from_json_tolerant(text: &str) -> Result<RefSet, Error> {
        let doc = Json::parse_tolerant(text).map_err(Error::Parse)?;
        let Json::Object(top) = doc else {
            return Err(Error::Parse("reference set is not a JSON object".into()));
        };
        let (refs, templates) = match top.get("version") {
            Some(v) => {
                if v.as_u64() != Some(1) {
                    return Err(Error::Parse(format!(
                        "unsupported reference version {}",
                        v.to_compact()
                    )));
                }
                if top.contains_key("gen") {
                    return Err(Error::Parse("\"gen\" references are not supported".into()));
                }
                let Some(Json::Object(refs)) = top.get("refs") else {
                    return Err(Error::Parse("version 1 set without \"refs\" object".into()));
                };
                let mut templates = BTreeMap::new();
                if let Some(Json::Object(t)) = top.get("templates") {
                    for (k, v) in t {
                        let Some(s) = v.as_str() else {
                            return Err(Error::Parse(format!("template {k:?} is not a string")));
                        };
                        templates.insert(k.clone(), s.to_string());
                    }
                }
                (refs.clone(), templates)
            }
            None => (top, BTreeMap::new()),
        };
        let expand = |url: &str| -> String {
            let mut u = url.to_string();
            if u.contains("{{") {
                for (k, v) in &templates {
                    u = u.replace(&format!("{{{{{k}}}}}"), v);
                }
            }
            u
        };
        let mut out = RefSet::new();
        for (k, v) in refs {
            let r = match &v {
                Json::Str(s) => match s.strip_prefix("base64:") {
                    Some(b) => Ref::Binary(
                        B64.decode(b)
                            .map_err(|e| Error::Parse(format!("{k}: bad base64: {e}")))?,
                    ),
                    None => Ref::Text(s.clone()),
                },
                Json::Array(items) => match items.as_slice() {
                    [Json::Str(url)] => Ref::Url(expand(url)),
                    [Json::Str(url), off, len] => Ref::Range {
                        url: expand(url),
                        offset: off
                            .as_u64()
                            .ok_or_else(|| Error::Parse(format!("{k}: bad offset")))?,
                        length: len
                            .as_u64()
                            .ok_or_else(|| Error::Parse(format!("{k}: bad length")))?,
                    },
                    _ => {
                        return Err(Error::Parse(format!(
                            "{k}: unsupported reference {}",
                            v.to_compact()
                        )));
                    }
                },
                Json::Object(_) => Ref::Text(v.to_compact()),
                other => {
                    return Err(Error::Parse(format!(
                        "{k}: unsupported reference {}",
                        other.to_compact()
                    )));
                }
            };
            out.refs.insert(k, r);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_text_or_base64() {
        assert_eq!(Ref::inline(b"abc\0\x01"), Ref::Text("abc\0\x01".into()));
        assert_eq!(Ref::inline("é".as_bytes()), Ref::Text("é".into()));
        assert_eq!(Ref::inline(&[0xff, 0x00]), Ref::Binary(vec![0xff, 0]));
        // would be misread as base64 by fsspec
        assert_eq!(
            Ref::inline(b"base64:AAAA"),
            Ref::Binary(b"base64:AAAA".to_vec())
        );
    }

    #[test]
    fn deterministic_round_trip() {
        let mut a = RefSet::new();
        a.insert(
            "z/0.0",
            Ref::Range {
                url: "s3://b/k.nc".into(),
                offset: 10,
                length: 20,
            },
        );
        a.insert(".zgroup", Ref::Text(r#"{"zarr_format":2}"#.into()));
        a.insert("x/0", Ref::Binary(vec![0xff, 1, 2]));
        a.insert("w", Ref::Url("file:///x".into()));
        let mut b = RefSet::new();
        for (k, v) in a.refs.iter().rev() {
            b.insert(k.clone(), v.clone());
        }
        let text = a.to_json();
        assert_eq!(text, b.to_json());
        assert_eq!(
            text,
            r#"{"refs":{".zgroup":"{\"zarr_format\":2}","w":["file:///x"],"x/0":"base64:/wEC","z/0.0":["s3://b/k.nc",10,20]},"version":1}"#
        );
        assert_eq!(RefSet::from_json(&text).unwrap(), a);
    }

    #[test]
    fn direct_writer_matches_the_value_tree() {
        for r in [
            Ref::Text("a\"b\u{1}é".into()),
            Ref::Binary(vec![0xff, 0, 1]),
            Ref::Range {
                url: "s3://b/\"k\".nc".into(),
                offset: 0,
                length: u64::MAX,
            },
            Ref::Url("file:///x".into()),
        ] {
            let mut direct = String::new();
            r.write_json(&mut direct);
            assert_eq!(direct, r.to_json().to_compact());
        }
    }

    #[test]
    fn reads_templates_and_v0() {
        let v1 = r#"{"version":1,"templates":{"u":"s3://b"},"refs":{"a/0":["{{u}}/f.nc",1,2],".zattrs":{"x":NaN}}}"#;
        let r = RefSet::from_json(v1).unwrap();
        assert_eq!(
            r.get("a/0"),
            Some(&Ref::Range {
                url: "s3://b/f.nc".into(),
                offset: 1,
                length: 2
            })
        );
        assert_eq!(r.get(".zattrs"), Some(&Ref::Text(r#"{"x":NaN}"#.into())));
        let v0 = r#"{".zgroup":"{}","a":"base64:AAE="}"#;
        let r = RefSet::from_json(v0).unwrap();
        assert_eq!(r.get("a"), Some(&Ref::Binary(vec![0, 1])));
        assert!(RefSet::from_json(r#"{"version":2,"refs":{}}"#).is_err());
    }
}

#[cfg(test)]
mod warning_tests {
    use super::*;

    #[test]
    fn warnings_are_listed_and_ignored_when_read_back() {
        let mut r = RefSet::new();
        r.insert(".zgroup", Ref::Text("{\"zarr_format\":2}".into()));
        let text = r.to_json_with_warnings(&[("/ragged".into(), "no zarr representation".into())]);
        assert_eq!(
            text,
            r#"{"refs":{".zgroup":"{\"zarr_format\":2}"},"version":1,"warnings":[{"path":"/ragged","reason":"no zarr representation"}]}"#
        );
        let back = RefSet::from_json(&text).expect("reads back");
        assert_eq!(back.to_json(), r.to_json());
        // no warnings: exactly kerchunk's shape
        assert_eq!(r.to_json_with_warnings(&[]), r.to_json());
    }

    #[test]
    fn source_stamp_sits_beside_version_and_is_ignored_when_read_back() {
        let mut r = RefSet::new();
        r.insert(".zgroup", Ref::Text("{\"zarr_format\":2}".into()));
        let stamp = serde_json::json!({"etag": "\"abc\"", "size": 10});
        let text = r.to_json_with_source(Some(&stamp), &[]);
        assert_eq!(
            text,
            r#"{"refs":{".zgroup":"{\"zarr_format\":2}"},"source":{"etag":"\"abc\"","size":10},"version":1}"#
        );
        let back = RefSet::from_json(&text).expect("reads back");
        assert_eq!(back, r);
        assert_eq!(r.to_json_with_source(None, &[]), r.to_json());
    }
}
