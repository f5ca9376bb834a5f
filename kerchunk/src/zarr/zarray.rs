//! The reader side of a zarr v2 `.zarray` document, typed: what combining
//! reference sets needs to read, compare and rewrite.
//!
//! Members other than `shape` and `chunks` are kept as the JSON values they
//! were (`None` when absent), so a rewritten document differs from the input
//! only where it was changed, and "absent" and `null` can be told apart on
//! output while comparing equal (see [`ZArray::member`]).

use std::collections::BTreeMap;

use crate::json::Json;

#[derive(Debug, Clone, PartialEq)]
pub struct ZArray {
    pub shape: Vec<u64>,
    pub chunks: Vec<u64>,
    /// `"<f4"`, or a structured list `[["a","<i4"],...]`.
    pub dtype: Option<Json>,
    pub fill_value: Option<Json>,
    pub compressor: Option<Json>,
    pub filters: Option<Json>,
    pub order: Option<Json>,
    pub zarr_format: Option<Json>,
    pub dimension_separator: Option<Json>,
    /// Any other member, written back unchanged.
    pub other: BTreeMap<String, Json>,
}

/// Why a `.zarray` document cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZArrayError {
    #[error("{0}")]
    Json(String),
    #[error("not a JSON object")]
    NotObject,
    #[error("bad shape")]
    Shape,
    #[error("bad chunks")]
    Chunks,
    #[error("chunks do not match shape")]
    Mismatch,
}

fn u64_list(v: Option<&Json>) -> Option<Vec<u64>> {
    match v? {
        Json::Array(a) => a.iter().map(Json::as_u64).collect(),
        _ => None,
    }
}

impl ZArray {
    /// Parse a `.zarray` document (Python's bare `NaN`/`Infinity` accepted).
    pub fn parse(text: &str) -> Result<ZArray, ZArrayError> {
        match Json::parse(text).map_err(ZArrayError::Json)? {
            Json::Object(m) => Self::from_map(m),
            _ => Err(ZArrayError::NotObject),
        }
    }

    pub fn from_map(mut m: BTreeMap<String, Json>) -> Result<ZArray, ZArrayError> {
        let shape = u64_list(m.get("shape")).ok_or(ZArrayError::Shape)?;
        let chunks = u64_list(m.get("chunks")).ok_or(ZArrayError::Chunks)?;
        if chunks.len() != shape.len() || chunks.contains(&0) {
            return Err(ZArrayError::Mismatch);
        }
        m.remove("shape");
        m.remove("chunks");
        Ok(ZArray {
            shape,
            chunks,
            dtype: m.remove("dtype"),
            fill_value: m.remove("fill_value"),
            compressor: m.remove("compressor"),
            filters: m.remove("filters"),
            order: m.remove("order"),
            zarr_format: m.remove("zarr_format"),
            dimension_separator: m.remove("dimension_separator"),
            other: m,
        })
    }

    /// A member by its JSON name, `null` when absent (absent and `null` mean
    /// the same to zarr for every member compared here).
    pub fn member(&self, name: &str) -> Json {
        let nums = |v: &[u64]| Json::Array(v.iter().map(|x| Json::UInt(*x)).collect());
        let v = match name {
            "shape" => return nums(&self.shape),
            "chunks" => return nums(&self.chunks),
            "dtype" => &self.dtype,
            "fill_value" => &self.fill_value,
            "compressor" => &self.compressor,
            "filters" => &self.filters,
            "order" => &self.order,
            "zarr_format" => &self.zarr_format,
            "dimension_separator" => &self.dimension_separator,
            other => return self.other.get(other).cloned().unwrap_or(Json::Null),
        };
        v.clone().unwrap_or(Json::Null)
    }

