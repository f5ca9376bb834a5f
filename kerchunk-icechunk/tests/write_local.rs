//! `write_at` into a local repository: the pipeline layout (a group per cycle,
//! one for the best series), one commit per write, conflicts leave no commit.

use std::sync::Arc;

use futures_util::StreamExt as _;
use icechunk::Repository;
use icechunk::format::Path;
use kerchunk::{Ref, RefSet};
use kerchunk_icechunk::{Error, S3Config, write_at};

fn refs(dtype: &str, n: u64) -> RefSet {
    let mut r = RefSet::new();
    r.insert(".zgroup", Ref::Text(r#"{"zarr_format":2}"#.into()));
    r.insert(".zattrs", Ref::Text(r#"{"title":"t"}"#.into()));
    r.insert(
        "x/.zarray",
        Ref::Text(format!(
            r#"{{"chunks":[1],"compressor":null,"dtype":"{dtype}","fill_value":null,"filters":null,"order":"C","shape":[{n}],"zarr_format":2}}"#
        )),
    );
    r.insert(
        "x/.zattrs",
        Ref::Text(r#"{"_ARRAY_DIMENSIONS":["time"]}"#.into()),
    );
    for i in 0..n {
        r.insert(format!("x/{i}"), Ref::Binary(vec![i as u8; 4]));
    }
    r
}

async fn history(dir: &std::path::Path) -> (Repository, usize) {
    let st = icechunk::new_local_filesystem_storage(dir).await.unwrap();
    let repo = Repository::open(Arc::clone(&st)).execute().await.unwrap();
    let v = icechunk::repository::VersionInfo::BranchTipRef("main".into());
    let n = repo.ancestry(&v).await.unwrap().count().await;
    (repo, n)
}

#[tokio::test]
async fn groups_per_cycle_and_best_each_a_commit() {
    let d = tempfile::tempdir().unwrap();
    let url = format!("file://{}", d.path().join("dbofs").display());
    let s3 = S3Config::default();
    let time = vec!["time".to_string()];
    write_at(&url, "runs/2023032312", &refs("<f4", 2), &time, &s3, "c1")
        .await
        .unwrap();
    write_at(&url, "best", &refs("<f4", 3), &time, &s3, "best")
        .await
        .unwrap();
    let s = write_at(
        &url,
        "runs/2023032312",
        &refs("<f4", 3),
        &time,
        &s3,
        "c1 grows",
    )
    .await
    .unwrap();
    assert!(s.snapshot.is_some());
    let (repo, n) = history(&d.path().join("dbofs")).await;
    assert_eq!(n, 4, "initial commit + three writes");
    let session = repo
        .readonly_session(&icechunk::repository::VersionInfo::BranchTipRef(
            "main".into(),
        ))
        .await
        .unwrap();
    for p in ["/runs", "/runs/2023032312", "/runs/2023032312/x", "/best/x"] {
        session.get_node(&Path::new(p).unwrap()).await.unwrap();
    }

    // another dtype under the same name: a conflict, nothing committed
    let e = write_at(&url, "best", &refs("<i4", 3), &time, &s3, "bad")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Conflict { .. }), "{e}");
    assert_eq!(e.exit_code(), 1);
    // shrinking along the growable dimension is a conflict too
    let e = write_at(&url, "best", &refs("<f4", 2), &time, &s3, "older")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Conflict { .. }), "{e}");
    assert_eq!(history(&d.path().join("dbofs")).await.1, 4);
}

#[tokio::test]
async fn an_unchanged_set_makes_no_commit() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("dbofs");
    let url = format!("file://{}", dir.display());
    let (s3, time) = (S3Config::default(), vec!["time".to_string()]);
    let first = write_at(&url, "best", &refs("<f4", 3), &time, &s3, "1")
        .await
        .unwrap();
    assert!(first.snapshot.is_some());
    // the same set again (a redelivered update): nothing to commit
    let again = write_at(&url, "best", &refs("<f4", 3), &time, &s3, "2")
        .await
        .unwrap();
    assert_eq!(again.snapshot, None);
    assert_eq!((again.arrays, again.inline_chunks), (1, 3));
    assert_eq!(history(&dir).await.1, 2, "initial commit + one write");
    // one chunk changed: a commit, and it reads back
    let mut changed = refs("<f4", 3);
    changed.insert("x/1", Ref::Binary(vec![9; 4]));
    let s = write_at(&url, "best", &changed, &time, &s3, "3")
        .await
        .unwrap();
    assert!(s.snapshot.is_some());
    let (repo, n) = history(&dir).await;
    assert_eq!(n, 3);
    let session = repo
        .readonly_session(&icechunk::repository::VersionInfo::BranchTipRef(
            "main".into(),
        ))
        .await
        .unwrap();
    let x = Path::new("/best/x").unwrap();
    for (i, want) in [(0u32, 0u8), (1, 9), (2, 2)] {
        let got = session
            .get_chunk_ref(&x, &icechunk::format::ChunkIndices(vec![i]))
            .await
            .unwrap();
        assert!(
            matches!(&got, Some(icechunk::format::manifest::ChunkPayload::Inline(b)) if b.as_ref() == [want; 4]),
            "chunk {i}: {got:?}"
        );
    }
}
