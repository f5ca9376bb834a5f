//! Golden test: hdf5-lite's view of every fixture must equal the h5py
//! oracle's (`fixtures/oracle.py` → `fixtures/golden/<file>.json`).
//!
//! Each golden names one file under `fixtures/files`. We open it with
//! [`hdf5_lite::open_path`], convert our model into the oracle's JSON schema
//! (see `fixtures/README.md`) and compare everything, collecting all
//! mismatches of a file before failing with a readable list.
//!
//! Conventions mirrored from h5py (see the oracle's docstring):
//! * object paths are the ones `H5Ovisit(H5_INDEX_NAME)` produces: depth
//!   first, links in byte order of their names, hard links only, each object
//!   at the first path reaching it. We recompute that from the model (groups,
//!   datasets, named datatypes and `OtherLink::Hard` aliases), so a different
//!   canonical path choice in the model (creation order) is not an error.
//! * types are reported as HDF5 returns them from `H5Dget_type`/`H5Aget_type`:
//!   with the *memory* location, so a vlen string has size 8 (`char *`), a
//!   vlen sequence 16 (`hvl_t`), object/region references 8/12, and a
//!   compound holding such members is re-laid-out (`H5T__set_loc`).
//! * enum members are compared sorted by name.
//! * fixed strings: bytes with padding stripped; valid UTF-8 → string, else
//!   `{"hex": ...}`.
//! * floats: numbers, or "NaN" / "Infinity" / "-Infinity".

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use hdf5_lite::{
    Attribute, ByteOrder, CharSet, Dataset, Dataspace, Datatype, Group, Layout, NamedDatatype,
    OtherLink, ReferenceKind, StringPadding, Value,
};
use serde_json::{Map, Value as J, json};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

// ---------------------------------------------------------------------------
// Datatype -> TYPE
// ---------------------------------------------------------------------------

fn order(o: &ByteOrder) -> &'static str {
    match o {
        ByteOrder::LittleEndian => "<",
        ByteOrder::BigEndian => ">",
    }
}

fn pad(p: &StringPadding) -> &'static str {
    match p {
        StringPadding::NullTerminate => "nullterm",
        StringPadding::NullPad => "nullpad",
        StringPadding::SpacePad => "spacepad",
    }
}

fn cset(c: &CharSet) -> &'static str {
    match c {
        CharSet::Ascii => "ascii",
        CharSet::Utf8 => "utf8",
    }
}

/// True when HDF5 would mark the type `force_conv` and change it on
/// `H5T_set_loc(MEMORY)`: it holds a vlen or a reference somewhere.
fn needs_conv(dt: &Datatype) -> bool {
    match dt {
        Datatype::VlenSequence { .. }
        | Datatype::VlenString { .. }
        | Datatype::Reference { .. } => true,
        Datatype::Compound { members, .. } => members.iter().any(|m| needs_conv(&m.datatype)),
        Datatype::Array { base, .. } | Datatype::Enum { base, .. } => needs_conv(base),
        _ => false,
    }
}

/// Decode an enum member value (raw bytes in the base type's order).
fn int_from_bytes(bytes: &[u8], big_endian: bool, signed: bool) -> i128 {
    let mut v: u128 = 0;
    if big_endian {
        for b in bytes {
            v = (v << 8) | *b as u128;
        }
    } else {
        for b in bytes.iter().rev() {
            v = (v << 8) | *b as u128;
        }
    }
    let bits = bytes.len() as u32 * 8;
    if signed && bits > 0 && bits < 128 && (v >> (bits - 1)) & 1 == 1 {
        (v as i128) - (1i128 << bits)
    } else {
        v as i128
    }
}

fn int_json(v: i128) -> J {
    if let Ok(x) = i64::try_from(v) {
        json!(x)
    } else if let Ok(x) = u64::try_from(v) {
        json!(x)
    } else {
        json!(v.to_string())
    }
}

