//! `kerchunk-nos inspect`: what hdf5-lite sees in a file, as JSON.

use serde_json::{Value as J, json};

use hdf5_lite::{Dataset, File, Group, Layout};

/// Every dataset with dtype, shape, layout, filters and every chunk as
/// `[offset..., address, size, filter_mask]`.
pub fn inspect_json(file: &File) -> J {
    let mut datasets = Vec::new();
    collect(&file.root, &mut datasets);
    json!({
        "source": file.source,
        "size": file.size,
        "superblock_version": file.superblock_version,
        "datasets": datasets,
    })
}

fn collect(g: &Group, out: &mut Vec<J>) {
    for d in &g.datasets {
        out.push(dataset_json(d));
    }
    for c in &g.groups {
        collect(c, out);
    }
}

fn dataset_json(d: &Dataset) -> J {
    let (layout, chunk_shape, chunks, contiguous) = match &d.layout {
        Layout::Chunked {
            chunk_shape,
            index,
            chunks,
        } => (
            serde_json::to_value(index).unwrap_or(J::Null),
            json!(chunk_shape),
            J::Array(
                chunks
                    .iter()
                    .map(|c| {
                        let mut v: Vec<J> = c.offset.iter().map(|o| json!(o)).collect();
                        v.extend([json!(c.address), json!(c.size), json!(c.filter_mask)]);
                        J::Array(v)
                    })
                    .collect(),
            ),
            J::Null,
        ),
        Layout::Contiguous { address, size } => (
            json!("contiguous"),
            J::Null,
            J::Null,
            json!([address, size]),
        ),
        Layout::Compact { size, .. } => {
            (json!("compact"), J::Null, J::Null, json!({ "size": size }))
        }
        Layout::Virtual => (json!("virtual"), J::Null, J::Null, J::Null),
        Layout::External { files } => (
            json!("external"),
            J::Null,
            J::Null,
            serde_json::to_value(files).unwrap_or(J::Null),
        ),
    };
    json!({
        "path": d.path,
        "dtype": d.datatype,
        "shape": d.dataspace.shape(),
        "dataspace": d.dataspace,
        "layout": layout,
        "chunk_shape": chunk_shape,
        "filters": d.filters,
        "fill_value": d.fill_value,
        "contiguous": contiguous,
        "chunks": chunks,
        "attributes": d.attributes.iter().map(|a| json!({"name": a.name, "value": a.value})).collect::<Vec<_>>(),
        "error": d.error,
    })
}
