//! Reading input reference files and parsing them in parallel.
//!
//! Parsing is the bulk of a combine (a model run is 10-20 MB of JSON), the
//! documents are independent and of similar size, so they are split into
//! one contiguous share per core on `std::thread::scope` threads: no
//! dependency, no pool to keep (rayon's work stealing would buy nothing for
//! equal shares), and the caller's thread joins everything before return.

use std::num::NonZeroUsize;

use super::CombineError;
use crate::refs::RefSet;

fn parse_one(name: &str, text: &str) -> Result<RefSet, CombineError> {
    RefSet::from_json(text).map_err(|e| CombineError::Read {
        input: name.to_string(),
        msg: e.to_string(),
    })
}

/// Parse `(name, JSON text)` pairs into reference sets, in parallel; the
/// result is in input order, and the first failing input (in input order)
/// is the error.
pub fn parse_inputs(texts: &[(String, String)]) -> Result<Vec<(String, RefSet)>, CombineError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(texts.len());
    if threads <= 1 {
        return texts
            .iter()
            .map(|(n, t)| Ok((n.clone(), parse_one(n, t)?)))
            .collect();
    }
    let share = texts.len().div_ceil(threads);
    let parts: Vec<Result<Vec<(String, RefSet)>, CombineError>> = std::thread::scope(|s| {
        let handles: Vec<_> = texts
            .chunks(share)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|(n, t)| Ok((n.clone(), parse_one(n, t)?)))
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(CombineError::Read {
                        input: String::new(),
                        msg: "parser thread panicked".into(),
                    })
                })
            })
            .collect()
    });
    let mut out = Vec::with_capacity(texts.len());
    for p in parts {
        out.extend(p?);
    }
    Ok(out)
}

/// Read reference files (local paths) and parse them with [`parse_inputs`];
/// each input is named by its path.
pub fn read_inputs(paths: &[String]) -> Result<Vec<(String, RefSet)>, CombineError> {
    let texts = paths
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .map(|t| (p.clone(), t))
                .map_err(|e| CombineError::Read {
                    input: p.clone(),
                    msg: format!("cannot read: {e}"),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    parse_inputs(&texts)
}