/// The oracle's TYPE for `dt`, and the type's in-memory size.
fn type_json(dt: &Datatype) -> (J, u64) {
    match dt {
        Datatype::FixedPoint {
            size,
            order: o,
            signed,
            ..
        } => (
            json!({"class": "integer", "size": size, "order": order(o), "signed": signed}),
            *size as u64,
        ),
        Datatype::FloatingPoint {
            size,
            order: o,
            bit_offset,
            bit_precision,
            exponent_location,
            exponent_size,
            mantissa_location,
            mantissa_size,
            exponent_bias,
        } => {
            // The model has no sign location; every IEEE-like type HDF5
            // writes keeps the sign bit right above the exponent.
            let spos = *exponent_location as u32 + *exponent_size as u32;
            (
                json!({"class": "float", "size": size, "order": order(o),
                       "precision": bit_precision, "offset": bit_offset,
                       "fields": [spos, exponent_location, exponent_size, mantissa_location, mantissa_size],
                       "ebias": exponent_bias}),
                *size as u64,
            )
        }
        Datatype::String {
            size,
            padding,
            charset,
        } => (
            json!({"class": "string", "size": size, "vlen": false, "pad": pad(padding), "cset": cset(charset)}),
            *size as u64,
        ),
        Datatype::VlenString {
            padding, charset, ..
        } => (
            json!({"class": "string", "size": 8, "vlen": true, "pad": pad(padding), "cset": cset(charset)}),
            8,
        ),
        Datatype::Bitfield { size, order: o, .. } => (
            json!({"class": "bitfield", "size": size, "order": order(o)}),
            *size as u64,
        ),
        Datatype::Opaque { size, tag } => (
            json!({"class": "opaque", "size": size, "tag": tag}),
            *size as u64,
        ),
        Datatype::Reference { size, kind } => {
            let (k, mem) = match kind {
                ReferenceKind::Object => ("object", 8u64),
                ReferenceKind::Region => ("region", 12u64),
                ReferenceKind::Other(_) => ("other", *size as u64),
            };
            (json!({"class": "reference", "size": mem, "kind": k}), mem)
        }
        Datatype::Enum {
            size,
            base,
            members,
        } => {
            let (bj, _) = type_json(base);
            let (big, signed) = match base.as_ref() {
                Datatype::FixedPoint { order, signed, .. } => {
                    (*order == ByteOrder::BigEndian, *signed)
                }
                _ => (false, true),
            };
            let mut ms: Vec<(String, i128)> = members
                .iter()
                .map(|(n, raw)| (n.clone(), int_from_bytes(raw, big, signed)))
                .collect();
            ms.sort();
            let ms: Vec<J> = ms
                .into_iter()
                .map(|(n, v)| json!([n, int_json(v)]))
                .collect();
            (
                json!({"class": "enum", "size": size, "base": bj, "members": ms}),
                *size as u64,
            )
        }
        Datatype::VlenSequence { base, .. } => {
            let (bj, _) = type_json(base);
            (json!({"class": "vlen", "size": 16, "base": bj}), 16)
        }
        Datatype::Array { dims, base, size } => {
            let (bj, bsize) = type_json(base);
            let n: u64 = dims.iter().map(|d| *d as u64).product();
            let mem = if needs_conv(base) {
                n * bsize
            } else {
                *size as u64
            };
            (
                json!({"class": "array", "size": mem, "dims": dims, "base": bj}),
                mem,
            )
        }
        Datatype::Compound { size, members } => {
            if !needs_conv(dt) {
                let ms: Vec<J> = members
                    .iter()
                    .map(|m| json!({"name": m.name, "offset": m.offset, "type": type_json(&m.datatype).0}))
                    .collect();
                return (
                    json!({"class": "compound", "size": size, "members": ms}),
                    *size as u64,
                );
            }
            // H5T__set_loc: sort by offset, shift each member by the size
            // change accumulated before it, grow the compound by the total.
            let mut sorted: Vec<_> = members.iter().collect();
            sorted.sort_by_key(|m| m.offset);
            let mut accum: i64 = 0;
            let mut ms = Vec::new();
            for m in sorted {
                let (tj, mem) = type_json(&m.datatype);
                let off = m.offset as i64 + accum;
                if needs_conv(&m.datatype) {
                    accum += mem as i64 - m.datatype.size() as i64;
                }
                ms.push(json!({"name": m.name, "offset": off, "type": tj}));
            }
            let mem = (*size as i64 + accum) as u64;
            (
                json!({"class": "compound", "size": mem, "members": ms}),
                mem,
            )
        }
    }
}

// ---------------------------------------------------------------------------
// Value -> ELEM
// ---------------------------------------------------------------------------

