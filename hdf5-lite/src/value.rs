//! Decode raw element bytes into [`Value`]s by datatype. Variable-length
//! data lives in global heap collections; the caller supplies a lookup, and
//! every id it could not answer is reported so the walker can fetch those
//! collections and decode again.

use crate::model::{ByteOrder, Datatype, ReferenceKind, StringPadding, Value};
use crate::parse::Ctx;

/// A global heap object id: (collection address, object index).
pub type GlobalId = (u64, u32);

/// Decoding outcome.
pub struct Decoded {
    pub values: Vec<Value>,
    /// Collections that must be fetched before decoding can succeed.
    pub missing: Vec<u64>,
}

/// Refuse to decode more elements than this from one attribute/dataset,
/// whatever the dataspace claims (bytes are checked too).
const MAX_ELEMENTS: u64 = 64 * 1024 * 1024;

pub fn decode(
    dt: &Datatype,
    count: u64,
    data: &[u8],
    ctx: &Ctx,
    heap: &dyn Fn(GlobalId) -> Option<bytes::Bytes>,
) -> Result<Decoded, String> {
    let size = dt.size() as u64;
    if size == 0 {
        return Err("datatype of size 0".into());
    }
    if count > MAX_ELEMENTS {
        return Err(format!("{count} elements is more than the decoder allows"));
    }
    let need = count.checked_mul(size).ok_or("size overflows")?;
    if (data.len() as u64) < need {
        return Err(format!(
            "{} bytes of data for {count} elements of {size} bytes",
            data.len()
        ));
    }
    let mut d = Decoder {
        ctx,
        heap,
        missing: Vec::new(),
        depth: 0,
    };
    let mut values = Vec::with_capacity(count as usize);
    for k in 0..count as usize {
        let s = k * size as usize;
        values.push(d.value(dt, &data[s..s + size as usize])?);
    }
    d.missing.sort_unstable();
    d.missing.dedup();
    Ok(Decoded {
        values,
        missing: d.missing,
    })
}

struct Decoder<'a> {
    ctx: &'a Ctx,
    heap: &'a dyn Fn(GlobalId) -> Option<bytes::Bytes>,
    missing: Vec<u64>,
    depth: u32,
}

fn ordered(b: &[u8], order: &ByteOrder) -> Vec<u8> {
    let mut v = b.to_vec();
    if *order == ByteOrder::BigEndian {
        v.reverse();
    }
    v
}

/// Strip padding as HDF5 readers present fixed-size strings: trailing NULs
/// always (numpy does), trailing spaces for space-padded strings.
fn text(b: &[u8], padding: &StringPadding) -> Value {
    let pad = |c: &u8| *c == 0 || (*padding == StringPadding::SpacePad && *c == b' ');
    let end = b.iter().rposition(|c| !pad(c)).map_or(0, |p| p + 1);
    match std::str::from_utf8(&b[..end]) {
        Ok(s) => Value::Str(s.to_string()),
        Err(_) => Value::Bytes(b[..end].to_vec()),
    }
}

fn int_value(b: &[u8], order: &ByteOrder, signed: bool) -> Value {
    let le = ordered(b, order);
    if le.len() > 8 || le.is_empty() {
        return Value::Bytes(le);
    }
    let mut buf = [0u8; 8];
    buf[..le.len()].copy_from_slice(&le);
    let raw = u64::from_le_bytes(buf);
    if signed {
        let shift = 64 - 8 * le.len() as u32;
        Value::Int(((raw << shift) as i64) >> shift)
    } else {
        Value::UInt(raw)
    }
}

fn half_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let man = (h & 0x3ff) as f64;
    match exp {
        0 => sign * man * 2f64.powi(-24),
        31 if man == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        e => sign * (1.0 + man / 1024.0) * 2f64.powi(e - 15),
    }
}

