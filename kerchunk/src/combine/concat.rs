//! Writing one array of the output: taken from the first input that has it
//! ([`Mode::First`]), concatenated along the concat axis ([`Mode::Concat`]),
//! or stacked on a new leading axis ([`Mode::Stack`]), with the checks that
//! make the renumbered chunk keys land on the right times.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::coord::{CoordValues, Timeline};
use super::input::{ArrayIn, Input};
use super::{CombineError, CombineOptions};
use crate::json::Json;
use crate::refs::{Ref, RefSet};
use crate::zarr::ZArray;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    First,
    /// Concatenate along this axis.
    Concat(usize),
    Stack,
}

/// The output being built.
#[derive(Default)]
pub(super) struct Output {
    pub refs: RefSet,
    /// Keys of remote chunk references shorter than `inline_threshold`.
    pub inline_candidates: Vec<String>,
}

/// Everything about the combine that is the same for every array.
pub(super) struct Combine<'x, 'a> {
    /// Inputs in time order.
    pub inputs: &'x [Input<'a>],
    pub coords: &'x [CoordValues],
    pub timeline: &'x Timeline,
    pub opts: &'x CombineOptions,
}

/// One array to write: its name and the inputs that have it (in time
/// order; the first one supplies the metadata).
pub(super) struct Array<'s> {
    pub name: &'s str,
    pub holders: &'s [usize],
    pub mode: Mode,
}

fn show(v: &[u64]) -> String {
    format!("{v:?}")
}

fn check_same(
    inp: &Input<'_>,
    var: &str,
    what: &str,
    expected: &[u64],
    found: &[u64],
) -> Result<(), CombineError> {
    if expected != found {
        return Err(CombineError::Inconsistent {
            input: inp.name.to_string(),
            var: var.to_string(),
            what: what.to_string(),
            expected: show(expected),
            found: show(found),
        });
    }
    Ok(())
}

/// Compare one `.zarray` member (absent and `null` are the same).
fn check_member(
    inp: &Input<'_>,
    var: &str,
    member: &str,
    expected: &ZArray,
    found: &ZArray,
) -> Result<(), CombineError> {
    let (e, f) = (expected.member(member), found.member(member));
    if e != f {
        return Err(CombineError::Inconsistent {
            input: inp.name.to_string(),
            var: var.to_string(),
            what: member.to_string(),
            expected: e.to_compact(),
            found: f.to_compact(),
        });
    }
    Ok(())
}

/// Per holder: the input and the length its chunk references are cut to.
struct Plan {
    input: usize,
    /// Its number of coordinate values.
    n_i: u64,
    trim_bytes: Option<u64>,
}

impl Combine<'_, '_> {
    fn dim(&self) -> &str {
        &self.opts.concat_dim
    }