fn float_json(x: f64) -> J {
    if x.is_nan() {
        json!("NaN")
    } else if x.is_infinite() {
        json!(if x > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(x)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn string_bytes_json(bytes: &[u8]) -> J {
    let mut end = bytes.len();
    while end > 0 && bytes[end - 1] == 0 {
        end -= 1;
    }
    match std::str::from_utf8(&bytes[..end]) {
        Ok(s) => json!(s),
        Err(_) => json!({"hex": hex(&bytes[..end])}),
    }
}

struct Ctx<'a> {
    /// object header address -> h5py's path for it
    path_of: &'a HashMap<u64, String>,
}

fn elem_json(v: &Value, dt: &Datatype, cx: &Ctx) -> J {
    match (v, dt) {
        (Value::Null, _) => J::Null,
        (Value::Int(i), Datatype::FloatingPoint { .. }) => float_json(*i as f64),
        (Value::UInt(u), Datatype::FloatingPoint { .. }) => float_json(*u as f64),
        (Value::Int(i), _) => json!(i),
        (Value::UInt(u), _) => json!(u),
        (Value::Float(x), _) => float_json(*x),
        (Value::Str(s), _) => json!(s),
        (Value::Enum { value, .. }, _) => json!(value),
        (Value::Bytes(b), Datatype::Opaque { .. }) => json!({"hex": hex(b)}),
        (Value::Bytes(b), Datatype::Bitfield { order: o, .. })
        | (
            Value::Bytes(b),
            Datatype::FixedPoint {
                order: o,
                signed: false,
                ..
            },
        ) => int_json(int_from_bytes(b, *o == ByteOrder::BigEndian, false)),
        (
            Value::Bytes(b),
            Datatype::FixedPoint {
                order: o,
                signed: true,
                ..
            },
        ) => int_json(int_from_bytes(b, *o == ByteOrder::BigEndian, true)),
        (Value::Bytes(b), Datatype::String { .. } | Datatype::VlenString { .. }) => {
            string_bytes_json(b)
        }
        (Value::Bytes(b), _) => json!({"hex": hex(b)}),
        (Value::Compound(fields), Datatype::Compound { members, .. }) => {
            let mut m = Map::new();
            for (name, fv) in fields {
                let fdt = members
                    .iter()
                    .find(|mm| &mm.name == name)
                    .map(|mm| &mm.datatype);
                let j = match fdt {
                    Some(fdt) => elem_json(fv, fdt, cx),
                    None => json!({"unknown_member": name}),
                };
                m.insert(name.clone(), j);
            }
            J::Object(m)
        }
        (Value::Array(vs), Datatype::Array { base, .. })
        | (Value::Vlen(vs), Datatype::VlenSequence { base, .. }) => {
            J::Array(vs.iter().map(|x| elem_json(x, base, cx)).collect())
        }
        (Value::Array(vs), _) | (Value::Vlen(vs), _) => {
            J::Array(vs.iter().map(|x| elem_json(x, dt, cx)).collect())
        }
        (Value::ObjectRef(addr), _) => match cx.path_of.get(addr) {
            Some(p) => json!({"ref": p}),
            None => json!({"ref": format!("<no object at address {addr:#x}>")}),
        },
        (
            Value::OtherRef(raw),
            Datatype::Reference {
                kind: ReferenceKind::Region,
                ..
            },
        ) => {
            if raw.iter().all(|b| *b == 0) {
                J::Null
            } else {
                json!({"region_ref": true})
            }
        }
        (Value::OtherRef(raw), _) => json!({"other_ref": hex(raw)}),
        (Value::Compound(_), _) => json!({"compound_value_for_non_compound_type": true}),
    }
}

fn shape_json(ds: &Dataspace) -> J {
    match ds {
        Dataspace::Scalar => json!([]),
        Dataspace::Null => J::Null,
        Dataspace::Simple { dims, .. } => json!(dims),
    }
}

fn maxshape_json(ds: &Dataspace) -> J {
    match ds {
        Dataspace::Scalar => json!([]),
        Dataspace::Null => J::Null,
        Dataspace::Simple { max_dims, .. } => J::Array(
            max_dims
                .iter()
                .map(|m| m.map_or(J::Null, |x| json!(x)))
                .collect(),
        ),
    }
}

fn attrs_json(attrs: &[Attribute], cx: &Ctx) -> J {
    let mut m = Map::new();
    for a in attrs {
        let value = match a.dataspace {
            Dataspace::Null => J::Null,
            _ => J::Array(
                a.value
                    .iter()
                    .map(|v| elem_json(v, &a.datatype, cx))
                    .collect(),
            ),
        };
        m.insert(
            a.name.clone(),
            json!({"type": type_json(&a.datatype).0, "shape": shape_json(&a.dataspace), "value": value}),
        );
    }
    J::Object(m)
}

// ---------------------------------------------------------------------------
// the visit h5py does, recomputed on the model
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Obj<'a> {
    Group(&'a Group),
    Dataset(&'a Dataset),
    Datatype(&'a NamedDatatype),
}

fn last(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_string()
}

fn index_objects<'a>(g: &'a Group, by_addr: &mut HashMap<u64, Obj<'a>>) {
    by_addr.entry(g.address).or_insert(Obj::Group(g));
    for d in &g.datasets {
        by_addr.entry(d.address).or_insert(Obj::Dataset(d));
    }
    for t in &g.datatypes {
        by_addr.entry(t.address).or_insert(Obj::Datatype(t));
    }
    for c in &g.groups {
        index_objects(c, by_addr);
    }
}

/// Hard links of a group: (name, target address), sorted by name bytes.
fn hard_links(g: &Group) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = Vec::new();
    v.extend(g.groups.iter().map(|c| (last(&c.path), c.address)));
    v.extend(g.datasets.iter().map(|d| (last(&d.path), d.address)));
    v.extend(g.datatypes.iter().map(|t| (last(&t.path), t.address)));
    for l in &g.other_links {
        if let OtherLink::Hard { name, address, .. } = l {
            v.push((name.clone(), *address));
        }
    }
    v.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    v
}

struct Visit<'a> {
    /// visit path -> object, in the order h5py visits them
    objects: Vec<(String, Obj<'a>)>,
    path_of: HashMap<u64, String>,
    problems: Vec<String>,
}

fn visit<'a>(root: &'a Group) -> Visit<'a> {
    let mut by_addr = HashMap::new();
    index_objects(root, &mut by_addr);
    let mut out = Visit {
        objects: vec![],
        path_of: HashMap::new(),
        problems: vec![],
    };
    out.path_of.insert(root.address, "/".to_string());
    fn rec<'a>(g: &'a Group, prefix: &str, by_addr: &HashMap<u64, Obj<'a>>, out: &mut Visit<'a>) {
        for (name, addr) in hard_links(g) {
            if out.path_of.contains_key(&addr) {
                continue;
            }
            let path = format!("{prefix}/{name}");
            out.path_of.insert(addr, path.clone());
            match by_addr.get(&addr) {
                Some(obj) => {
                    out.objects.push((path.clone(), *obj));
                    if let Obj::Group(child) = obj {
                        rec(child, &path, by_addr, out);
                    }
                }
                None => out.problems.push(format!(
                    "{path}: hard link to address {addr:#x}, which the model lists nowhere"
                )),
            }
        }
    }
    rec(root, "", &by_addr, &mut out);
    out
}

