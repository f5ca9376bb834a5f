//! `_ARRAY_DIMENSIONS`, as kerchunk's `_get_array_dims`:
//!
//! * rank 0: `[]`;
//! * netCDF-4 (our addition, netCDF-C semantics): when the dataset has a
//!   `_Netcdf4Coordinates` attribute (one netCDF dimid per axis; netCDF-C
//!   writes it on every variable and needs it for multi-dimensional
//!   coordinate variables, which HDF5 cannot attach scales to), each axis
//!   whose dimid is the `_Netcdf4Dimid` of a dimension scale in the
//!   dataset's group or an ancestor (nearest first, like `nc4_find_dim`)
//!   is named by that scale (full path without the leading `/`). So
//!   FVCOM's `siglay(siglay, node)` gets `["siglay", "node"]` where
//!   kerchunk writes `["siglay", "siglay"]`. Axes that do not resolve fall
//!   through to the rules below;
//! * a dimension with exactly one attached scale (one object reference in
//!   that dimension's `DIMENSION_LIST` entry): the scale's full path without
//!   the leading `/` (so `grp/x` for a scale inside a group);
//! * else, if the dataset is itself a dimension scale (`CLASS ==
//!   "DIMENSION_SCALE"`): its own full path without the leading `/`;
//! * more than one scale on a dimension: the first attached one (the first
//!   entry of the `DIMENSION_LIST` reference list), as netCDF-C
//!   (`H5DSiterate_scales` stops at the first scale) and h5netcdf
//!   (`dims[axis][0]`) pick it; kerchunk drops the dataset;
//! * no scale: `phony_dim_<axis>`, numbered by axis within this dataset
//!   (not netCDF's file-wide phony numbering).

use std::collections::HashMap;

use hdf5_lite::{Attribute, Dataset, Group, Value};

use crate::attrs::str_attr;

/// Object header address to path, for resolving `DIMENSION_LIST`, and
/// netCDF dimids (`_Netcdf4Dimid` of dimension scales) per group.
#[derive(Debug, Default, Clone)]
pub struct AddressBook {
    paths: HashMap<u64, String>,
    /// group path -> (dimid -> scale path)
    dimids: HashMap<String, HashMap<i64, String>>,
}

impl AddressBook {
    pub fn from_root(root: &Group) -> Self {
        let mut b = AddressBook::default();
        b.add_group(root);
        b
    }

    fn add_group(&mut self, g: &Group) {
        self.paths
            .entry(g.address)
            .or_insert_with(|| g.path.clone());
        for d in &g.datasets {
            self.paths
                .entry(d.address)
                .or_insert_with(|| d.path.clone());
            if is_scale(d)
                && let Some(id) = int_attr(&d.attributes, "_Netcdf4Dimid")
            {
                self.insert_dimid(&g.path, id, d.path.clone());
            }
        }
        for c in &g.groups {
            self.add_group(c);
        }
    }

    pub fn path(&self, address: u64) -> Option<&str> {
        self.paths.get(&address).map(String::as_str)
    }

    pub fn insert(&mut self, address: u64, path: impl Into<String>) {
        self.paths.insert(address, path.into());
    }

    /// Record that the dimension scale at `scale` in group `group` carries
    /// `_Netcdf4Dimid = dimid`. The first one recorded wins.
    pub fn insert_dimid(&mut self, group: &str, dimid: i64, scale: impl Into<String>) {
        self.dimids
            .entry(group.to_string())
            .or_default()
            .entry(dimid)
            .or_insert_with(|| scale.into());
    }

    /// The scale with netCDF dimid `dimid` visible from a dataset at
    /// `dataset_path`: its own group first, then each ancestor.
    pub fn scale_for_dimid(&self, dataset_path: &str, dimid: i64) -> Option<&str> {
        let mut group = parent_of(dataset_path);
        loop {
            if let Some(p) = self.dimids.get(group).and_then(|m| m.get(&dimid)) {
                return Some(p);
            }
            if group == "/" {
                return None;
            }
            group = parent_of(group);
        }
    }
}

/// Parent group path of an object path (`/a/b` -> `/a`, `/a` -> `/`).
fn parent_of(path: &str) -> &str {
    match path.trim_end_matches('/').rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// A scalar integer attribute.
fn int_attr(attrs: &[Attribute], name: &str) -> Option<i64> {
    let a = attrs.iter().find(|a| a.name == name)?;
    match a.value.as_slice() {
        [v] => value_int(v),
        _ => None,
    }
}

fn value_int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::UInt(u) => i64::try_from(*u).ok(),
        _ => None,
    }
}

/// `_Netcdf4Coordinates` as dimids, when it has one entry per axis.
fn netcdf4_coordinates(ds: &Dataset, rank: usize) -> Option<Vec<i64>> {
    let a = ds
        .attributes
        .iter()
        .find(|a| a.name == "_Netcdf4Coordinates")?;
    if a.value.len() != rank {
        return None;
    }
    a.value.iter().map(value_int).collect()
}