impl Decoder<'_> {
    fn value(&mut self, dt: &Datatype, b: &[u8]) -> Result<Value, String> {
        self.depth += 1;
        if self.depth > 64 {
            return Err("values nested too deeply".into());
        }
        let v = self.value_inner(dt, b);
        self.depth -= 1;
        v
    }

    /// `n` consecutive elements of `base` from `b`, after checking they fit
    /// (a zero-size base would otherwise let a hostile count run unbounded).
    fn elements(
        &mut self,
        base: &Datatype,
        n: u64,
        b: &[u8],
        what: &str,
    ) -> Result<Vec<Value>, String> {
        let es = base.size() as usize;
        if es == 0 || n.saturating_mul(es as u64) > b.len() as u64 {
            return Err(format!(
                "{what} of {n} elements of {es} bytes does not fit {} bytes",
                b.len()
            ));
        }
        b.chunks_exact(es)
            .take(n as usize)
            .map(|field| self.value(base, field))
            .collect()
    }

    fn global_id(&self, b: &[u8]) -> Option<(u32, GlobalId)> {
        let so = self.ctx.size_of_offsets as usize;
        let len = u32::from_le_bytes(b.get(0..4)?.try_into().ok()?);
        let (_, addr) = self.ctx.addr(b.get(4..4 + so)?).ok()?;
        let idx = u32::from_le_bytes(b.get(4 + so..8 + so)?.try_into().ok()?);
        addr.map(|a| (len, (a, idx)))
    }

    fn value_inner(&mut self, dt: &Datatype, b: &[u8]) -> Result<Value, String> {
        // Every element is exactly its datatype's size: a hostile enum or
        // compound may claim a size that disagrees with its base types.
        let b = b
            .get(..dt.size() as usize)
            .ok_or_else(|| format!("{} bytes for an element of {} bytes", b.len(), dt.size()))?;
        Ok(match dt {
            Datatype::FixedPoint { order, signed, .. } => int_value(b, order, *signed),
            Datatype::Bitfield { order, .. } => int_value(b, order, false),
            Datatype::FloatingPoint { order, size, .. } => {
                let le = ordered(b, order);
                match size {
                    2 => Value::Float(half_to_f64(u16::from_le_bytes([le[0], le[1]]))),
                    4 => Value::Float(f32::from_le_bytes([le[0], le[1], le[2], le[3]]) as f64),
                    8 => {
                        let mut a = [0u8; 8];
                        a.copy_from_slice(&le);
                        Value::Float(f64::from_le_bytes(a))
                    }
                    _ => Value::Bytes(le),
                }
            }
            Datatype::String { padding, .. } => text(b, padding),
            Datatype::Opaque { .. } => Value::Bytes(b.to_vec()),
            Datatype::Compound { members, .. } => {
                let mut out = Vec::with_capacity(members.len());
                for m in members {
                    let s = m.offset as usize;
                    let e = s + m.datatype.size() as usize;
                    let field = b.get(s..e).ok_or_else(|| {
                        format!("compound member {} overruns the element", m.name)
                    })?;
                    out.push((m.name.clone(), self.value(&m.datatype, field)?));
                }
                Value::Compound(out)
            }
            Datatype::Reference { kind, .. } => match kind {
                ReferenceKind::Object => match self.ctx.addr(b) {
                    Ok((_, Some(a))) if b.iter().any(|x| *x != 0) => Value::ObjectRef(a),
                    _ => Value::Null,
                },
                _ => Value::OtherRef(b.to_vec()),
            },
            Datatype::Enum { base, members, .. } => {
                let name = members
                    .iter()
                    .find(|(_, v)| v.as_slice() == b)
                    .map(|(n, _)| n.clone());
                let value = match self.value(base, b)? {
                    Value::Int(i) => i,
                    Value::UInt(u) => u as i64,
                    _ => 0,
                };
                Value::Enum { name, value }
            }
            Datatype::Array { dims, base, .. } => {
                let n: u64 = dims.iter().fold(1u64, |a, d| a.saturating_mul(*d as u64));
                Value::Array(self.elements(base, n, b, "array")?)
            }
            Datatype::VlenString { .. } => match self.global_id(b) {
                // A zero-length string has no heap object (its id is zero).
                Some((0, _)) => Value::Str(String::new()),
                None => Value::Null,
                Some((len, id)) => match (self.heap)(id) {
                    None => {
                        self.missing.push(id.0);
                        Value::Null
                    }
                    Some(obj) => {
                        let s = obj.get(..len as usize).unwrap_or(&obj);
                        match std::str::from_utf8(s) {
                            Ok(t) => Value::Str(t.to_string()),
                            Err(_) => Value::Bytes(s.to_vec()),
                        }
                    }
                },
            },
            Datatype::VlenSequence { base, .. } => match self.global_id(b) {
                Some((0, _)) | None => Value::Vlen(vec![]),
                Some((len, id)) => match (self.heap)(id) {
                    None => {
                        self.missing.push(id.0);
                        Value::Null
                    }
                    Some(obj) => {
                        Value::Vlen(self.elements(base, len as u64, &obj, "vlen sequence")?)
                    }
                },
            },
        })
    }
}
