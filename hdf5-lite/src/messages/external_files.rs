//! External data files message (0x0007, spec IV.A.2.g): a dataset whose
//! raw data lives in other files, as (name, offset, size) slots. The names
//! are offsets into a local heap the message points at.

use crate::parse::{Ctx, PResult, take, u8_, u16_};

/// The message: where its names are, and its slots in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalFiles {
    /// The local heap holding the file names.
    pub heap: Option<u64>,
    pub slots: Vec<Slot>,
}

/// One external file segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Offset of the file's name in the local heap.
    pub name_offset: u64,
    /// Byte offset of the segment in that file.
    pub offset: u64,
    /// Bytes of the segment.
    pub size: u64,
}

/// The address of the local heap of names (version, reserved, allocated
/// and used slot counts come first): all the walk needs before it has the
/// heap.
pub fn heap_address<'a>(i: &'a [u8], ctx: &Ctx) -> PResult<'a, Option<u64>> {
    let (r, _) = take(i, 8)?;
    ctx.addr(r)
}

pub fn external_files<'a>(i: &'a [u8], ctx: &Ctx) -> PResult<'a, ExternalFiles> {
    let (r, _version) = u8_(i)?;
    let (r, _) = take(r, 3)?;
    let (r, _allocated) = u16_(r)?;
    let (r, used) = u16_(r)?;
    let (mut r, heap) = ctx.addr(r)?;
    let mut slots = Vec::new();
    for _ in 0..used {
        let (rr, name_offset) = ctx.length(r)?;
        let (rr, offset) = ctx.length(rr)?;
        let (rr, size) = ctx.length(rr)?;
        slots.push(Slot {
            name_offset,
            offset,
            size,
        });
        r = rr;
    }
    Ok((r, ExternalFiles { heap, slots }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_and_heap_are_read_and_short_input_is_short() {
        let ctx = Ctx::new(8, 8, 0);
        let mut b = vec![1, 0, 0, 0, 2, 0, 2, 0];
        b.extend(0x1000u64.to_le_bytes());
        for v in [8u64, 0, 100, 16, 4096, 200] {
            b.extend(v.to_le_bytes());
        }
        let (rest, m) = external_files(&b, &ctx).unwrap();
        assert!(rest.is_empty());
        assert_eq!(m.heap, Some(0x1000));
        assert_eq!(
            m.slots,
            vec![
                Slot {
                    name_offset: 8,
                    offset: 0,
                    size: 100
                },
                Slot {
                    name_offset: 16,
                    offset: 4096,
                    size: 200
                }
            ]
        );
        assert_eq!(heap_address(&b, &ctx).unwrap().1, Some(0x1000));
        assert!(crate::parse::run("x", 0, &b[..b.len() - 1], |i| external_files(i, &ctx)).is_err());
    }
}