    fn array<'s>(&'s self, i: usize, name: &str) -> Option<&'s ArrayIn<'s>> {
        self.inputs.get(i)?.arrays.get(name)
    }

    pub fn write(&self, a: &Array<'_>, out: &mut Output) -> Result<(), CombineError> {
        match a.mode {
            Mode::First => self.write_first(a, out),
            Mode::Concat(_) | Mode::Stack => self.write_concat(a, out),
        }
    }

    /// Metadata and chunks of the first holder, unchanged; the others must
    /// agree on shape and dtype.
    fn write_first(&self, a: &Array<'_>, out: &mut Output) -> Result<(), CombineError> {
        let Some((&h0, rest)) = a.holders.split_first() else {
            return Ok(());
        };
        let (Some(inp), Some(reference)) = (self.inputs.get(h0), self.array(h0, a.name)) else {
            return Ok(());
        };
        for &i in rest {
            let (Some(other), Some(arr)) = (self.inputs.get(i), self.array(i, a.name)) else {
                continue;
            };
            if arr.same_meta(reference) {
                continue;
            }
            check_same(
                other,
                a.name,
                "shape",
                &reference.meta.shape,
                &arr.meta.shape,
            )?;
            check_member(other, a.name, "dtype", &reference.meta, &arr.meta)?;
        }
        for key in [format!("{}/.zarray", a.name), format!("{}/.zattrs", a.name)] {
            if let Some(r) = inp.set.get(&key) {
                out.refs.insert(key, r.clone());
            }
        }
        for (_, key, r) in reference.chunks() {
            out.refs.insert(key, r.clone());
        }
        Ok(())
    }

    /// Check one holder against the reference (first holder) and work out
    /// its chunk size along the axis and any trimming.
    fn plan(
        &self,
        a: &Array<'_>,
        reference: &ArrayIn<'_>,
        i: usize,
    ) -> Result<(u64, Plan), CombineError> {
        let dim = self.dim();
        let name = a.name;
        let (Some(inp), Some(arr)) = (self.inputs.get(i), self.array(i, name)) else {
            return Err(CombineError::NoInputs);
        };
        let unsup = |msg: String| CombineError::Unsupported {
            input: inp.name.to_string(),
            var: name.to_string(),
            msg,
        };
        if !arr.same_meta(reference) {
            for f in [
                "dtype",
                "fill_value",
                "compressor",
                "filters",
                "order",
                "zarr_format",
            ] {
                check_member(inp, name, f, &reference.meta, &arr.meta)?;
            }
        }
        if arr.dims != reference.dims {
            return Err(CombineError::Inconsistent {
                input: inp.name.to_string(),
                var: name.to_string(),
                what: "_ARRAY_DIMENSIONS".into(),
                expected: format!("{:?}", reference.dims.as_deref()),
                found: format!("{:?}", arr.dims.as_deref()),
            });
        }
        let n_i = self.coords.get(i).map_or(0, |c| c.values.len() as u64);
        let (shape, chunks) = (&arr.meta.shape, &arr.meta.chunks);
        let (c_eff, trim_bytes) = match a.mode {
            Mode::Concat(ax) => {
                let without_axis = |v: &[u64]| {
                    let mut v = v.to_vec();
                    if let Some(x) = v.get_mut(ax) {
                        *x = 0;
                    }
                    v
                };
                check_same(
                    inp,
                    name,
                    "shape (other dims)",
                    &without_axis(&reference.meta.shape),
                    &without_axis(shape),
                )?;
                check_same(
                    inp,
                    name,
                    "chunks (other dims)",
                    &without_axis(&reference.meta.chunks),
                    &without_axis(chunks),
                )?;
                let (Some(&extent), Some(&c)) = (shape.get(ax), chunks.get(ax)) else {
                    return Err(unsup(format!("has no axis {ax}")));
                };
                if extent != n_i {
                    return Err(unsup(format!(
                        "extent {extent} along {dim} but the input has {n_i} {dim} values"
                    )));
                }
                if c > n_i && n_i > 0 {
                    // one chunk overhanging the file's extent: trim it
                    let leading = chunks.get(..ax).unwrap_or_default();
                    let contiguous = leading.iter().all(|&x| x == 1);
                    if arr.meta.has_codecs() || !contiguous || !arr.meta.is_c_order() {
                        return Err(unsup(format!(
                            "its chunk along {dim} ({c}) is longer than its extent ({n_i}) and cannot be trimmed (compressed, filtered, F order or not the leading chunked axis)"
                        )));
                    }
                    let elem = arr
                        .meta
                        .itemsize()
                        .ok_or_else(|| unsup("cannot trim a structured dtype chunk".into()))?;
                    let row = chunks
                        .get(ax + 1..)
                        .unwrap_or_default()
                        .iter()
                        .try_fold(1u64, |acc, &x| acc.checked_mul(x));
                    let bytes = row
                        .and_then(|r| r.checked_mul(n_i))
                        .and_then(|r| r.checked_mul(elem))
                        .ok_or_else(|| unsup("chunk size overflows".into()))?;
                    (n_i, Some(bytes))
                } else {
                    (c, None)
                }
            }
            _ => {
                check_same(inp, name, "shape", &reference.meta.shape, shape)?;
                check_same(inp, name, "chunks", &reference.meta.chunks, chunks)?;
                (1, None)
            }
        };
        Ok((
            c_eff,
            Plan {
                input: i,
                n_i,
                trim_bytes,
            },
        ))
    }

    /// A concatenated holder must start at a chunk boundary and may end
    /// in a partial chunk only at the end of the combined axis.
    fn check_position(&self, a: &Array<'_>, plan: &Plan, c_eff: u64) -> Result<(), CombineError> {
        let dim = self.dim();
        let (i, n_i) = (plan.input, plan.n_i);
        let (Mode::Concat(_), Some(Some(p))) = (a.mode, self.timeline.pos.get(i).copied()) else {
            return Ok(());
        };
        let unsup = |msg: String| CombineError::Unsupported {
            input: self.inputs.get(i).map_or("", |x| x.name).to_string(),
            var: a.name.to_string(),
            msg,
        };
        if p % c_eff != 0 {
            return Err(unsup(format!(
                "its first {dim} value is at position {p}, not a multiple of the chunk size {c_eff}"
            )));
        }
        if !n_i.is_multiple_of(c_eff) && p + n_i != self.timeline.total {
            return Err(unsup(format!(
                "ends in a partial chunk along {dim} but is not the last input in {dim} order"
            )));
        }
        Ok(())
    }

    fn write_concat(&self, a: &Array<'_>, out: &mut Output) -> Result<(), CombineError> {
        let dim = self.dim();
        let name = a.name;
        let total = self.timeline.total;
        let Some(&h0) = a.holders.first() else {
            return Ok(());
        };
        let (Some(first), Some(reference)) = (self.inputs.get(h0), self.array(h0, name)) else {
            return Ok(());
        };
        let rank = reference.rank();

        // effective chunk along the axis (the same for every holder)
        let mut out_chunk: Option<u64> = None;
        let mut plans = Vec::with_capacity(a.holders.len());
        for &i in a.holders {
            let (c_eff, plan) = self.plan(a, reference, i)?;
            match out_chunk {
                None => out_chunk = Some(c_eff),
                Some(c) if c != c_eff => {
                    return Err(CombineError::Inconsistent {
                        input: self.inputs.get(i).map_or("", |x| x.name).to_string(),
                        var: name.to_string(),
                        what: format!("chunk size along {dim}"),
                        expected: c.to_string(),
                        found: c_eff.to_string(),
                    });
                }
                _ => {}
            }
            self.check_position(a, &plan, c_eff)?;
            plans.push(plan);
        }
        let big_c = out_chunk.unwrap_or(1);

        // metadata from the first holder
        let mut meta = (*reference.meta).clone();
        let (ax, dims) = match a.mode {
            Mode::Concat(ax) => {
                if let Some(s) = meta.shape.get_mut(ax) {
                    *s = total;
                }
                if let Some(c) = meta.chunks.get_mut(ax) {
                    *c = big_c;
                }
                (ax, None)
            }
            _ => {
                meta.shape.insert(0, total);
                meta.chunks.insert(0, 1);
                let mut d = vec![dim.to_string()];
                match &reference.dims {
                    Some(x) => d.extend(x.iter().cloned()),
                    None => d.extend("ikjlm".chars().take(rank).map(String::from)),
                }
                (0, Some(d))
            }
        };
        out.refs
            .insert_json(format!("{name}/.zarray"), &meta.to_json());
        let zattrs_key = format!("{name}/.zattrs");
        match dims {
            None => {
                if let Some(r) = first.set.get(&zattrs_key) {
                    out.refs.insert(zattrs_key, r.clone());
                }
            }
            Some(d) => {
                let mut m = match first.set.get_json(&zattrs_key) {
                    Some(Ok(Json::Object(m))) => m,
                    _ => BTreeMap::new(),
                };
                m.insert(
                    "_ARRAY_DIMENSIONS".into(),
                    Json::Array(d.into_iter().map(Json::Str).collect()),
                );
                out.refs.insert_json(zattrs_key, &Json::Object(m));
            }
        }

        // chunks
        let mut key = String::with_capacity(name.len() + 16);
        for plan in plans {
            let i = plan.input;
            let (Some(inp), Some(arr)) = (self.inputs.get(i), self.array(i, name)) else {
                continue;
            };
            let Some(Some(p)) = self.timeline.pos.get(i).copied() else {
                continue;
            };
            let unsup = |msg: String| CombineError::Unsupported {
                input: inp.name.to_string(),
                var: name.to_string(),
                msg,
            };
            for (cidx, _, r) in arr.chunks() {
                let along = match a.mode {
                    Mode::Concat(ax) => p / big_c + cidx.get(ax).copied().unwrap_or(0),
                    _ => p,
                };
                let out_pos = if matches!(a.mode, Mode::Concat(_)) {
                    along.saturating_mul(big_c)
                } else {
                    p
                };
                let owner = usize::try_from(out_pos)
                    .ok()
                    .and_then(|o| self.timeline.owner.get(o).copied().flatten());
                if out_pos >= total || owner != Some(i) {
                    continue;
                }
                key.clear();
                key.push_str(name);
                key.push('/');
                if a.mode == Mode::Stack {
                    // a new leading axis
                    let _ = write!(key, "{along}");
                    for x in cidx {
                        let _ = write!(key, ".{x}");
                    }
                } else {
                    for (n, x) in cidx.iter().enumerate() {
                        if n > 0 {
                            key.push('.');
                        }
                        let _ = write!(key, "{}", if n == ax { along } else { *x });
                    }
                }
                let r = match (plan.trim_bytes, r) {
                    (None, r) => r.clone(),
                    (
                        Some(t),
                        Ref::Range {
                            url,
                            offset,
                            length,
                        },
                    ) => {
                        if *length < t {
                            return Err(unsup(format!(
                                "chunk reference of {length} bytes, {t} expected"
                            )));
                        }
                        Ref::Range {
                            url: url.clone(),
                            offset: *offset,
                            length: t,
                        }
                    }
                    (Some(t), Ref::Text(_) | Ref::Binary(_)) => {
                        let b = r.inline_bytes().unwrap_or_default();
                        let b = usize::try_from(t)
                            .ok()
                            .and_then(|t| b.get(..t))
                            .ok_or_else(|| unsup(format!("inline chunk shorter than {t} bytes")))?;
                        Ref::inline(b)
                    }
                    (Some(_), Ref::Url(_)) => {
                        return Err(unsup("cannot trim a whole-object reference".into()));
                    }
                };
                if let Ref::Range { length, .. } = &r
                    && self.opts.inline_threshold > 0
                    && *length < self.opts.inline_threshold
                {
                    out.inline_candidates.push(key.clone());
                }
                out.refs.insert(key.clone(), r);
            }
        }
        Ok(())
    }
}
