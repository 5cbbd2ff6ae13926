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