/// True when the dataset is a dimension scale (h5py `h5ds.is_scale`).
pub fn is_scale(ds: &Dataset) -> bool {
    str_attr(&ds.attributes, "CLASS") == Some("DIMENSION_SCALE")
}

fn strip_root(path: &str) -> String {
    path.strip_prefix('/').unwrap_or(path).to_string()
}

/// Object references of each dimension's `DIMENSION_LIST` entry.
fn scales_per_dim(ds: &Dataset, rank: usize) -> Vec<Vec<u64>> {
    let mut out = vec![Vec::new(); rank];
    let Some(a) = ds.attributes.iter().find(|a| a.name == "DIMENSION_LIST") else {
        return out;
    };
    for (n, v) in a.value.iter().enumerate().take(rank) {
        let refs = match v {
            Value::Vlen(items) => items.as_slice(),
            other => std::slice::from_ref(other),
        };
        out[n] = refs
            .iter()
            .filter_map(|r| match r {
                Value::ObjectRef(addr) => Some(*addr),
                _ => None,
            })
            .collect();
    }
    out
}

/// `_ARRAY_DIMENSIONS` for a dataset of the given rank.
pub fn array_dimensions(
    ds: &Dataset,
    rank: usize,
    book: &AddressBook,
) -> Result<Vec<String>, String> {
    Ok(resolve_dimensions(ds, rank, book)?
        .into_iter()
        .map(|d| d.name)
        .collect())
}

/// One axis of a dataset: its `_ARRAY_DIMENSIONS` name and, when the name
/// comes from a dimension scale (including the dataset itself), that
/// scale's full path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dim {
    pub name: String,
    pub scale: Option<String>,
}

