//! The FMRC member index: one small JSON object per model, kind and naming
//! scheme in the destination store, listing every single-file reference
//! set that `update_model_run` has seen, so an update finds a cycle's
//! members and the best series' candidates without listing every
//! reference of the model (legacy names put the hour before the date, so
//! no prefix narrows a listing to a cycle).
//!
//! Key: `{folder}/fmrc-index/{model}.{kind}.{legacy|current}.json`, e.g.
//! `nos/fmrc-index/dbofs.fields.legacy.json`. It sits in a subfolder, so
//! the member listing (`{folder}/nos.{model}.{kind}.` or
//! `{folder}/{model}.t`, same folder only) never sees it, and its name does
//! not end in `.zarr`, so its own bucket notification is skipped as "not a
//! reference".
//!
//! Content: `{"version":1,"members":{"<reference key>":"<etag>",...}}`
//! (keys sorted; the etag of the reference set when it was registered).
//! Everything else a member needs (cycle, hour, valid time) follows from
//! its key.
//!
//! The index is a cache of the listing, never the only copy of the truth:
//! a missing or unreadable index is rebuilt from a listing (with a
//! warning), and `backfill` / `rebuild` always rebuild it from one. It is
//! updated by compare-and-swap like every other output (`If-Match` on the
//! etag read, `If-None-Match: *` to create; 412 -> read again).

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::ofs_key::{Layout, OfsKey, Parsed};
use crate::steps::{self, StepError};
use crate::store::{ObjectStore, PutCondition, StoreError};
use kerchunk::fmrc::FmrcMember;

/// The subfolder (of the references' folder) holding the indexes.
pub const INDEX_FOLDER: &str = "fmrc-index";

/// The stored index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberIndex {
    pub version: u32,
    /// Reference key -> etag of the reference set when registered.
    pub members: BTreeMap<String, String>,
}

/// An index as read, with the etag to replace it conditionally (`None`:
/// there is no index object yet).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub index: MemberIndex,
    pub etag: Option<String>,
    /// Rebuilt from a listing because the object was missing or unreadable.
    pub from_listing: bool,
}

/// The index key of `k`'s model, kind and naming scheme under `folder`.
pub fn index_key(folder: &str, k: &OfsKey) -> String {
    let layout = match k.layout {
        Layout::Legacy => "legacy",
        Layout::Current => "current",
    };
    let name = format!(
        "{INDEX_FOLDER}/{}.{}.{layout}.json",
        k.model,
        k.kind.token()
    );
    if folder.is_empty() {
        name
    } else {
        format!("{folder}/{name}")
    }
}

impl MemberIndex {
    pub fn new(members: BTreeMap<String, String>) -> Self {
        MemberIndex {
            version: 1,
            members,
        }
    }

    pub fn to_json(&self) -> Bytes {
        // A map of strings always serializes.
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }

    /// The members that belong with `k` (same folder, model, kind and
    /// naming scheme; an entry that is not such a reference key is ignored).
    pub fn fmrc_members(&self, folder: &str, k: &OfsKey) -> Vec<FmrcMember> {
        self.members
            .keys()
            .filter_map(|key| member_of(key, folder, k))
            .collect()
    }
}

/// The FMRC member a reference key stands for, if it belongs with `k`.
pub fn member_of(key: &str, folder: &str, k: &OfsKey) -> Option<FmrcMember> {
    if steps::folder_of(key) != folder {
        return None;
    }
    let Ok(Parsed::Output(m)) = crate::ofs_key::parse_single_ref_key(key) else {
        return None;
    };
    if m.model != k.model || m.kind != k.kind || m.layout != k.layout {
        return None;
    }
    steps::member(key, &m)
}

/// The index built from a listing of the references (the truth it caches).
pub async fn from_listing(
    store: &dyn ObjectStore,
    folder: &str,
    k: &OfsKey,
) -> Result<MemberIndex, StepError> {
    let listed = steps::list_members(store, folder, k).await?;
    Ok(MemberIndex::new(
        listed.into_iter().map(|(m, etag)| (m.key, etag)).collect(),
    ))
}

/// Reads the index; a missing or unreadable one is rebuilt from a listing.
pub async fn load(store: &dyn ObjectStore, folder: &str, k: &OfsKey) -> Result<Loaded, StepError> {
    let key = index_key(folder, k);
    let etag = match store.get(&key).await {
        Ok((body, etag)) => match serde_json::from_slice::<MemberIndex>(&body) {
            Ok(index) if index.version == 1 => {
                return Ok(Loaded {
                    index,
                    etag: Some(etag),
                    from_listing: false,
                });
            }
            Ok(index) => {
                warn!(index = %key, version = index.version, "unknown FMRC index version; rebuilding it from a listing");
                Some(etag)
            }
            Err(e) => {
                warn!(index = %key, error = %e, "unreadable FMRC index; rebuilding it from a listing");
                Some(etag)
            }
        },
        Err(StoreError::NotFound(_)) => {
            warn!(index = %key, "no FMRC index; building it from a listing");
            None
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Loaded {
        index: from_listing(store, folder, k).await?,
        etag,
        from_listing: true,
    })
}

/// Writes the index conditionally on the etag it was read with. `Ok(None)`
/// when another writer got there first (412): read it again.
pub async fn store(
    store: &dyn ObjectStore,
    folder: &str,
    k: &OfsKey,
    index: &MemberIndex,
    read_etag: Option<&str>,
) -> Result<Option<String>, StepError> {
    let cond = match read_etag {
        Some(e) if !e.is_empty() => PutCondition::IfMatch(e.to_string()),
        Some(_) => PutCondition::None,
        None => PutCondition::IfAbsent,
    };
    match store
        .put(&index_key(folder, k), index.to_json(), cond)
        .await
    {
        Ok(etag) => Ok(Some(etag)),
        Err(StoreError::PreconditionFailed(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_key_is_never_a_member() {
        let Ok(Parsed::Output(k)) =
            crate::ofs_key::parse_single_ref_key("nos/nos.dbofs.fields.f001.20230323.t12z.nc.zarr")
        else {
            panic!("parse")
        };
        let key = index_key("nos", &k);
        assert_eq!(key, "nos/fmrc-index/dbofs.fields.legacy.json");
        assert!(!matches!(
            crate::ofs_key::parse_single_ref_key(&key),
            Ok(Parsed::Output(_))
        ));
        assert!(member_of(&key, "nos", &k).is_none());
        let idx = MemberIndex::new(BTreeMap::from([
            (
                "nos/nos.dbofs.fields.f001.20230323.t12z.nc.zarr".to_string(),
                "e1".to_string(),
            ),
            (key.clone(), "e2".to_string()),
            (
                "nos/nos.cbofs.fields.f001.20230323.t12z.nc.zarr".to_string(),
                "e3".to_string(),
            ),
        ]));
        let m = idx.fmrc_members("nos", &k);
        assert_eq!(m.len(), 1);
        let back: MemberIndex = serde_json::from_slice(&idx.to_json()).unwrap();
        assert_eq!(back, idx);
    }
}
