//! The embedded store passes the same contract suite as the DynamoDB store.

#[tokio::test]
async fn the_embedded_store_passes_the_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = local_bridge::store::EmbeddedStore::open(&dir.path().join("store.redb")).unwrap();
    store_contract::check_store(&store).await;
}

#[tokio::test]
async fn the_embedded_store_keeps_files_across_reopening() {
    use oncall_domain::ports::{LoadFile, OpenFile};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let file = store_contract::new_file("REOPEN-1");
    {
        let store = local_bridge::store::EmbeddedStore::open(&path).unwrap();
        store.open_file(&file, &[]).await.unwrap();
    }
    let store = local_bridge::store::EmbeddedStore::open(&path).unwrap();
    let loaded = store
        .load_file(&file.id())
        .await
        .unwrap()
        .expect("still there");
    assert_eq!(loaded.events, vec![file.opening]);
}

#[tokio::test]
async fn closed_files_past_their_retention_are_erased_as_dynamodb_ttl_does() {
    use oncall_domain::ports::{CloseFile, LoadFile, OpenFile};
    let dir = tempfile::tempdir().unwrap();
    let store = local_bridge::store::EmbeddedStore::open(&dir.path().join("store.redb")).unwrap();
    let expired = store_contract::new_file("EXPIRED-1");
    let kept = store_contract::new_file("KEPT-1");
    let mut open = store_contract::new_file("OPEN-1");
    // An open file is not erased, even past the expiry it was stored with.
    open.expires_at = Some(jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1));
    for file in [&expired, &kept, &open] {
        store.open_file(file, &[]).await.unwrap();
    }
    let now = jiff::Timestamp::now();
    let closing = |file: &oncall_domain::NewFile| {
        let mut closing = file.opening.clone();
        closing.seq = 2;
        closing
    };
    let day = jiff::SignedDuration::from_hours(24);
    store
        .close_file(
            &expired.id(),
            1,
            &closing(&expired),
            oncall_domain::lifecycle::Outcome::Done,
            oncall_domain::lifecycle::ClosingExpiry::new(now - day, None),
            &[],
        )
        .await
        .unwrap();
    store
        .close_file(
            &kept.id(),
            1,
            &closing(&kept),
            oncall_domain::lifecycle::Outcome::Done,
            oncall_domain::lifecycle::ClosingExpiry::new(now + day, None),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(store.purge_expired(now).await.unwrap().files, 1);
    assert!(store.load_file(&expired.id()).await.unwrap().is_none());
    assert!(store.load_file(&kept.id()).await.unwrap().is_some());
    assert!(store.load_file(&open.id()).await.unwrap().is_some());
}

/// A quitus' ledger entry (its key names the file, which may name the tenant) is erased
/// with the retention its record was given, as DynamoDB's TTL erases it; the purge names
/// the objects whose entries it erased, for the inbox to let their files go too.
#[tokio::test]
async fn quitus_ledger_entries_past_their_retention_are_erased_as_dynamodb_ttl_does() {
    use oncall_domain::documents::{DocumentRecord, ObjectRef, ObjectVersion};
    use oncall_domain::ports::{DocumentClaim, DocumentLedger, OpenFile};
    let dir = tempfile::tempdir().unwrap();
    let store = local_bridge::store::EmbeddedStore::open(&dir.path().join("store.redb")).unwrap();
    let file = store_contract::new_file("QUITUS-1");
    store.open_file(&file, &[]).await.unwrap();
    let now = jiff::Timestamp::now();
    let day = jiff::SignedDuration::from_hours(24);
    let object = |name: &str| ObjectRef {
        bucket: "inbox".into(),
        key: format!("operator-quitus/contract1/QUITUS-1/{name}.pdf"),
        version: ObjectVersion::ETag("1-10".into()),
        size: Some(10),
    };
    let (old, recent) = (object("quitus Pierre DUPONT"), object("quitus 2"));
    for (object, expires_at) in [(&old, now - day), (&recent, now + day)] {
        let DocumentClaim::Claimed(claim) = store
            .claim_document(object, now - day * 400, now + day)
            .await
            .unwrap()
        else {
            panic!("claimed");
        };
        let record = DocumentRecord {
            object_identity: object.identity(),
            file_name: "q.pdf".into(),
            title: "quitus".into(),
            size: 10,
            intent_document_id: None,
            published_at: now - day * 400,
            attempts: 1,
        };
        store
            .record_published(
                object,
                &claim.token,
                &file.opened(),
                &record,
                expires_at,
                &[],
            )
            .await
            .unwrap();
    }
    let purged = store.purge_expired(now).await.unwrap();
    assert_eq!(purged.documents, std::slice::from_ref(&old));
    assert!(
        matches!(
            store.claim_document(&old, now, now + day).await.unwrap(),
            DocumentClaim::Claimed(_)
        ),
        "its entry is gone: a new delivery of it is a new object"
    );
    assert!(matches!(
        store.claim_document(&recent, now, now + day).await.unwrap(),
        DocumentClaim::AlreadyPublished
    ));
}
