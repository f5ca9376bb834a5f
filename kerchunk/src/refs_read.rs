//! The fast reader of reference-set JSON: one serde_json pass straight into
//! [`Ref`]s, no intermediate value tree, no copy of the `refs` object.
//!
//! It handles the documents kerchunk and this crate write (version 1 with
//! optional `templates`, or version 0) when they are strict JSON. It returns
//! `None` for anything else (non-strict JSON such as Python's bare `NaN` in
//! an object-valued metadata document, a bad base64 payload, a duplicated
//! top-level member, any error at all); [`RefSet::from_json`] then takes the
//! tolerant path, which produces the same set or the error message. So the
//! two readers only have to agree on what this one accepts.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::json::Json;
use crate::refs::{Ref, RefSet};

/// Read `text`, or `None` when the tolerant reader must decide.
pub(crate) fn from_json(text: &str) -> Option<RefSet> {
    let top: Top = serde_json::from_str(text).ok()?;
    if top.duplicate {
        return None;
    }
    let mut refs = match top.version {
        Some(v) => {
            if v.as_u64() != Some(1) || top.gen_present {
                return None;
            }
            top.refs?
        }
        None => {
            // version 0: every member is a reference; a member named
            // "refs" or "templates" would have been read as something else
            if top.refs.is_some() || top.templates.is_some() || top.gen_present {
                return None;
            }
            let mut out = BTreeMap::new();
            for (k, v) in top.other {
                out.insert(k, ref_from_json(v)?);
            }
            out
        }
    };
    if let Some(t) = top.templates {
        expand_templates(&mut refs, &t);
    }
    Some(RefSet { refs })
}

/// `{{name}}` in URLs replaced by the template's value, in name order (as
/// the tolerant reader does).
fn expand_templates(refs: &mut BTreeMap<String, Ref>, templates: &BTreeMap<String, String>) {
    if templates.is_empty() {
        return;
    }
    for r in refs.values_mut() {
        let (Ref::Range { url, .. } | Ref::Url(url)) = r else {
            continue;
        };
        if url.contains("{{") {
            for (k, v) in templates {
                *url = url.replace(&format!("{{{{{k}}}}}"), v);
            }
        }
    }
}

/// A version-0 member, read generically (version 1 ignores such members,
/// e.g. our `warnings`, so they must not fail the read).
fn ref_from_json(v: Json) -> Option<Ref> {
    match v {
        Json::Str(s) => str_ref(&s),
        Json::Array(items) => match items.as_slice() {
            [Json::Str(url)] => Some(Ref::Url(url.clone())),
            [Json::Str(url), off, len] => Some(Ref::Range {
                url: url.clone(),
                offset: off.as_u64()?,
                length: len.as_u64()?,
            }),
            _ => None,
        },
        Json::Object(_) => Some(Ref::Text(v.to_compact())),
        _ => None,
    }
}

fn str_ref(s: &str) -> Option<Ref> {
    match s.strip_prefix("base64:") {
        Some(b) => B64.decode(b).ok().map(Ref::Binary),
        None => Some(Ref::Text(s.to_string())),
    }
}

#[derive(Default)]
struct Top {
    version: Option<Json>,
    refs: Option<BTreeMap<String, Ref>>,
    templates: Option<BTreeMap<String, String>>,
    gen_present: bool,
    other: Vec<(String, Json)>,
    duplicate: bool,
}

impl<'de> Deserialize<'de> for Top {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Top, D::Error> {
        d.deserialize_map(TopVisitor)
    }
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a reference set object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
        let mut top = Top::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "version" => {
                    top.duplicate |= top.version.is_some();
                    top.version = Some(map.next_value()?);
                }
                "refs" => {
                    top.duplicate |= top.refs.is_some();
                    top.refs = Some(map.next_value::<RefsMap>()?.0);
                }
                "templates" => {
                    top.duplicate |= top.templates.is_some();
                    top.templates = Some(map.next_value()?);
                }
                "gen" => {
                    top.gen_present = true;
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    let v: Json = map.next_value()?;
                    top.other.push((key, v));
                }
            }
        }
        Ok(top)
    }
}

struct RefsMap(BTreeMap<String, Ref>);

impl<'de> Deserialize<'de> for RefsMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RefsMap, D::Error> {
        d.deserialize_map(RefsVisitor)
    }
}