// ---------------------------------------------------------------------------
// Dataset -> oracle JSON
// ---------------------------------------------------------------------------

fn layout_name(l: &Layout) -> &'static str {
    match l {
        Layout::Compact { .. } => "compact",
        Layout::Contiguous { .. } => "contiguous",
        Layout::Chunked { .. } => "chunked",
        Layout::Virtual => "virtual",
        Layout::External { .. } => "external",
    }
}

fn dataset_json(d: &Dataset, cx: &Ctx) -> J {
    let chunks = match &d.layout {
        Layout::Chunked { chunk_shape, .. } => json!(chunk_shape),
        _ => J::Null,
    };
    let contiguous = match &d.layout {
        Layout::Contiguous { address, size } => json!({"offset": address, "size": size}),
        _ => J::Null,
    };
    let chunk_list = match &d.layout {
        Layout::Chunked { chunks, .. } => {
            let mut rows: Vec<Vec<u64>> = chunks
                .iter()
                .map(|c| {
                    let mut r = c.offset.clone();
                    r.extend([c.address, c.size, c.filter_mask as u64]);
                    r
                })
                .collect();
            rows.sort();
            json!(rows)
        }
        _ => J::Null,
    };
    let filters: Vec<J> = d
        .filters
        .iter()
        .map(|f| json!({"id": f.id, "cd": f.client_data}))
        .collect();
    json!({
        "type": type_json(&d.datatype).0,
        "shape": shape_json(&d.dataspace),
        "maxshape": maxshape_json(&d.dataspace),
        "layout": layout_name(&d.layout),
        "chunks": chunks,
        "filters": filters,
        "fill": {"user_defined": d.fill_value.user_defined,
                 "hex": d.fill_value.value.as_ref().map(|v| hex(v))},
        "contiguous": contiguous,
        "chunk_list": chunk_list,
        "attrs": attrs_json(&d.attributes, cx),
    })
}

// ---------------------------------------------------------------------------
// comparison
// ---------------------------------------------------------------------------

fn short(v: &J) -> String {
    let s = v.to_string();
    if s.chars().count() > 300 {
        let head: String = s.chars().take(300).collect();
        format!("{head}…({} chars)", s.len())
    } else {
        s
    }
}

fn num_eq(a: &serde_json::Number, b: &serde_json::Number) -> bool {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return x == y;
    }
    // serde_json without its `float_roundtrip` feature may parse a decimal
    // one ulp off the correctly rounded double, so allow exactly that.
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => {
            x == y
                || (x.is_sign_negative() == y.is_sign_negative()
                    && x.to_bits().abs_diff(y.to_bits()) <= 1)
        }
        _ => false,
    }
}

