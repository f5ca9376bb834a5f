//! netCDF-4 conventions: recognising netCDF files and variables, and the
//! netCDF length of unlimited dimensions.

use super::*;

/// True when the file was written by netCDF-4: `_NCProperties` on the root
/// group, or any dataset carrying netCDF-4's hidden `_Netcdf4Dimid` /
/// `_Netcdf4Coordinates` attributes.
pub fn is_netcdf4_file(root: &Group) -> bool {
    fn any_ds(g: &Group) -> bool {
        g.datasets.iter().any(|d| {
            d.attributes
                .iter()
                .any(|a| a.name == "_Netcdf4Dimid" || a.name == "_Netcdf4Coordinates")
        }) || g.groups.iter().any(any_ds)
    }
    root.attributes.iter().any(|a| a.name == "_NCProperties") || any_ds(root)
}

/// Lengths of the netCDF-4 unlimited dimensions, keyed by scale path.
///
/// netCDF-C (`nc4_find_dim_len`) defines an unlimited dimension's length
/// as the largest current extent along it over every variable that uses
/// it; a variable with fewer records has that length too, its unwritten
/// records reading as the fill value. Here: the maximum, over every
/// dataset with an unlimited axis named by a scale (the scale itself
/// included), of the extent along that axis. Empty for non-netCDF files.
pub(super) fn netcdf_dim_lengths(root: &Group, book: &AddressBook) -> HashMap<String, u64> {
    fn walk(g: &Group, book: &AddressBook, out: &mut HashMap<String, u64>) {
        for ds in &g.datasets {
            let hdf5_lite::Dataspace::Simple { dims, max_dims } = &ds.dataspace else {
                continue;
            };
            let Ok(axes) = resolve_dimensions(ds, dims.len(), book) else {
                continue;
            };
            for ((len, max), axis) in dims.iter().zip(max_dims).zip(axes) {
                if let (None, Some(scale)) = (max, axis.scale) {
                    let e = out.entry(scale).or_insert(0);
                    *e = (*e).max(*len);
                }
            }
        }
        for c in &g.groups {
            walk(c, book, out);
        }
    }
    let mut out = HashMap::new();
    if is_netcdf4_file(root) {
        walk(root, book, &mut out);
    }
    out
}

/// zarr shape of a chunked dataset: its HDF5 extent, except that in a
/// netCDF-4 file an unlimited axis takes the netCDF dimension length (see
/// [`netcdf_dim_lengths`]), so a variable with fewer records than its
/// dimension reads like netCDF-C shows it: same length as its neighbours,
/// unwritten records = fill value (zarr's `fill_value` for the absent
/// chunks). `Err` (a warning; the HDF5 extent is kept) when that fill
/// would not be exact: HDF5 fill undefined, or different from the zarr
/// `fill_value`, or a partly used boundary chunk whose unused part HDF5
/// did not initialise with the fill value.
pub(super) fn netcdf_shape(
    ds: &Dataset,
    dims: &[Dim],
    shape: &[u64],
    chunk_shape: &[u64],
    zd: &ZDtype,
    ctx: &Ctx,
) -> Result<Vec<u64>, String> {
    let hdf5_lite::Dataspace::Simple { max_dims, .. } = &ds.dataspace else {
        return Ok(shape.to_vec());
    };
    let mut out = shape.to_vec();
    let mut partial = false;
    for (d, axis) in dims.iter().enumerate() {
        if max_dims.get(d).is_some_and(Option::is_none)
            && let Some(len) = axis.scale.as_ref().and_then(|p| ctx.dim_lengths.get(p))
            && *len > shape[d]
        {
            out[d] = *len;
            partial |= !shape[d].is_multiple_of(chunk_shape[d]);
        }
    }
    if out == shape {
        return Ok(out);
    }
    let why = |r: &str| {
        Err(format!(
            "shape kept at the HDF5 extent {shape:?}, not the netCDF dimension lengths {out:?}: {r}"
        ))
    };
    if ds.fill_value.value.is_none() {
        return why("no HDF5 fill value defined for the unwritten records");
    }
    if fill_value(ds, zd, false) != hdf5_fill(ds, zd) {
        return why("the _FillValue attribute differs from the HDF5 fill value");
    }
    let fill_written = ds.fill_value.fill_time == 0
        || (ds.fill_value.fill_time == 2 && ds.fill_value.user_defined);
    if partial && !fill_written {
        return why("a boundary chunk's unused part was not initialised with the fill value");
    }
    Ok(out)
}

/// True for what kerchunk treats as a netCDF variable (any attribute name
/// containing `_Netcdf4`) or a CF time (`units` containing `since`).
pub fn is_netcdf_variable(ds: &Dataset) -> bool {
    ds.attributes.iter().any(|a| a.name.contains("_Netcdf4"))
        || str_attr(&ds.attributes, "units").is_some_and(|u| u.contains("since"))
}