struct RefsVisitor;

impl<'de> Visitor<'de> for RefsVisitor {
    type Value = RefsMap;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a refs object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RefsMap, A::Error> {
        // Collected, then built in bulk: writers emit sorted keys, and
        // `BTreeMap::from_iter` (a stable sort, then a bulk build keeping
        // the last of equal keys, as inserting would) is cheaper than
        // one insertion per key.
        let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some((k, v)) = map.next_entry::<String, RefVal>()? {
            pairs.push((k, v.0));
        }
        Ok(RefsMap(pairs.into_iter().collect()))
    }
}

struct RefVal(Ref);

impl<'de> Deserialize<'de> for RefVal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RefVal, D::Error> {
        d.deserialize_any(RefVisitor)
    }
}

struct RefVisitor;

impl<'de> Visitor<'de> for RefVisitor {
    type Value = RefVal;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a reference")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<RefVal, E> {
        str_ref(v)
            .map(RefVal)
            .ok_or_else(|| E::custom("bad base64"))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<RefVal, E> {
        if v.starts_with("base64:") {
            return self.visit_str(&v);
        }
        Ok(RefVal(Ref::Text(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RefVal, A::Error> {
        let bad = || de::Error::custom("unsupported reference");
        let url: String = seq.next_element()?.ok_or_else(bad)?;
        let Some(offset) = seq.next_element::<u64>()? else {
            return Ok(RefVal(Ref::Url(url)));
        };
        let length: u64 = seq.next_element()?.ok_or_else(bad)?;
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(bad());
        }
        Ok(RefVal(Ref::Range {
            url,
            offset,
            length,
        }))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RefVal, A::Error> {
        let v = Json::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(RefVal(Ref::Text(v.to_compact())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the fast reader accepts, the tolerant reader reads the same.
    #[test]
    fn agrees_with_the_tolerant_reader() {
        let docs = [
            r#"{"version":1,"refs":{"a/0":["s3://b/f.nc",1,2],"a/.zarray":"{\"x\":1}","b":"base64:AAE=","c":["u"],"d":{"k":[1,2.5,"s"]},"e\u00e9":"t\\n"},"warnings":[{"path":"/x","reason":"y"}]}"#,
            r#"{"version":1,"templates":{"u":"s3://b","v":"x"},"refs":{"a/0":["{{u}}/f.nc",1,2],"w":["{{v}}{{u}}"]}}"#,
            r#"{".zgroup":"{}","a":"base64:AAE=","r":["u",0,4],"o":{"z":null}}"#,
            r#"{"refs":{},"version":1}"#,
            r#"{"version":1,"refs":{"b":"1","a":"2","b":"3","c":["u",1,2],"a":"4"}}"#,
        ];
        for d in docs {
            let fast = from_json(d).expect(d);
            let slow = RefSet::from_json_tolerant(d).expect(d);
            assert_eq!(fast, slow, "{d}");
        }
    }

    /// Documents the fast reader leaves to the tolerant one (which accepts
    /// some and rejects others with its messages).
    #[test]
    fn declines_what_it_does_not_handle() {
        for d in [
            r#"{"version":1,"refs":{".zattrs":{"x":NaN}}}"#,
            r#"{"version":2,"refs":{}}"#,
            r#"{"version":1,"gen":[],"refs":{}}"#,
            r#"{"version":1,"refs":{"a":"base64:!!"}}"#,
            r#"{"version":1,"refs":{"a":["u",1]}}"#,
            r#"{"version":1,"refs":{"a":["u",1,2,3]}}"#,
            r#"{"version":1,"refs":{"a":["u",-1,2]}}"#,
            r#"{"version":1,"refs":{"a":1}}"#,
            r#"{"version":1,"version":1,"refs":{}}"#,
            r#"{"refs":{"a":["u",1,2]}}"#,
            r#"[1]"#,
        ] {
            assert!(from_json(d).is_none(), "{d}");
        }
        assert!(RefSet::from_json(r#"{"version":1,"refs":{".zattrs":{"x":NaN}}}"#).is_ok());
        let e = RefSet::from_json(r#"{"version":1,"refs":{"a":["u",1]}}"#).unwrap_err();
        assert!(e.to_string().contains("unsupported reference"), "{e}");
    }
}