    /// The document, keys sorted, absent members left out.
    pub fn to_json(&self) -> Json {
        let nums = |v: &[u64]| Json::Array(v.iter().map(|x| Json::UInt(*x)).collect());
        let mut m = self.other.clone();
        m.insert("shape".into(), nums(&self.shape));
        m.insert("chunks".into(), nums(&self.chunks));
        for (k, v) in [
            ("dtype", &self.dtype),
            ("fill_value", &self.fill_value),
            ("compressor", &self.compressor),
            ("filters", &self.filters),
            ("order", &self.order),
            ("zarr_format", &self.zarr_format),
            ("dimension_separator", &self.dimension_separator),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), v.clone());
            }
        }
        Json::Object(m)
    }

    pub fn dtype_str(&self) -> Option<&str> {
        self.dtype.as_ref()?.as_str()
    }

    /// Bytes per element of a simple dtype (`<f4`, `|S26`, `<U3`, `|b1`);
    /// `None` for structured dtypes.
    pub fn itemsize(&self) -> Option<u64> {
        let s = self.dtype_str()?;
        let k = s.get(1..2)?;
        let n: u64 = s.get(2..)?.parse().ok()?;
        match k {
            "U" => n.checked_mul(4),
            _ => Some(n),
        }
    }

    /// True when chunks are stored with filters or a compressor.
    pub fn has_codecs(&self) -> bool {
        let set = |v: &Option<Json>| match v {
            None | Some(Json::Null) => false,
            Some(Json::Array(a)) => !a.is_empty(),
            Some(_) => true,
        };
        set(&self.filters) || set(&self.compressor)
    }

    /// The codecs in encoding order: filters, then the compressor.
    pub fn codecs(&self) -> Result<Vec<&Json>, String> {
        let mut out: Vec<&Json> = Vec::new();
        match &self.filters {
            None | Some(Json::Null) => {}
            Some(Json::Array(f)) => out.extend(f.iter()),
            Some(other) => return Err(format!("bad filters {}", other.to_compact())),
        }
        match &self.compressor {
            None | Some(Json::Null) => {}
            Some(c) => out.push(c),
        }
        Ok(out)
    }

    pub fn is_c_order(&self) -> bool {
        self.order.as_ref().and_then(Json::as_str) == Some("C")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_absent_members_absent() {
        let text = r#"{"chunks":[1,2],"compressor":{"id":"zlib","level":4},"dtype":"<f4","fill_value":"NaN","filters":null,"order":"C","shape":[3,4],"x":[1],"zarr_format":2}"#;
        let z = ZArray::parse(text).unwrap();
        assert_eq!(z.to_json().to_compact(), text);
        assert!(z.has_codecs());
        assert_eq!(z.itemsize(), Some(4));
        assert_eq!(z.member("filters"), Json::Null);
        assert_eq!(z.member("x").to_compact(), "[1]");
        let bare = ZArray::parse(r#"{"chunks":[2],"shape":[2]}"#).unwrap();
        assert_eq!(bare.to_json().to_compact(), r#"{"chunks":[2],"shape":[2]}"#);
        assert_eq!(bare.member("compressor"), Json::Null);
        assert!(!bare.has_codecs());
    }

    #[test]
    fn rejects_bad_documents() {
        assert_eq!(ZArray::parse("[]"), Err(ZArrayError::NotObject));
        assert_eq!(ZArray::parse(r#"{"chunks":[1]}"#), Err(ZArrayError::Shape));
        assert_eq!(
            ZArray::parse(r#"{"shape":[1],"chunks":[-1]}"#),
            Err(ZArrayError::Chunks)
        );
        assert_eq!(
            ZArray::parse(r#"{"shape":[1],"chunks":[0]}"#),
            Err(ZArrayError::Mismatch)
        );
        assert_eq!(
            ZArray::parse(r#"{"shape":[1,1],"chunks":[1]}"#),
            Err(ZArrayError::Mismatch)
        );
        assert!(matches!(ZArray::parse("{"), Err(ZArrayError::Json(_))));
    }
}