fn json_eq(a: &J, b: &J) -> bool {
    match (a, b) {
        (J::Number(x), J::Number(y)) => num_eq(x, y),
        (J::Array(x), J::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Record where `got` differs from `want`, descending into objects and
/// same-length arrays so the message points at the first differing spot.
fn diff(label: &str, want: &J, got: &J, out: &mut Vec<String>) {
    if json_eq(want, got) {
        return;
    }
    match (want, got) {
        (J::Object(w), J::Object(g)) => {
            for k in w.keys().filter(|k| !g.contains_key(*k)) {
                out.push(format!(
                    "{label}: missing {k:?} (expected {})",
                    short(&w[k])
                ));
            }
            for k in g.keys().filter(|k| !w.contains_key(*k)) {
                out.push(format!("{label}: unexpected {k:?} = {}", short(&g[k])));
            }
            for (k, wv) in w {
                if let Some(gv) = g.get(k) {
                    diff(&format!("{label}.{k}"), wv, gv, out);
                }
            }
        }
        (J::Array(w), J::Array(g)) if w.len() == g.len() => {
            let bad: Vec<usize> = (0..w.len()).filter(|i| !json_eq(&w[*i], &g[*i])).collect();
            for i in bad.iter().take(3) {
                diff(&format!("{label}[{i}]"), &w[*i], &g[*i], out);
            }
            if bad.len() > 3 {
                out.push(format!(
                    "{label}: … and {} more differing elements",
                    bad.len() - 3
                ));
            }
        }
        _ => out.push(format!(
            "{label} differs: expected {}, got {}",
            short(want),
            short(got)
        )),
    }
}

fn compare_dataset(label: &str, want: &J, d: &Dataset, cx: &Ctx, out: &mut Vec<String>) {
    let got = dataset_json(d, cx);
    for key in ["type", "shape", "maxshape", "attrs"] {
        diff(&format!("{label}: {key}"), &want[key], &got[key], out);
    }
    let want_layout = want["layout"].as_str().unwrap_or("?");
    if want_layout == "virtual" || want_layout == "external" {
        // unsupported storage: must be flagged, never indexed silently
        if d.error.is_none() && layout_name(&d.layout) != want_layout {
            out.push(format!(
                "{label}: {want_layout} dataset reported as {} without an error",
                layout_name(&d.layout)
            ));
        }
        return;
    }
    if let Some(e) = &d.error {
        out.push(format!("{label}: unexpected dataset error: {e}"));
    }
    for key in ["layout", "chunks", "chunk_list"] {
        if key == "chunk_list" && want[key].is_null() && want.get("chunk_list_note").is_some() {
            continue; // the oracle could not establish a trustworthy list
        }
        diff(&format!("{label}: {key}"), &want[key], &got[key], out);
    }
    // filters: ids and client data, in pipeline order
    let wf = want["filters"].as_array().cloned().unwrap_or_default();
    let gf = got["filters"].as_array().cloned().unwrap_or_default();
    if wf.len() != gf.len() {
        out.push(format!(
            "{label}: filters differ: expected {}, got {}",
            short(&want["filters"]),
            short(&got["filters"])
        ));
    } else {
        for (i, (w, g)) in wf.iter().zip(&gf).enumerate() {
            let mut g = g.clone();
            if let Some(n) = w.get("cd_truncated_from").and_then(J::as_u64) {
                // h5py could only report the first 16 client-data values
                let cd = g["cd"].as_array().cloned().unwrap_or_default();
                if cd.len() as u64 != n {
                    out.push(format!(
                        "{label}: filters[{i}].cd has {} values, expected {n}",
                        cd.len()
                    ));
                }
                g["cd"] = J::Array(
                    cd.into_iter()
                        .take(w["cd"].as_array().map_or(0, |a| a.len()))
                        .collect(),
                );
                g["cd_truncated_from"] = json!(n);
            }
            diff(&format!("{label}: filters[{i}]"), w, &g, out);
        }
    }
    // fill: status 2 (user defined) <=> user_defined, equal bytes when known
    if want["fill"].get("oracle_error").is_none() {
        let status = want["fill"]["status"].as_u64().unwrap_or(0);
        if (status == 2) != d.fill_value.user_defined {
            out.push(format!(
                "{label}: fill differs: h5py status {status}, model user_defined={}",
                d.fill_value.user_defined
            ));
        }
        if status == 2 && !want["fill"]["hex"].is_null() {
            diff(
                &format!("{label}: fill.hex"),
                &want["fill"]["hex"],
                &got["fill"]["hex"],
                out,
            );
        }
    }
    // contiguous: offset, and size only when allocated
    if !want["contiguous"].is_null() {
        match &d.layout {
            Layout::Contiguous { address, size } => {
                let woff = &want["contiguous"]["offset"];
                let goff = address.map_or(J::Null, |a| json!(a));
                diff(&format!("{label}: contiguous.offset"), woff, &goff, out);
                if !woff.is_null() {
                    diff(
                        &format!("{label}: contiguous.size"),
                        &want["contiguous"]["size"],
                        &json!(size),
                        out,
                    );
                }
            }
            other => out.push(format!(
                "{label}: expected contiguous layout, got {}",
                layout_name(other)
            )),
        }
    }
}

fn run_golden(rel: &str) {
    let fx = fixtures_dir();
    let golden_path = fx.join("golden").join(format!("{rel}.json"));
    let file_path = fx.join("files").join(rel);
    let text = std::fs::read_to_string(&golden_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", golden_path.display()));
    let want: J = serde_json::from_str(&text).expect("golden is JSON");
    let mut problems: Vec<String> = Vec::new();

    let opened = hdf5_lite::open_path(&file_path);
    if let Some(err) = want.get("oracle_error") {
        // h5py cannot open it (not HDF5 at all): neither may we
        if let Ok(f) = opened {
            panic!(
                "{rel}: h5py failed ({err}) but hdf5-lite opened it (superblock v{})",
                f.superblock_version
            );
        }
        return;
    }
    let file = match opened {
        Ok(f) => f,
        Err(e) => panic!("{rel}: open failed: {e}"),
    };

    diff(
        &format!("{rel}: superblock_version"),
        &want["superblock_version"],
        &json!(file.superblock_version),
        &mut problems,
    );

    let v = visit(&file.root);
    problems.extend(v.problems.iter().map(|p| format!("{rel} {p}")));
    let cx = Ctx {
        path_of: &v.path_of,
    };

    let mut groups: BTreeMap<String, &Group> = BTreeMap::new();
    groups.insert("/".into(), &file.root);
    let mut datasets: BTreeMap<String, &Dataset> = BTreeMap::new();
    let mut types: BTreeMap<String, &NamedDatatype> = BTreeMap::new();
    for (p, o) in &v.objects {
        match o {
            Obj::Group(g) => {
                groups.insert(p.clone(), g);
            }
            Obj::Dataset(d) => {
                datasets.insert(p.clone(), d);
            }
            Obj::Datatype(t) => {
                types.insert(p.clone(), t);
            }
        }
    }

    let empty = Map::new();
    let wg = want["groups"].as_object().unwrap_or(&empty);
    let wd = want["datasets"].as_object().unwrap_or(&empty);
    let wt = want["named_datatypes"].as_object().unwrap_or(&empty);

    for p in wg.keys().filter(|p| !groups.contains_key(*p)) {
        problems.push(format!("{rel} {p}: group missing"));
    }
    for p in groups.keys().filter(|p| !wg.contains_key(*p)) {
        problems.push(format!("{rel} {p}: unexpected group"));
    }
    for p in wd.keys().filter(|p| !datasets.contains_key(*p)) {
        problems.push(format!("{rel} {p}: dataset missing"));
    }
    for p in datasets.keys().filter(|p| !wd.contains_key(*p)) {
        problems.push(format!("{rel} {p}: unexpected dataset"));
    }
    for p in wt.keys().filter(|p| !types.contains_key(*p)) {
        problems.push(format!("{rel} {p}: named datatype missing"));
    }
    for p in types.keys().filter(|p| !wt.contains_key(*p)) {
        problems.push(format!("{rel} {p}: unexpected named datatype"));
    }

    for (p, w) in wg {
        let Some(g) = groups.get(p) else { continue };
        if w.get("oracle_error").is_some() {
            continue;
        }
        diff(
            &format!("{rel} {p}: attrs"),
            &w["attrs"],
            &attrs_json(&g.attributes, &cx),
            &mut problems,
        );
    }
    for (p, w) in wd {
        let Some(d) = datasets.get(p) else { continue };
        if w.get("oracle_error").is_some() {
            continue;
        }
        compare_dataset(&format!("{rel} {p}"), w, d, &cx, &mut problems);
    }
    for (p, w) in wt {
        let Some(t) = types.get(p) else { continue };
        diff(
            &format!("{rel} {p}: named datatype"),
            w,
            &type_json(&t.datatype).0,
            &mut problems,
        );
    }

    if !problems.is_empty() {
        let n = problems.len();
        let mut msg = format!("{rel}: {n} mismatch(es) against the h5py golden\n");
        for p in problems.iter().take(200) {
            msg.push_str("  ");
            msg.push_str(p);
            msg.push('\n');
        }
        if n > 200 {
            msg.push_str(&format!("  … {} more\n", n - 200));
        }
        panic!("{msg}");
    }
}

// ---------------------------------------------------------------------------
// one #[test] per fixture
// ---------------------------------------------------------------------------

macro_rules! golden_tests {
    ($($name:ident => $rel:expr,)*) => {
        $(
            #[test]
            fn $name() {
                run_golden($rel);
            }
        )*
        const LISTED: &[&str] = &[$($rel,)*];
    };
}

golden_tests! {
    external_raw_bin => "external_raw.bin",
    external_storage_h5 => "external_storage.h5",
    hdfgroup_sources_md => "hdfgroup/SOURCES.md",
    hdfgroup_be_data_h5 => "hdfgroup/be_data.h5",
    hdfgroup_btree_idx_1_6_h5 => "hdfgroup/btree_idx_1_6.h5",
    hdfgroup_group_old_h5 => "hdfgroup/group_old.h5",
    hdfgroup_le_data_h5 => "hdfgroup/le_data.h5",
    hdfgroup_tfilters_h5 => "hdfgroup/tfilters.h5",
    hdfgroup_tlayouto_h5 => "hdfgroup/tlayouto.h5",
    hdfgroup_tordergr_h5 => "hdfgroup/tordergr.h5",
    hdfgroup_tsizeslheap_h5 => "hdfgroup/tsizeslheap.h5",
    hdfgroup_tvlstr_h5 => "hdfgroup/tvlstr.h5",
    hdfgroup_twithub_h5 => "hdfgroup/twithub.h5",
    latest_chunk_indexes_h5 => "latest_chunk_indexes.h5",
    netcdf4_classic_nc => "netcdf4_classic.nc",
    netcdf4_features_nc => "netcdf4_features.nc",
    ofs_dbofs_20230323_nos_dbofs_fields_f001_20230323_t12z_nc => "ofs/dbofs.20230323/nos.dbofs.fields.f001.20230323.t12z.nc",
    ofs_dbofs_20241005_dbofs_t06z_20241005_stations_nowcast_nc => "ofs/dbofs.20241005/dbofs.t06z.20241005.stations.nowcast.nc",
    ofs_dbofs_netcdf_2025_06_01_dbofs_t06z_20250601_fields_f002_nc => "ofs/dbofs/netcdf/2025/06/01/dbofs.t06z.20250601.fields.f002.nc",
    ofs_ngofs2_20241005_ngofs2_t03z_20241005_fields_n003_nc => "ofs/ngofs2.20241005/ngofs2.t03z.20241005.fields.n003.nc",
    sb0_attrs_all_types_h5 => "sb0_attrs_all_types.h5",
    sb0_datasets_all_types_h5 => "sb0_datasets_all_types.h5",
    sb0_external_link_h5 => "sb0_external_link.h5",
    sb0_filters_h5 => "sb0_filters.h5",
    sb0_named_types_h5 => "sb0_named_types.h5",
    sb0_old_groups_h5 => "sb0_old_groups.h5",
    realfile_defects_nc => "realfile_defects.nc",
    realfile_filters_h5 => "realfile_filters.h5",
    realfile_types_h5 => "realfile_types.h5",
    sb0_sizes4_h5 => "sb0_sizes4.h5",
    sb0_userblock512_h5 => "sb0_userblock512.h5",
    sb0_v1btree_chunks_h5 => "sb0_v1btree_chunks.h5",
    sb2_attrs_all_types_h5 => "sb2_attrs_all_types.h5",
    sb2_links_h5 => "sb2_links.h5",
    sb3_attrs_all_types_h5 => "sb3_attrs_all_types.h5",
    sb3_datasets_all_types_h5 => "sb3_datasets_all_types.h5",
    sb3_dense_attrs_h5 => "sb3_dense_attrs.h5",
    sb3_filters_h5 => "sb3_filters.h5",
    sb3_links_latest_h5 => "sb3_links_latest.h5",
    sb3_named_types_h5 => "sb3_named_types.h5",
    sb3_paged_file_space_h5 => "sb3_paged_file_space.h5",
    sb3_sizes4_h5 => "sb3_sizes4.h5",
    sb3_userblock512_h5 => "sb3_userblock512.h5",
    vds_source_h5 => "vds_source.h5",
    virtual_dataset_h5 => "virtual_dataset.h5",
}

fn collect_goldens(dir: &Path, root: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("golden dir") {
        let p = entry.expect("dir entry").path();
        if p.is_dir() {
            collect_goldens(&p, root, out);
        } else if let Some(rel) = p
            .strip_prefix(root)
            .ok()
            .and_then(|r| r.to_str())
            .and_then(|r| r.strip_suffix(".json"))
        {
            out.push(rel.replace('\\', "/"));
        }
    }
}

/// Every golden on disk has its own #[test] above (add new fixtures to the
/// `golden_tests!` list), and every listed one exists.
#[test]
fn every_golden_is_listed() {
    let root = fixtures_dir().join("golden");
    let mut found = Vec::new();
    collect_goldens(&root, &root, &mut found);
    found.sort();
    let mut listed: Vec<String> = LISTED.iter().map(|s| s.to_string()).collect();
    listed.sort();
    let missing: Vec<_> = found.iter().filter(|f| !listed.contains(f)).collect();
    let stale: Vec<_> = listed.iter().filter(|l| !found.contains(l)).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "golden_tests! list out of date: add {missing:?}, remove {stale:?}"
    );
}

/// The converters themselves, on hand-built model values (runs without the
/// walker, so it guards the test's own logic).
#[test]
fn converters_match_oracle_conventions() {
    let vstr = Datatype::VlenString {
        size: 16,
        padding: StringPadding::NullTerminate,
        charset: CharSet::Utf8,
    };
    assert_eq!(
        type_json(&vstr).0,
        json!({"class":"string","size":8,"vlen":true,"pad":"nullterm","cset":"utf8"})
    );
    let i4 = Datatype::FixedPoint {
        size: 4,
        order: ByteOrder::LittleEndian,
        signed: true,
        bit_offset: 0,
        bit_precision: 32,
    };
    // {a: i32 @0, s: vlen str @4}, file size 20 -> memory {a @0, s @4}, size 12
    let cmp = Datatype::Compound {
        size: 20,
        members: vec![
            hdf5_lite::CompoundMember {
                name: "a".into(),
                offset: 0,
                datatype: i4.clone(),
            },
            hdf5_lite::CompoundMember {
                name: "s".into(),
                offset: 4,
                datatype: vstr.clone(),
            },
        ],
    };
    let (j, sz) = type_json(&cmp);
    assert_eq!(sz, 12);
    assert_eq!(j["members"][1]["offset"], json!(4));
    let f8 = Datatype::FloatingPoint {
        size: 8,
        order: ByteOrder::BigEndian,
        bit_offset: 0,
        bit_precision: 64,
        exponent_location: 52,
        exponent_size: 11,
        mantissa_location: 0,
        mantissa_size: 52,
        exponent_bias: 1023,
    };
    assert_eq!(type_json(&f8).0["fields"], json!([63, 52, 11, 0, 52]));
    let en = Datatype::Enum {
        size: 2,
        base: Box::new(Datatype::FixedPoint {
            size: 2,
            order: ByteOrder::BigEndian,
            signed: true,
            bit_offset: 0,
            bit_precision: 16,
        }),
        members: vec![
            ("LOW".into(), vec![0xff, 0xfb]),
            ("HIGH".into(), vec![0x03, 0xe8]),
        ],
    };
    assert_eq!(
        type_json(&en).0["members"],
        json!([["HIGH", 1000], ["LOW", -5]])
    );
    let paths = HashMap::from([(96u64, "/ds".to_string())]);
    let cx = Ctx { path_of: &paths };
    assert_eq!(elem_json(&Value::Float(f64::NAN), &f8, &cx), json!("NaN"));
    assert_eq!(
        elem_json(&Value::Float(f64::NEG_INFINITY), &f8, &cx),
        json!("-Infinity")
    );
    let fixed = Datatype::String {
        size: 4,
        padding: StringPadding::NullPad,
        charset: CharSet::Ascii,
    };
    assert_eq!(
        elem_json(&Value::Bytes(vec![0xff, 0xfe, b'a', 0]), &fixed, &cx),
        json!({"hex": "fffe61"})
    );
    assert_eq!(
        elem_json(&Value::Bytes(b"ab\0\0".to_vec()), &fixed, &cx),
        json!("ab")
    );
    let oref = Datatype::Reference {
        size: 8,
        kind: ReferenceKind::Object,
    };
    assert_eq!(
        elem_json(&Value::ObjectRef(96), &oref, &cx),
        json!({"ref": "/ds"})
    );
    assert_eq!(elem_json(&Value::Null, &oref, &cx), J::Null);
    assert!(json_eq(&json!(1.0), &json!(1)));
    assert!(!json_eq(&json!("NaN"), &json!(0)));
}
