//! `_ARRAY_DIMENSIONS`, as kerchunk's `_get_array_dims`:
//!
//! * rank 0: `[]`;
//! * a dimension with exactly one attached scale (one object reference in
//!   that dimension's `DIMENSION_LIST` entry): the scale's full path without
//!   the leading `/` (so `grp/x` for a scale inside a group);
//! * else, if the dataset is itself a dimension scale (`CLASS ==
//!   "DIMENSION_SCALE"`): its own full path without the leading `/`;
//! * more than one scale on a dimension: an error (kerchunk drops the
//!   dataset, we report it);
//! * no scale: `phony_dim_<axis>`, numbered by axis within this dataset
//!   (not netCDF's file-wide phony numbering).

use std::collections::HashMap;

use hdf5_lite::{Dataset, Group, Value};

use crate::attrs::str_attr;

/// Object header address to path, for resolving `DIMENSION_LIST`.
#[derive(Debug, Default, Clone)]
pub struct AddressBook {
    paths: HashMap<u64, String>,
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
    let scales = scales_per_dim(ds, rank);
    let me_scale = is_scale(ds);
    let mut dims = Vec::with_capacity(rank);
    for (n, refs) in scales.iter().enumerate() {
        match refs.as_slice() {
            [addr] => match book.path(*addr) {
                Some(p) => dims.push(strip_root(p)),
                None => {
                    return Err(format!(
                        "DIMENSION_LIST of dimension {n} points at {addr:#x}, which is not a known object"
                    ));
                }
            },
            [] if me_scale => dims.push(strip_root(&ds.path)),
            [] => dims.push(format!("phony_dim_{n}")),
            many => {
                return Err(format!(
                    "{} dimension scales attached to dimension #{n}",
                    many.len()
                ));
            }
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
        // errors
        let v = ds("/v", 1, vec![dimlist(vec![vec![100, 200]])]);
        assert!(array_dimensions(&v, 1, &book).is_err());
        let v = ds("/v", 1, vec![dimlist(vec![vec![999]])]);
        assert!(array_dimensions(&v, 1, &book).is_err());
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
