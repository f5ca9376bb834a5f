//! Embedded values (vlen strings and sequences): numcodecs `JSON` and
//! `VLenArray` chunks.

use super::*;

/// One element as kerchunk embeds it (h5py value with bytes decoded).
pub(super) fn embed_value(v: &Value) -> Json {
    match v {
        Value::Str(s) => Json::Str(s.clone()),
        Value::Null => Json::Str(String::new()),
        Value::Int(i) => Json::Int(*i),
        Value::UInt(u) => Json::UInt(*u),
        Value::Float(f) => Json::Float(*f),
        Value::Enum { value, .. } => Json::Int(*value),
        Value::Compound(members) => {
            Json::Array(members.iter().map(|(_, m)| embed_value(m)).collect())
        }
        Value::Array(items) | Value::Vlen(items) => {
            Json::Array(items.iter().map(embed_value).collect())
        }
        Value::Bytes(b) => Json::Str(String::from_utf8_lossy(b).into_owned()),
        Value::ObjectRef(_) | Value::OtherRef(_) => Json::Null,
    }
}

/// The values of every chunk of the grid, in C order: `(chunk index,
/// cells)`, a cell `None` past the array edge.
#[allow(clippy::type_complexity)]
pub(super) fn chunk_cells<'v>(
    plan: &EmbedPlan,
    values: &'v [Value],
) -> Result<Vec<(Vec<u64>, Vec<Option<&'v Value>>)>, String> {
    let total: u64 = plan.shape.iter().product();
    if values.len() as u64 != total {
        return Err(format!(
            "read {} values, the dataspace has {total}",
            values.len()
        ));
    }
    let rank = plan.shape.len();
    let grid: Vec<u64> = plan
        .shape
        .iter()
        .zip(&plan.chunks)
        .map(|(s, c)| s.div_ceil(*c))
        .collect();
    let mut out = Vec::new();
    let nchunks: u64 = grid.iter().product();
    let per_chunk: u64 = plan.chunks.iter().product();
    for flat in 0..nchunks {
        // chunk index in C order
        let mut idx = vec![0u64; rank];
        let mut rem = flat;
        for d in (0..rank).rev() {
            idx[d] = rem % grid[d];
            rem /= grid[d];
        }
        let mut cells = Vec::with_capacity(per_chunk as usize);
        for within in 0..per_chunk {
            let mut pos = vec![0u64; rank];
            let mut r = within;
            for d in (0..rank).rev() {
                pos[d] = idx[d] * plan.chunks[d] + r % plan.chunks[d];
                r /= plan.chunks[d];
            }
            if pos.iter().zip(&plan.shape).any(|(p, s)| p >= s) {
                cells.push(None);
                continue;
            }
            let lin = pos
                .iter()
                .zip(&plan.shape)
                .fold(0u64, |acc, (p, s)| acc * s + p);
            cells.push(Some(
                values.get(lin as usize).ok_or("value index out of range")?,
            ));
        }
        out.push((idx, cells));
    }
    Ok(out)
}

/// numcodecs `JSON` chunks (`[v0, v1, ..., "|O", [chunk shape]]`) for every
/// chunk of the grid; positions past the array edge are `null`, as zarr
/// leaves them for object arrays without a fill value.
pub(super) fn embed(plan: &EmbedPlan, values: &[Value]) -> Result<Vec<(String, String)>, String> {
    let rank = plan.shape.len();
    let mut out = Vec::new();
    for (idx, cells) in chunk_cells(plan, values)? {
        let mut items: Vec<Json> = cells
            .into_iter()
            .map(|c| c.map_or(Json::Null, embed_value))
            .collect();
        // numcodecs' JSON codec writes `chunk.tolist()` and decodes with
        // `out[:] = items[:-2]`: nested lists for 2-D and higher chunks
        if rank >= 2 {
            items = match crate::attrs::nest(items, &plan.chunks) {
                Json::Array(rows) => rows,
                other => vec![other],
            };
        }
        items.push(Json::from("|O"));
        items.push(Json::Array(
            plan.chunks.iter().map(|c| Json::UInt(*c)).collect(),
        ));
        out.push((
            chunk_key(&plan.prefix, &idx),
            Json::Array(items).to_compact(),
        ));
    }
    Ok(out)
}

/// numcodecs `VLenArray` chunks for a vlen sequence of numbers: a
/// little-endian u32 item count, then per item its byte length (u32 LE)
/// and its elements in `base`'s dtype. zarr 2 decodes them to an object
/// array of numpy arrays, as h5py and netCDF4-python read vlen data.
/// (numcodecs' JSON codec cannot carry them: `out[:] = items` broadcasts
/// equal-length sequences into an extra axis and fails.) Positions past
/// the array edge are empty sequences.
pub(super) fn embed_vlen_array(
    plan: &EmbedPlan,
    values: &[Value],
    base: &ZDtype,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    for (idx, cells) in chunk_cells(plan, values)? {
        let n = u32::try_from(cells.len()).map_err(|_| "chunk too large")?;
        let mut buf = n.to_le_bytes().to_vec();
        for c in cells {
            let items: &[Value] = match c {
                None | Some(Value::Null) => &[],
                Some(Value::Vlen(items)) => items,
                Some(other) => return Err(format!("not a vlen sequence: {other:?}")),
            };
            let mut bytes = Vec::with_capacity(items.len() * base.size as usize);
            for v in items {
                bytes.extend(number_bytes(v, base).ok_or_else(|| {
                    format!("vlen element {v:?} is not a {}", base.json.to_compact())
                })?);
            }
            let len = u32::try_from(bytes.len()).map_err(|_| "vlen item too large")?;
            buf.extend_from_slice(&len.to_le_bytes());
            buf.extend(bytes);
        }
        out.push((chunk_key(&plan.prefix, &idx), buf));
    }
    Ok(out)
}

/// One decoded number in the byte layout of a numeric zarr dtype.
pub(super) fn number_bytes(v: &Value, z: &ZDtype) -> Option<Vec<u8>> {
    let mut b = match (z.kind, z.size, v) {
        (Kind::Int, 1, Value::Int(i)) => i8::try_from(*i).ok()?.to_le_bytes().to_vec(),
        (Kind::Int, 2, Value::Int(i)) => i16::try_from(*i).ok()?.to_le_bytes().to_vec(),
        (Kind::Int, 4, Value::Int(i)) => i32::try_from(*i).ok()?.to_le_bytes().to_vec(),
        (Kind::Int, 8, Value::Int(i)) => i.to_le_bytes().to_vec(),
        (Kind::UInt, 1, Value::UInt(u)) => u8::try_from(*u).ok()?.to_le_bytes().to_vec(),
        (Kind::UInt, 2, Value::UInt(u)) => u16::try_from(*u).ok()?.to_le_bytes().to_vec(),
        (Kind::UInt, 4, Value::UInt(u)) => u32::try_from(*u).ok()?.to_le_bytes().to_vec(),
        (Kind::UInt, 8, Value::UInt(u)) => u.to_le_bytes().to_vec(),
        // decoded floats are exact widenings of the stored value
        (Kind::Float, 4, Value::Float(f)) => (*f as f32).to_le_bytes().to_vec(),
        (Kind::Float, 8, Value::Float(f)) => f.to_le_bytes().to_vec(),
        _ => return None,
    };
    if matches!(z.order, Some(hdf5_lite::ByteOrder::BigEndian)) {
        b.reverse();
    }
    Some(b)
}