/// The axes of a dataset, by the rules in the module documentation.
pub fn resolve_dimensions(
    ds: &Dataset,
    rank: usize,
    book: &AddressBook,
) -> Result<Vec<Dim>, String> {
    let scales = scales_per_dim(ds, rank);
    let coords = netcdf4_coordinates(ds, rank);
    let me_scale = is_scale(ds);
    let mut dims = Vec::with_capacity(rank);
    let scale_dim = |p: &str| Dim {
        name: strip_root(p),
        scale: Some(p.to_string()),
    };
    for (n, refs) in scales.iter().enumerate() {
        if let Some(p) = coords
            .as_ref()
            .and_then(|c| book.scale_for_dimid(&ds.path, c[n]))
        {
            dims.push(scale_dim(p));
            continue;
        }
        match refs.as_slice() {
            [addr, ..] => match book.path(*addr) {
                Some(p) => dims.push(scale_dim(p)),
                None => {
                    return Err(format!(
                        "DIMENSION_LIST of dimension {n} points at {addr:#x}, which is not a known object"
                    ));
                }
            },
            [] if me_scale => dims.push(scale_dim(&ds.path)),
            [] => dims.push(Dim {
                name: format!("phony_dim_{n}"),
                scale: None,
            }),
        }
    }
    Ok(dims)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::attrs::tests::{attr, fixed_str, i4, simple};
    use hdf5_lite::{Dataspace, FillValue, Layout};

    pub(crate) fn ds(path: &str, address: u64, attributes: Vec<hdf5_lite::Attribute>) -> Dataset {
        Dataset {
            path: path.into(),
            address,
            datatype: i4(),
            dataspace: simple(&[2, 3]),
            layout: Layout::Contiguous {
                address: None,
                size: 0,
            },
            filters: vec![],
            fill_value: FillValue::default(),
            attributes,
            error: None,
        }
    }

    fn dimlist(refs: Vec<Vec<u64>>) -> hdf5_lite::Attribute {
        let n = refs.len() as u64;
        attr(
            "DIMENSION_LIST",
            i4(),
            simple(&[n]),
            refs.into_iter()
                .map(|r| Value::Vlen(r.into_iter().map(Value::ObjectRef).collect()))
                .collect(),
        )
    }

    fn class_scale() -> hdf5_lite::Attribute {
        attr(
            "CLASS",
            fixed_str(16),
            Dataspace::Scalar,
            vec![Value::Str("DIMENSION_SCALE".into())],
        )
    }

    #[test]
    fn naming_rules() {
        let mut book = AddressBook::default();
        book.insert(100, "/time");
        book.insert(200, "/grp/x");
        // resolved scales, full path without leading slash
        let v = ds("/grp/v", 1, vec![dimlist(vec![vec![100], vec![200]])]);
        assert_eq!(
            array_dimensions(&v, 2, &book).unwrap(),
            vec!["time", "grp/x"]
        );
        // no DIMENSION_LIST: phony per axis
        let v = ds("/v", 1, vec![]);
        assert_eq!(
            array_dimensions(&v, 3, &book).unwrap(),
            vec!["phony_dim_0", "phony_dim_1", "phony_dim_2"]
        );
        // a scale names itself
        let s = ds("/grp/x", 200, vec![class_scale()]);
        assert_eq!(array_dimensions(&s, 1, &book).unwrap(), vec!["grp/x"]);
        // a 2-D scale with a DIMENSION_LIST entry only for the second axis
        let s = ds(
            "/c",
            300,
            vec![class_scale(), dimlist(vec![vec![], vec![100]])],
        );
        assert_eq!(array_dimensions(&s, 2, &book).unwrap(), vec!["c", "time"]);
        // partly attached: missing entries are phony
        let v = ds("/v", 1, vec![dimlist(vec![vec![100], vec![]])]);
        assert_eq!(
            array_dimensions(&v, 2, &book).unwrap(),
            vec!["time", "phony_dim_1"]
        );
        // scalar
        assert!(array_dimensions(&v, 0, &book).unwrap().is_empty());
        // two scales on one axis: the first attached (netCDF-C, h5netcdf)
        let v = ds("/v", 1, vec![dimlist(vec![vec![200, 100]])]);
        assert_eq!(array_dimensions(&v, 1, &book).unwrap(), vec!["grp/x"]);
        // errors
        let v = ds("/v", 1, vec![dimlist(vec![vec![999]])]);
        assert!(array_dimensions(&v, 1, &book).is_err());
    }

    fn int_attr(name: &str, v: Vec<i64>) -> hdf5_lite::Attribute {
        let space = if v.len() == 1 && name == "_Netcdf4Dimid" {
            Dataspace::Scalar
        } else {
            simple(&[v.len() as u64])
        };
        attr(name, i4(), space, v.into_iter().map(Value::Int).collect())
    }

    #[test]
    fn netcdf4_coordinates_name_axes() {
        // FVCOM: siglay(siglay, node) is a 2-D scale, node a dimension
        // without a variable; g/v(node) in a child group
        let node = ds(
            "/node",
            100,
            vec![class_scale(), int_attr("_Netcdf4Dimid", vec![1])],
        );
        let mut siglay = ds(
            "/siglay",
            200,
            vec![
                class_scale(),
                int_attr("_Netcdf4Dimid", vec![2]),
                int_attr("_Netcdf4Coordinates", vec![2, 1]),
            ],
        );
        siglay.dataspace = simple(&[40, 500]);
        // a non-scale's _Netcdf4Dimid is not a dimension
        let odd = ds("/odd", 300, vec![int_attr("_Netcdf4Dimid", vec![7])]);
        let gv = ds("/g/v", 400, vec![int_attr("_Netcdf4Coordinates", vec![1])]);
        let gw = ds(
            "/g/w",
            500,
            vec![int_attr("_Netcdf4Coordinates", vec![7, 1])],
        );
        let root = Group {
            path: "/".into(),
            address: 96,
            attributes: vec![],
            groups: vec![Group {
                path: "/g".into(),
                address: 600,
                attributes: vec![],
                groups: vec![],
                datasets: vec![gv.clone(), gw.clone()],
                datatypes: vec![],
                other_links: vec![],
            }],
            datasets: vec![node, siglay.clone(), odd],
            datatypes: vec![],
            other_links: vec![],
        };
        let book = AddressBook::from_root(&root);
        assert_eq!(book.scale_for_dimid("/g/v", 1), Some("/node"));
        assert_eq!(book.scale_for_dimid("/g/v", 7), None);
        assert_eq!(
            array_dimensions(&siglay, 2, &book).unwrap(),
            vec!["siglay", "node"]
        );
        let dims = resolve_dimensions(&siglay, 2, &book).unwrap();
        assert_eq!(dims[1].scale.as_deref(), Some("/node"));
        // ancestors are searched
        assert_eq!(array_dimensions(&gv, 1, &book).unwrap(), vec!["node"]);
        // an unresolved dimid falls back per axis
        assert_eq!(
            array_dimensions(&gw, 2, &book).unwrap(),
            vec!["phony_dim_0", "node"]
        );
        // wrong length: ignored, DIMENSION_LIST/self rules apply
        assert_eq!(
            array_dimensions(&siglay, 3, &book).unwrap(),
            vec!["siglay", "siglay", "siglay"]
        );
        // a sibling group does not see another group's dimids
        let mut b2 = AddressBook::default();
        b2.insert_dimid("/a", 3, "/a/t");
        assert_eq!(b2.scale_for_dimid("/b/v", 3), None);
        assert_eq!(b2.scale_for_dimid("/a/sub/v", 3), Some("/a/t"));
    }

    #[test]
    fn address_book_from_tree() {
        let root = Group {
            path: "/".into(),
            address: 96,
            attributes: vec![],
            groups: vec![Group {
                path: "/g".into(),
                address: 500,
                attributes: vec![],
                groups: vec![],
                datasets: vec![ds("/g/x", 600, vec![])],
                datatypes: vec![],
                other_links: vec![],
            }],
            datasets: vec![ds("/t", 700, vec![])],
            datatypes: vec![],
            other_links: vec![],
        };
        let b = AddressBook::from_root(&root);
        assert_eq!(b.path(600), Some("/g/x"));
        assert_eq!(b.path(700), Some("/t"));
        assert_eq!(b.path(500), Some("/g"));
        assert_eq!(b.path(1), None);
    }
}
