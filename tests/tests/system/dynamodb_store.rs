//! The DynamoDB adapter against DynamoDB Local: the opening transaction, reading a file
//! back, delivery states and the sparse indexes.

use aws_sdk_dynamodb::types::AttributeValue;
use dynamodb_store::{DynamoDbStore, INDEX_SHARDS, OPEN_FILES_INDEX, PENDING_EVENTS_INDEX};
use oncall_domain::intent_examples::SEED_OPENING;
use oncall_domain::ports::{LoadFile, OpenFile, OpenFileResult, RecordDelivery};
use oncall_domain::validation::parse_intervention_log;
use oncall_domain::{Delivery, FileId, FileState, NewFile, PartnerId, RecordedEvent};
use system_tests::*;

async fn store() -> (DynamoDbStore, aws_sdk_dynamodb::Client) {
    let sdk = sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let table = unique("store");
    create_table(&client, &table).await;
    (store_on(&sdk, &table), client)
}

/// Another store on `table`: another process, as far as the table can tell.
fn store_on(sdk: &aws_wiring::SdkConfig, table: &str) -> DynamoDbStore {
    aws_wiring::dynamodb_store(sdk, &aws_wiring::aws_reqwest_client().unwrap(), table).unwrap()
}

fn new_file(reference: &str) -> NewFile {
    let log =
        parse_intervention_log(SEED_OPENING.replace("INTER-0500", reference).as_bytes()).unwrap();
    NewFile {
        owner: PartnerId("partner-a".into()),
        opening: RecordedEvent::new(
            1,
            log,
            "2026-11-28T19:00:00Z".parse().unwrap(),
            Delivery::new_pending(),
        ),
        expires_at: None,
    }
}

async fn index_count(
    client: &aws_sdk_dynamodb::Client,
    store: &DynamoDbStore,
    index: &str,
    prefix: &str,
) -> i32 {
    let mut total = 0;
    for shard in 0..INDEX_SHARDS {
        let key = if index == OPEN_FILES_INDEX {
            "openShard"
        } else {
            "pendingShard"
        };
        total += client
            .query()
            .table_name(store.table())
            .index_name(index)
            .key_condition_expression(format!("{key} = :s"))
            .expression_attribute_values(":s", AttributeValue::S(format!("{prefix}-{shard}")))
            .send()
            .await
            .unwrap()
            .count;
    }
    total
}

#[tokio::test]
async fn a_file_round_trips_with_its_opening_event() {
    let (store, _) = store().await;
    let file = new_file("INTER-1");
    assert_eq!(
        store.open_file(&file, &[]).await.unwrap(),
        OpenFileResult::Created
    );
    let loaded = store.load_file(&file.id()).await.unwrap().unwrap();
    assert_eq!(loaded.state, FileState::Open);
    assert_eq!(loaded.owner, file.owner);
    assert_eq!(loaded.events, vec![file.opening.clone()]);
    assert!(
        store
            .load_file(&FileId::new("nope", "contract1"))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn opening_twice_returns_the_stored_file() {
    let (store, _) = store().await;
    let file = new_file("INTER-2");
    store.open_file(&file, &[]).await.unwrap();
    match store.open_file(&file, &[]).await.unwrap() {
        OpenFileResult::AlreadyExists(existing) => assert_eq!(existing.events.len(), 1),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_openings_create_exactly_one_file() {
    let (store, _) = store().await;
    let file = new_file("INTER-3");
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (store, file) = (store.clone(), file.clone());
        tasks.push(tokio::spawn(async move {
            store.open_file(&file, &[]).await.unwrap()
        }));
    }
    let mut created = 0;
    for task in tasks {
        if task.await.unwrap() == OpenFileResult::Created {
            created += 1;
        }
    }
    assert_eq!(created, 1);
}

#[tokio::test]
async fn delivery_states_move_the_event_in_and_out_of_the_pending_index() {
    let (store, client) = store().await;
    let file = new_file("INTER-4");
    let id = file.id();
    store.open_file(&file, &[]).await.unwrap();
    assert_eq!(
        index_count(&client, &store, OPEN_FILES_INDEX, "open").await,
        1
    );
    assert_eq!(
        index_count(&client, &store, PENDING_EVENTS_INDEX, "pending").await,
        1
    );

    let retrying = Delivery::Pending {
        attempts: 4,
        last_error: Some("Intent is unavailable: HTTP 503".into()),
        last_attempt_at: Some("2026-11-28T19:00:05Z".parse().unwrap()),
        in_doubt: false,
    };
    store.record_delivery(&id, 1, &retrying, &[]).await.unwrap();
    assert_eq!(
        store.load_file(&id).await.unwrap().unwrap().events[0].delivery,
        retrying
    );
    assert_eq!(
        index_count(&client, &store, PENDING_EVENTS_INDEX, "pending").await,
        1
    );

    let delivered = Delivery::Delivered {
        attempts: 5,
        delivered_at: "2026-11-28T19:10:00Z".parse().unwrap(),
    };
    store
        .record_delivery(&id, 1, &delivered, &[])
        .await
        .unwrap();
    assert_eq!(
        store.load_file(&id).await.unwrap().unwrap().events[0].delivery,
        delivered
    );
    assert_eq!(
        index_count(&client, &store, PENDING_EVENTS_INDEX, "pending").await,
        0
    );

    // A late writer cannot turn a delivered event back into a pending one.
    store.record_delivery(&id, 1, &retrying, &[]).await.unwrap();
    assert_eq!(
        store.load_file(&id).await.unwrap().unwrap().events[0].delivery,
        delivered
    );
    assert_eq!(
        index_count(&client, &store, OPEN_FILES_INDEX, "open").await,
        1
    );
}

#[tokio::test]
async fn references_with_separators_do_not_collide() {
    let (store, _) = store().await;
    // The API refuses such references now; the keys stay unambiguous all the same.
    let mut a = new_file("A-B");
    a.opening.log.reference = "A#B".into();
    a.opening.log.contract_reference = "C".into();
    let mut b = new_file("B");
    b.opening.log.contract_reference = "C#A".into();
    assert_eq!(
        store.open_file(&a, &[]).await.unwrap(),
        OpenFileResult::Created
    );
    assert_eq!(
        store.open_file(&b, &[]).await.unwrap(),
        OpenFileResult::Created
    );
    assert_eq!(store.load_file(&a.id()).await.unwrap().unwrap().id, a.id());
}

#[tokio::test]
async fn the_dynamodb_store_passes_the_store_contract() {
    let (store, _) = store().await;
    store_contract::check_store(&store).await;
}

/// The same contract with group commit on (the on-call closer's store): concurrent
/// transactions share calls, and each still gets its own answer.
#[tokio::test]
async fn the_dynamodb_store_with_group_commit_passes_the_store_contract() {
    let (store, _) = store().await;
    store_contract::check_store(&store.with_group_commit(2)).await;
}

/// The functions' own `SdkConfig` (Lambda's variables, no provider chain) reaches each
/// emulator through its `AWS_ENDPOINT_URL[_SERVICE]`, as on AWS it reaches each service:
/// the store, the bus and the documents reader built from it, as the functions build them.
#[tokio::test]
async fn the_functions_sdk_config_reaches_dynamodb_and_moto_from_lambdas_variables() {
    endpoints();
    install_crypto_provider();
    let sdk = aws_wiring::lambda_aws_config().expect("the emulators' variables");
    assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-3"));
    let setup = sdk_config().await;
    let table = unique("lambda-config");
    create_table(&aws_sdk_dynamodb::Client::new(&setup), &table).await;
    let http = aws_wiring::aws_reqwest_client().unwrap();
    let store = aws_wiring::dynamodb_store(&sdk, &http, &table).unwrap();
    assert_eq!(store.endpoint(), format!("{}/", endpoints().0));
    let file = new_file("LAMBDA-CONFIG-1");
    assert!(matches!(
        store.open_file_sending(&file, &[], None).await,
        Ok(OpenFileResult::Created)
    ));
    let loaded = store.load_file(&file.id()).await.unwrap();
    assert_eq!(loaded.map(|f| f.id), Some(file.id()), "DynamoDB Local");

    let s3 = s3_client(&setup);
    let bucket = create_versioned_bucket(&s3).await;
    let put = s3
        .put_object()
        .bucket(&bucket)
        .key("quitus/probe.pdf")
        .body(b"%PDF-1.7\n".to_vec().into())
        .send()
        .await
        .unwrap();
    let documents = aws_wiring::documents_reader(&sdk, &http, true).unwrap();
    let object = oncall_domain::documents::ObjectRef {
        bucket,
        key: "quitus/probe.pdf".into(),
        version: oncall_domain::documents::ObjectVersion::VersionId(
            put.version_id().unwrap().to_string(),
        ),
        size: None,
    };
    let info = oncall_domain::ports::ReadObject::object_info(&documents, &object).await;
    assert_eq!(info.map(|info| info.size).ok(), Some(9), "moto's S3");
}

/// A store whose every DynamoDB call is logged, on a fresh table.
async fn store_with_call_log() -> (DynamoDbStore, CallLog) {
    store_losing(&LostAnswers::default()).await
}

/// Forty files opened at once (as the on-call closer writes thousands) share a few
/// `TransactWriteItems` calls with group commit, one each without; every file is created
/// either way.
#[tokio::test]
async fn group_commit_shares_calls_between_concurrent_transactions() {
    let (store, log) = store_with_call_log().await;
    let grouped = store.clone().with_group_commit(2);
    let files: Vec<NewFile> = (0..40)
        .map(|_| new_file(&format!("G-{}", uuid::Uuid::new_v4().simple())))
        .collect();
    let opened =
        futures_util::future::join_all(files.iter().map(|file| grouped.open_file(file, &[]))).await;
    assert!(
        opened
            .iter()
            .all(|result| *result.as_ref().unwrap() == OpenFileResult::Created)
    );
    let calls = log.calls();
    assert!(
        calls.iter().all(|call| call == "TransactWriteItems"),
        "{calls:?}"
    );
    assert!(
        calls.len() <= 10,
        "40 openings in {} calls: {calls:?}",
        calls.len()
    );
    for file in &files {
        assert!(store.load_file(&file.id()).await.unwrap().is_some());
    }

    // Without group commit: one call per transaction.
    log.clear();
    let more: Vec<NewFile> = (0..5)
        .map(|_| new_file(&format!("G-{}", uuid::Uuid::new_v4().simple())))
        .collect();
    futures_util::future::join_all(more.iter().map(|file| store.open_file(file, &[]))).await;
    assert_eq!(log.calls().len(), 5);
}

/// The closer reads its stragglers fifty to a `BatchGetItem`, not one `Query` each.
#[tokio::test]
async fn stragglers_are_read_fifty_to_a_call() {
    use oncall_domain::ports::LoadFiles;
    let (store, log) = store_with_call_log().await;
    let files: Vec<NewFile> = (0..120)
        .map(|_| new_file(&format!("B-{}", uuid::Uuid::new_v4().simple())))
        .collect();
    for file in &files {
        store.open_file(file, &[]).await.unwrap();
    }
    log.clear();
    let ids: Vec<FileId> = files.iter().map(NewFile::id).collect();
    let loaded = store.load_files(&ids).await;
    assert_eq!(log.calls(), ["BatchGetItem"; 3]);
    for (file, loaded) in files.iter().zip(&loaded) {
        let loaded = loaded.as_ref().unwrap().as_ref().unwrap();
        assert_eq!(loaded.id, file.id());
        assert_eq!(loaded.events, std::slice::from_ref(&file.opening));
    }
}

/// DynamoDB applied the opening, but its answer was lost (a 500 after the write): the retry
/// carries the same `ClientRequestToken`, so DynamoDB answers it as done instead of
/// applying it again or refusing it on the write's own conditions. The file is created
/// once, and its writer is told it created it (not that it exists already: a partner would
/// get a replay's 200, and the lease it took would wait for its expiry).
#[tokio::test]
async fn a_transaction_whose_answer_was_lost_is_applied_once_and_told_so() {
    let lost = LostAnswers::default();
    let (store, log) = store_losing(&lost).await;
    lost.lose("TransactWriteItems", 1);
    let file = new_file("LOST-ANSWER-1");
    let until = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(60);

    let opened = store.open_file_sending(&file, &[], Some(until)).await;

    assert!(matches!(opened, Ok(OpenFileResult::Created)), "{opened:?}");
    assert_eq!(log.calls(), ["TransactWriteItems", "TransactWriteItems"]);
    let stored = store.load_file(&file.id()).await.unwrap().unwrap();
    assert_eq!(stored.events.len(), 1);
}

/// A store on a fresh table behind a proxy that loses the answers `lost` names, its calls
/// logged.
async fn store_losing(lost: &LostAnswers) -> (DynamoDbStore, CallLog) {
    let sdk = sdk_config().await;
    let table = unique("counted");
    create_table(&aws_sdk_dynamodb::Client::new(&sdk), &table).await;
    let log = CallLog::default();
    (lossy_store(&sdk, &table, &log, lost), log)
}

/// The send lease was taken but the answer lost: the retry finds the lease held, by this
/// very taking (its holder token), and says so (taken over: Intent is read before sending),
/// instead of leaving the file's events to wait for the lease to run out.
#[tokio::test]
async fn a_lease_taken_whose_answer_was_lost_is_still_the_takers() {
    use oncall_domain::ports::{LeaseGrant, SendLease};
    let lost = LostAnswers::default();
    let (store, log) = store_losing(&lost).await;
    let file = new_file("LOST-LEASE-1");
    assert!(matches!(
        store.open_file_sending(&file, &[], None).await,
        Ok(OpenFileResult::Created)
    ));
    let now = jiff::Timestamp::now();
    let until = now + jiff::SignedDuration::from_secs(60);
    lost.lose("UpdateItem", 1);
    log.clear();

    let taken = store.take_send_lease(&file.id(), now, until).await;

    assert!(matches!(taken, Ok(LeaseGrant::TakenOver)), "{taken:?}");
    assert_eq!(log.calls(), ["UpdateItem", "UpdateItem"]);
    // Another taker still finds it held, and the holder gives it back.
    let other = store.take_send_lease(&file.id(), now, until).await;
    assert!(matches!(other, Ok(LeaseGrant::HeldElsewhere)), "{other:?}");
    store.release_send_lease(&file.id(), until).await.unwrap();
    let again = store.take_send_lease(&file.id(), now, until).await;
    assert!(matches!(again, Ok(LeaseGrant::Taken)), "{again:?}");
}

fn quitus_object(name: &str) -> oncall_domain::documents::ObjectRef {
    oncall_domain::documents::ObjectRef {
        bucket: "documents".into(),
        key: format!("operator-quitus/contract1/{name}/quitus.pdf"),
        version: oncall_domain::documents::ObjectVersion::VersionId("v1".into()),
        size: Some(1000),
    }
}

/// A document claimed but the answer lost: the retry finds the claim this very call made
/// and keeps it (in doubt: Intent is read before uploading); a claim held by another is
/// told in one call, from the refused write's own answer (no second read).
#[tokio::test]
async fn a_document_claim_whose_answer_was_lost_is_still_the_claimers() {
    use oncall_domain::ports::{DocumentClaim, DocumentLedger};
    let lost = LostAnswers::default();
    let (store, log) = store_losing(&lost).await;
    let object = quitus_object("LOST-CLAIM-1");
    let now = jiff::Timestamp::now();
    let until = now + jiff::SignedDuration::from_secs(60);
    lost.lose("UpdateItem", 1);

    let claimed = store.claim_document(&object, now, until).await;

    assert!(
        matches!(&claimed, Ok(DocumentClaim::Claimed(claim)) if claim.in_doubt),
        "{claimed:?}"
    );
    assert_eq!(log.calls(), ["UpdateItem", "UpdateItem"]);
    log.clear();
    let other = store.claim_document(&object, now, until).await;
    assert!(
        matches!(other, Ok(DocumentClaim::HeldElsewhere)),
        "{other:?}"
    );
    assert_eq!(log.calls(), ["UpdateItem"], "refused, without a read");
}

/// A quitus's wait recorded but the answer lost: the retry, refused by its own write, finds
/// it under its claim and says it is recorded (not "the claim was lost", which failed the
/// forwarder's invocation for nothing and had S3's event delivered again).
#[tokio::test]
async fn a_document_wait_whose_answer_was_lost_is_recorded() {
    use oncall_domain::ports::{DocumentClaim, DocumentLedger, DocumentWait};
    let lost = LostAnswers::default();
    let (store, _log) = store_losing(&lost).await;
    let object = quitus_object("LOST-WAIT-1");
    let now = jiff::Timestamp::now();
    let until = now + jiff::SignedDuration::from_secs(60);
    let Ok(DocumentClaim::Claimed(claim)) = store.claim_document(&object, now, until).await else {
        panic!("claimed");
    };
    lost.lose("UpdateItem", 1);

    let wait = DocumentWait {
        file: None,
        attempts: 1,
        last_error: "Intent is unavailable: HTTP 503".into(),
        last_attempt_at: now,
        in_doubt: false,
    };
    let recorded = store.record_pending(&object, &claim.token, &wait).await;

    assert!(recorded.is_ok(), "{recorded:?}");
}

/// The opening was applied, but DynamoDB kept answering that the same call is still in
/// progress, past the call's own retries: the transaction is asked again with the same
/// token (not a new one, which would find its own writes and fail their conditions), and
/// its writer is told it created the file.
#[tokio::test]
async fn a_transaction_still_in_progress_is_asked_again_with_its_token() {
    let lost = LostAnswers::default();
    let (store, log) = store_losing(&lost).await;
    lost.lose_as(
        "TransactWriteItems",
        3,
        400,
        "TransactionInProgressException",
    );
    let file = new_file("IN-PROGRESS-1");

    let opened = store.open_file_sending(&file, &[], None).await;

    assert!(matches!(opened, Ok(OpenFileResult::Created)), "{opened:?}");
    assert_eq!(log.calls().len(), 4, "{:?}", log.calls());
    assert_eq!(
        store
            .load_file(&file.id())
            .await
            .unwrap()
            .unwrap()
            .events
            .len(),
        1
    );
}

/// The same with group commit (the closer's store): the shared call still in progress is
/// asked again with its token, not sent anew (a new token would find its own writes and
/// fail their conditions: a file just created answered as one that already existed).
#[tokio::test]
async fn a_shared_transaction_still_in_progress_is_asked_again_with_its_token() {
    let lost = LostAnswers::default();
    let (store, log) = store_losing(&lost).await;
    let store = store.with_group_commit(1);
    lost.lose_as(
        "TransactWriteItems",
        3,
        400,
        "TransactionInProgressException",
    );
    let file = new_file("IN-PROGRESS-2");

    let opened = store.open_file_sending(&file, &[], None).await;

    assert!(matches!(opened, Ok(OpenFileResult::Created)), "{opened:?}");
    let tokens: std::collections::BTreeSet<String> = log
        .requests()
        .iter()
        .filter(|request| request.operation == "TransactWriteItems")
        .map(|request| {
            request.body["ClientRequestToken"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
}

/// A shared call DynamoDB throttles past the client's own retries is sent again, as the
/// same call, after a pause: not failed at once, nor split into one call per submission
/// (more load on a table that asked for less).
#[tokio::test]
async fn a_shared_call_throttled_past_its_retries_is_sent_again_after_a_pause() {
    let lost = LostAnswers::default();
    let (store, log) = store_losing(&lost).await;
    let store = store.with_group_commit(1);
    lost.refuse_as("TransactWriteItems", 4, 400, "ThrottlingException");
    let file = new_file("THROTTLED-1");

    let opened = store.open_file_sending(&file, &[], None).await;

    assert!(matches!(opened, Ok(OpenFileResult::Created)), "{opened:?}");
    assert_eq!(
        log.calls()
            .iter()
            .filter(|call| *call == "TransactWriteItems")
            .count(),
        5
    );
}

/// A shared call still throttled is not asked again once every caller stopped waiting (a
/// closer run cut off by its host): nothing is sent on its behalf later.
#[tokio::test]
async fn a_held_up_shared_call_is_not_asked_again_once_nobody_waits() {
    let lost = LostAnswers::default();
    let (store, log) = store_losing(&lost).await;
    let store = store.with_group_commit(1);
    lost.refuse_as("TransactWriteItems", 1_000, 400, "ThrottlingException");
    let file = new_file("THROTTLED-2");

    let cut = tokio::time::timeout(
        std::time::Duration::from_millis(50),
        store.open_file_sending(&file, &[], None),
    )
    .await;
    assert!(
        cut.is_err(),
        "still throttled when the caller stops waiting"
    );
    let calls = || {
        log.calls()
            .iter()
            .filter(|call| *call == "TransactWriteItems")
            .count()
    };
    let at_cut = calls();
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;

    // At most what the client's attempt under way had left (3 attempts a call).
    assert!(
        calls() <= at_cut + 3,
        "{} calls after the cut",
        calls() - at_cut
    );
}

/// Outbox entries DynamoDB leaves unprocessed are sent again, and if it keeps leaving them
/// past the retries, the clearing says so (the entries stay, to be published again with
/// the same eventId) instead of reporting them cleared.
#[tokio::test]
async fn outbox_entries_left_unprocessed_are_retried_then_reported() {
    use oncall_domain::DomainEvent;
    use oncall_domain::ports::Outbox;
    let lost = LostAnswers::default();
    let (store, log) = store_losing(&lost).await;
    let announce = |reference: &str| {
        let file = new_file(reference);
        let opened = DomainEvent::opened(&file.opened()).unwrap();
        (file, opened)
    };
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(1);
    let in_outbox = |store: DynamoDbStore, id: String| async move {
        store
            .unpublished_events(later)
            .await
            .unwrap()
            .iter()
            .any(|event| event.event_id() == id)
    };

    // Left once: sent again, cleared.
    let (file, opened) = announce("OUTBOX-LEFT-1");
    store
        .open_file(&file, std::slice::from_ref(&opened))
        .await
        .unwrap();
    lost.leave_unprocessed(1);
    log.clear();
    store.clear_published(&[opened.event_id()]).await.unwrap();
    assert_eq!(log.calls(), ["BatchWriteItem", "BatchWriteItem"]);
    assert!(!in_outbox(store.clone(), opened.event_id()).await);

    // Left every time: reported, and still in the outbox.
    let (file, opened) = announce("OUTBOX-LEFT-2");
    store
        .open_file(&file, std::slice::from_ref(&opened))
        .await
        .unwrap();
    lost.leave_unprocessed(u32::MAX);
    let cleared = store.clear_published(&[opened.event_id()]).await;
    lost.leave_unprocessed(0);
    let error = cleared.expect_err("entries left unprocessed are not reported cleared");
    assert!(error.to_string().contains("1 outbox entr"), "{error}");
    assert!(in_outbox(store, opened.event_id()).await);
}

/// With group commit, two closings share a call that DynamoDB applies but whose answers are
/// all lost past the call's retries. Each closing is then sent again on its own (with a new
/// token) and finds the file closed by its own write: it is told so, with the lease it
/// took, not that the file changed meanwhile (the closer would count it replayed, and its
/// closing would wait for that lease to run out before the re-send run delivered it).
#[tokio::test]
async fn closings_applied_by_a_shared_call_whose_answers_were_lost_are_told_their_own() {
    use oncall_domain::lifecycle::Outcome;
    use oncall_domain::ports::{CloseFile, CloseFileResult};
    let lost = LostAnswers::default();
    let (store, log) = store_losing(&lost).await;
    let files = [new_file("SHARED-LOST-1"), new_file("SHARED-LOST-2")];
    for file in &files {
        store.open_file(file, &[]).await.unwrap();
    }
    let now = jiff::Timestamp::now();
    let until = now + jiff::SignedDuration::from_secs(60);
    let expires = now + jiff::SignedDuration::from_hours(24);
    let closings = files.each_ref().map(|file| {
        let log = parse_intervention_log(
            oncall_domain::intent_examples::SEED_CLOSURE_DONE
                .replace("INTER-0500", &file.opening.log.reference)
                .as_bytes(),
        )
        .unwrap();
        RecordedEvent::new(2, log, now, Delivery::new_pending())
    });
    let ids = files.each_ref().map(NewFile::id);
    let grouped = store.clone().with_group_commit(1);
    // The shared call's three attempts (the first applied) all go unanswered.
    lost.lose("TransactWriteItems", 3);
    log.clear();

    let close = |index: usize| {
        grouped.close_file_sending(
            &ids[index],
            1,
            &closings[index],
            Outcome::Done,
            oncall_domain::lifecycle::ClosingExpiry::new(expires, None),
            &[],
            Some(until),
        )
    };
    let (first, second) = tokio::join!(close(0), close(1));

    for closed in [&first, &second] {
        assert!(
            matches!(closed, Ok(CloseFileResult::ClosedSending)),
            "{closed:?}"
        );
    }
    let calls = log.calls();
    assert!(
        calls.iter().all(|call| call == "TransactWriteItems") && calls.len() == 5,
        "one shared call tried three times, then each on its own: {calls:?}"
    );
    for file in &files {
        let stored = store.load_file(&file.id()).await.unwrap().unwrap();
        assert_eq!(stored.events.len(), 2);
    }
}

/// The same for the documents ledger (the closer forwards waiting quitus on the same
/// store): a refusal and a publication recorded by a shared call whose answers were all
/// lost, then sent again each on its own, are told they were recorded, not that another
/// forwarder took the object over (the refusal would be counted still waiting) nor that
/// the claim was lost (the publication reported as not recorded).
#[tokio::test]
async fn ledger_records_applied_by_a_shared_call_whose_answers_were_lost_are_told_their_own() {
    use oncall_domain::documents::{DocumentRecord, RejectionReason};
    use oncall_domain::ports::{DocumentClaim, DocumentLedger, OpenFile};
    let lost = LostAnswers::default();
    let (store, log) = store_losing(&lost).await;
    let now = jiff::Timestamp::now();
    let until = now + jiff::SignedDuration::from_secs(60);
    let expires = now + jiff::SignedDuration::from_hours(24);
    let file = new_file("LEDGER-LOST-2");
    store.open_file(&file, &[]).await.unwrap();
    let file = store.load_file(&file.id()).await.unwrap().unwrap();
    let (refused, published) = (
        quitus_object("LEDGER-LOST-1"),
        quitus_object("LEDGER-LOST-2"),
    );
    let claim = |object| {
        let store = store.clone();
        async move {
            match store.claim_document(&object, now, until).await.unwrap() {
                DocumentClaim::Claimed(claim) => claim.token,
                other => panic!("{other:?}"),
            }
        }
    };
    let (refused_claim, published_claim) =
        (claim(refused.clone()).await, claim(published.clone()).await);
    let record = DocumentRecord {
        object_identity: published.identity(),
        file_name: "quitus.pdf".into(),
        title: "quitus".into(),
        size: 1000,
        intent_document_id: Some("doc-1".into()),
        published_at: now,
        attempts: 1,
    };
    let grouped = store.clone().with_group_commit(1);
    // The shared call's three attempts (the first applied) all go unanswered.
    lost.lose("TransactWriteItems", 3);
    log.clear();

    let (rejected, recorded) = tokio::join!(
        grouped.record_rejected(
            &refused,
            &refused_claim,
            RejectionReason::IntentRejected,
            "Intent answered 422",
            now,
            expires,
            &[],
        ),
        grouped.record_published(&published, &published_claim, &file, &record, expires, &[]),
    );

    assert!(matches!(rejected, Ok(true)), "{rejected:?}");
    assert!(recorded.is_ok(), "{recorded:?}");
    let calls = log.calls();
    assert_eq!(
        calls.len(),
        5,
        "one shared call tried three times, then each on its own: {calls:?}"
    );
}

/// A closing writes the opening's expiry only when the one it was stored with does not
/// cover the file's (a file stored before openings got one, or closed past the margin);
/// otherwise the opening is left as stored, and the whole file expires with it.
#[tokio::test]
async fn a_closing_extends_the_openings_expiry_only_when_it_falls_short() {
    use oncall_domain::lifecycle::{ClosingExpiry, Outcome};
    use oncall_domain::ports::CloseFile;
    let (store, client) = store().await;
    let now = jiff::Timestamp::now();
    let day = jiff::SignedDuration::from_hours(24);
    let closing_expiry = now + 400 * day;
    let expiry_of = |sk: &'static str, reference: &'static str| {
        let client = client.clone();
        let table = store.table().to_string();
        async move {
            let item = client
                .get_item()
                .table_name(table)
                .key(
                    "pk",
                    AttributeValue::S(format!("FILE#contract1#{reference}")),
                )
                .key("sk", AttributeValue::S(sk.into()))
                .consistent_read(true)
                .send()
                .await
                .unwrap()
                .item
                .unwrap();
            item.get("expiresAt")
                .map(|at| at.as_n().unwrap().parse::<i64>().unwrap())
        }
    };
    for (reference, stored_with, extended) in [
        ("EXPIRY-COVERED", Some(now + 409 * day), false),
        ("EXPIRY-SHORT", Some(now + 399 * day), true),
        ("EXPIRY-NONE", None, true),
    ] {
        let mut file = new_file(reference);
        file.expires_at = stored_with;
        store.open_file(&file, &[]).await.unwrap();
        assert_eq!(
            expiry_of("EVENT#000001", reference).await,
            stored_with.map(|at| at.as_second())
        );
        let expiry = ClosingExpiry::new(closing_expiry, stored_with);
        assert_eq!(expiry.earlier_items, extended, "{reference}");
        let log = parse_intervention_log(
            oncall_domain::intent_examples::SEED_CLOSURE_DONE
                .replace("INTER-0500", reference)
                .as_bytes(),
        )
        .unwrap();
        let closing = RecordedEvent::new(2, log, now, Delivery::new_pending());
        store
            .close_file(&file.id(), 1, &closing, Outcome::Done, expiry, &[])
            .await
            .unwrap();

        let opening = expiry_of("EVENT#000001", reference).await.unwrap();
        assert!(opening >= closing_expiry.as_second(), "{reference}");
        let expected = if extended {
            closing_expiry
        } else {
            stored_with.unwrap()
        };
        assert_eq!(opening, expected.as_second(), "{reference}");
        // The rest of the file expires with its opening.
        for sk in ["FILE", "EVENT#000002"] {
            assert_eq!(
                expiry_of(sk, reference).await,
                Some(expected.as_second()),
                "{reference} {sk}"
            );
        }
    }
}

/// A file whose data has expired is gone, whatever DynamoDB's TTL (which erases item by
/// item, typically within days) has erased of it yet: its reference can be claimed again,
/// and the new file is read, closed and closed again as if the old one had never been.
#[tokio::test]
async fn a_reference_whose_file_has_expired_can_be_claimed_again_whatever_ttl_has_erased() {
    use oncall_domain::lifecycle::{ClosingExpiry, Outcome};
    use oncall_domain::ports::CloseFile;
    let (store, client) = store().await;
    // In seconds, as `expiresAt` keeps it.
    let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap();
    let day = jiff::SignedDuration::from_hours(24);
    let closing_of = |reference: &str, recorded_at| {
        let log = parse_intervention_log(
            oncall_domain::intent_examples::SEED_CLOSURE_DONE
                .replace("INTER-0500", reference)
                .as_bytes(),
        )
        .unwrap();
        RecordedEvent::new(2, log, recorded_at, Delivery::new_pending())
    };
    // Each case: the old file's items TTL erased already.
    for (reference, erased) in [
        ("EXPIRED-NONE-ERASED", &[][..]),
        ("EXPIRED-FILE-ERASED", &["FILE"][..]),
        ("EXPIRED-OPENING-ERASED", &["FILE", "EVENT#000001"][..]),
    ] {
        // The old file: claimed, closed, expired yesterday.
        let mut old = new_file(reference);
        old.expires_at = Some(now - day);
        store.open_file(&old, &[]).await.unwrap();
        let closed = store
            .close_file(
                &old.id(),
                1,
                &closing_of(reference, now - 400 * day),
                Outcome::Done,
                ClosingExpiry::new(now - day, old.expires_at),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(closed, oncall_domain::ports::CloseFileResult::Closed);
        // A quitus's record of the old file that has not expired yet (it may outlive its
        // file by a margin).
        let record = |name: &str, value: AttributeValue| (name.to_string(), value);
        client
            .put_item()
            .table_name(store.table())
            .set_item(Some(std::collections::HashMap::from([
                record(
                    "pk",
                    AttributeValue::S(format!("FILE#contract1#{reference}")),
                ),
                record(
                    "sk",
                    AttributeValue::S("DOC#2025-10-30T10:00:00Z#0123456789abcdef".into()),
                ),
                record("itemType", AttributeValue::S("document".into())),
                record(
                    "objectIdentity",
                    AttributeValue::S("0123456789abcdef0123".into()),
                ),
                record("fileName", AttributeValue::S("quitus.pdf".into())),
                record("title", AttributeValue::S("quitus".into())),
                record("size", AttributeValue::N("1000".into())),
                record(
                    "publishedAt",
                    AttributeValue::S("2025-10-30T10:00:00Z".into()),
                ),
                record("attempts", AttributeValue::N("1".into())),
                record(
                    "expiresAt",
                    AttributeValue::N((now + 10 * day).as_second().to_string()),
                ),
            ])))
            .send()
            .await
            .unwrap();
        for sk in erased {
            client
                .delete_item()
                .table_name(store.table())
                .key(
                    "pk",
                    AttributeValue::S(format!("FILE#contract1#{reference}")),
                )
                .key("sk", AttributeValue::S(sk.to_string()))
                .send()
                .await
                .unwrap();
        }
        assert_eq!(
            store.load_file(&old.id()).await.unwrap(),
            None,
            "{reference}: an expired file is not there"
        );

        // The same reference claimed again.
        let mut new = new_file(reference);
        new.expires_at = Some(now + 400 * day);
        assert_eq!(
            store.open_file(&new, &[]).await,
            Ok(OpenFileResult::Created),
            "{reference}"
        );
        let loaded = store.load_file(&new.id()).await.unwrap().unwrap();
        assert_eq!(loaded.state, FileState::Open, "{reference}");
        assert_eq!(loaded.events, vec![new.opening.clone()], "{reference}");
        assert!(
            loaded.documents.is_empty(),
            "{reference}: the old file's quitus"
        );
        assert_eq!(loaded.expires_at, new.expires_at, "{reference}");
        let closed = store
            .close_file(
                &new.id(),
                1,
                &closing_of(reference, now),
                Outcome::Done,
                ClosingExpiry::new(now + 395 * day, new.expires_at),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(
            closed,
            oncall_domain::ports::CloseFileResult::Closed,
            "{reference}"
        );
        let loaded = store.load_file(&new.id()).await.unwrap().unwrap();
        assert_eq!(
            loaded.state,
            FileState::Closed(Outcome::Done),
            "{reference}"
        );
        assert_eq!(loaded.events.len(), 2, "{reference}");
    }
}

/// A file whose data has expired, which DynamoDB's TTL has not erased yet, is gone for the
/// store (its read finds nothing): an upload grant for it is refused as for no file, and
/// not kept (its quitus would wait for a file that is not there, or reach a new file of
/// the same reference).
#[tokio::test]
async fn an_upload_grant_for_an_expired_file_is_refused_as_for_no_file() {
    use oncall_domain::documents::UploadGrant;
    use oncall_domain::lifecycle::{ClosingExpiry, Outcome};
    use oncall_domain::ports::{CloseFile, GrantRecorded, LoadFile, UploadGrants};
    let (store, _client) = store().await;
    let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap();
    let day = jiff::SignedDuration::from_hours(24);
    let mut old = new_file("EXPIRED-GRANT");
    old.expires_at = Some(now - day);
    store.open_file(&old, &[]).await.unwrap();
    let closing = RecordedEvent::new(
        2,
        parse_intervention_log(
            oncall_domain::intent_examples::SEED_CLOSURE_DONE
                .replace("INTER-0500", "EXPIRED-GRANT")
                .as_bytes(),
        )
        .unwrap(),
        now - 400 * day,
        Delivery::new_pending(),
    );
    store
        .close_file(
            &old.id(),
            1,
            &closing,
            Outcome::Done,
            ClosingExpiry::new(now - day, old.expires_at),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(store.load_file(&old.id()).await.unwrap(), None, "gone");
    let grant = UploadGrant {
        key: format!(
            "quitus/contract1/EXPIRED-GRANT/{}-quitus.pdf",
            uuid::Uuid::new_v4()
        ),
        file: old.id(),
        partner: old.owner.clone(),
        file_name: "quitus.pdf".into(),
        size: 10,
        granted_at: now,
        upload_by: now + jiff::SignedDuration::from_mins(5),
    };

    let recorded = store.record_upload_grant(&grant, now + day).await.unwrap();

    assert_eq!(recorded, GrantRecorded::NoFile);
    assert_eq!(store.upload_grant(&grant.key).await.unwrap(), None);
}

/// An operator's redrive of a refused event, applied but its answer lost: the retry's
/// condition fails on the redrive's own write, which it recognises (its token), so the
/// operator is told the event was put back, not that it had moved on.
#[tokio::test]
async fn an_event_requeued_whose_answer_was_lost_is_told_requeued() {
    use oncall_domain::ports::{RecordDelivery, RequeueFailedEvent};
    let lost = LostAnswers::default();
    let (store, log) = store_losing(&lost).await;
    let file = new_file("LOST-REQUEUE-1");
    assert!(matches!(
        store.open_file_sending(&file, &[], None).await,
        Ok(OpenFileResult::Created)
    ));
    let at = jiff::Timestamp::now();
    let refused = oncall_domain::Delivery::Failed {
        attempts: 2,
        last_error: "Intent rejected the request with HTTP 400".into(),
        last_attempt_at: at,
    };
    store
        .record_delivery(&file.id(), 1, &refused, &[])
        .await
        .unwrap();
    let pending = oncall_domain::Delivery::Pending {
        attempts: 2,
        last_error: None,
        last_attempt_at: None,
        in_doubt: false,
    };
    lost.lose("UpdateItem", 1);
    log.clear();

    let requeued = store.requeue_failed_event(&file.id(), 1, &pending).await;

    assert!(matches!(requeued, Ok(true)), "{requeued:?}");
    assert_eq!(log.calls(), ["UpdateItem", "UpdateItem"]);
    let stored = store.load_file(&file.id()).await.unwrap().unwrap();
    assert!(stored.events[0].delivery.is_pending());
    // Put back already: another redrive of the same copy is told it moved on.
    let again = store.requeue_failed_event(&file.id(), 1, &pending).await;
    assert!(matches!(again, Ok(false)), "{again:?}");
}

/// The same for a quitus Intent refused: put back to waiting, the answer lost, told so.
#[tokio::test]
async fn a_document_requeued_whose_answer_was_lost_is_told_requeued() {
    use oncall_domain::documents::RejectionReason;
    use oncall_domain::ports::{DocumentClaim, DocumentLedger};
    use oncall_domain::redrive::OperatorStore;
    let lost = LostAnswers::default();
    let (store, log) = store_losing(&lost).await;
    let object = quitus_object("LOST-REQUEUE-2");
    let now = jiff::Timestamp::now();
    let until = now + jiff::SignedDuration::from_secs(60);
    let DocumentClaim::Claimed(claim) = store.claim_document(&object, now, until).await.unwrap()
    else {
        panic!("a claim");
    };
    assert!(
        store
            .record_rejected(
                &object,
                &claim.token,
                RejectionReason::IntentRejected,
                "Intent rejected the document with HTTP 400",
                now,
                until,
                &[],
            )
            .await
            .unwrap()
    );
    lost.lose("UpdateItem", 1);
    log.clear();

    let requeued = store.requeue_document(&object).await;

    assert!(matches!(requeued, Ok(true)), "{requeued:?}");
    assert_eq!(log.calls(), ["UpdateItem", "UpdateItem"]);
    let again = store.requeue_document(&object).await;
    assert!(matches!(again, Ok(false)), "{again:?}");
}

/// A reference claimed again while its earlier file's closing, expired, is not yet erased
/// by TTL: the new file's closure written unread gets its closing's own item over it when
/// its outcome is recorded, as a closing transaction would.
#[tokio::test]
async fn a_closure_written_unread_over_an_expired_closing_not_yet_erased_is_recorded() {
    use oncall_domain::ports::{FinishDelivery, SendLease};
    let (store, _) = store().await;
    let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap();
    let until = now + jiff::SignedDuration::from_mins(3);

    let (new, closing) = claimed_over_an_expired_closing(&store, "EXPIRED-CLOSING-LEFT", now).await;
    closed_unread(&store, &new, &closing, until).await;
    let delivered = Delivery::Delivered {
        attempts: 1,
        delivered_at: now,
    };
    store
        .finish_delivery(&new.id(), 2, &delivered, &[], until, &[])
        .await
        .unwrap();
    let loaded = store.load_file(&new.id()).await.unwrap().unwrap();
    assert_eq!(loaded.events.len(), 2);
    assert_eq!(
        loaded.events[1].delivery, delivered,
        "the outcome is recorded"
    );
    assert_eq!(loaded.events[1].recorded_at, now);

    // Its writer gone before recording it, the next sender's taking of the lease gives
    // the closing its item over the remnant.
    let (new, closing) =
        claimed_over_an_expired_closing(&store, "EXPIRED-CLOSING-LEFT-2", now).await;
    closed_unread(&store, &new, &closing, until).await;
    let other = store_on(&sdk_config().await, store.table());
    let later = now + jiff::SignedDuration::from_mins(4);
    other
        .take_send_lease(&new.id(), later, later + jiff::SignedDuration::from_mins(3))
        .await
        .unwrap();
    let loaded = store.load_file(&new.id()).await.unwrap().unwrap();
    assert!(loaded.events[1].delivery.is_pending());
    let file = raw_file_item(&store, &new.id()).await;
    assert!(!file.contains_key("stagedClosing"));
    let closing_item = aws_sdk_dynamodb::Client::new(&sdk_config().await)
        .get_item()
        .table_name(store.table())
        .key(
            "pk",
            AttributeValue::S("FILE#contract1#EXPIRED-CLOSING-LEFT-2".into()),
        )
        .key("sk", AttributeValue::S("EVENT#000002".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(
        closing_item["recordedAt"].as_s().unwrap(),
        &now.to_string(),
        "the new closing's own item, over the remnant"
    );
    assert_eq!(closing_item["expiresAt"], file["expiresAt"]);
}

/// `reference`'s earlier file closed and expired yesterday (its closing not yet erased by
/// TTL), claimed again (its opening delivered, kept 400 days): the new file, and its
/// closing as of `now`.
async fn claimed_over_an_expired_closing(
    store: &DynamoDbStore,
    reference: &str,
    now: jiff::Timestamp,
) -> (NewFile, RecordedEvent) {
    use oncall_domain::lifecycle::{ClosingExpiry, Outcome};
    use oncall_domain::ports::CloseFile;
    let day = jiff::SignedDuration::from_hours(24);
    let closing_at = |recorded_at| {
        let log = parse_intervention_log(
            oncall_domain::intent_examples::SEED_CLOSURE_DONE
                .replace("INTER-0500", reference)
                .as_bytes(),
        )
        .unwrap();
        RecordedEvent::new(2, log, recorded_at, Delivery::new_pending())
    };
    let mut old = new_file(reference);
    old.expires_at = Some(now - day);
    store.open_file(&old, &[]).await.unwrap();
    store
        .close_file(
            &old.id(),
            1,
            &closing_at(now - 400 * day),
            Outcome::Done,
            ClosingExpiry::new(now - day, old.expires_at),
            &[],
        )
        .await
        .unwrap();
    let mut new = new_file(reference);
    new.opening.delivery = Delivery::Delivered {
        attempts: 1,
        delivered_at: now - day,
    };
    new.expires_at = Some(now + 400 * day);
    assert_eq!(
        store.open_file(&new, &[]).await,
        Ok(OpenFileResult::Created)
    );
    (new, closing_at(now))
}

/// `file` (kept 400 days from about now) closed unread by its partner with `closing`,
/// the lease until `until`; asserts it was applied.
async fn closed_unread(
    store: &DynamoDbStore,
    file: &NewFile,
    closing: &RecordedEvent,
    until: jiff::Timestamp,
) {
    let written = close_unread_of(store, file, closing, until).await;
    assert!(
        matches!(
            written,
            oncall_domain::ports::UnreadClosingResult::ClosedSending(_)
        ),
        "{written:?}"
    );
}

/// `file` closed unread by its partner with `closing` (retention: 395 days from the
/// closing), asking for the lease until `until`: what the store did.
async fn close_unread_of(
    store: &DynamoDbStore,
    file: &NewFile,
    closing: &RecordedEvent,
    until: jiff::Timestamp,
) -> oncall_domain::ports::UnreadClosingResult {
    use oncall_domain::lifecycle::Outcome;
    use oncall_domain::ports::{CloseFile, UnreadClosing};
    store
        .close_unread(UnreadClosing {
            id: &file.id(),
            owner: &file.owner,
            closing,
            outcome: Outcome::Done,
            retention_ends: closing.recorded_at + jiff::SignedDuration::from_hours(24 * 395),
            announce: &[],
            sending_until: until,
        })
        .await
        .unwrap()
}

/// The file item as stored.
async fn raw_file_item(
    store: &DynamoDbStore,
    id: &FileId,
) -> std::collections::HashMap<String, AttributeValue> {
    aws_sdk_dynamodb::Client::new(&sdk_config().await)
        .get_item()
        .table_name(store.table())
        .key(
            "pk",
            AttributeValue::S(format!("FILE#{}#{}", id.contract_reference, id.reference)),
        )
        .key("sk", AttributeValue::S("FILE".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap()
}

/// A closure written unread that gives its lease back before sending its closing (its
/// request out of time) has its announcement published once: the lease's release gives
/// the closing its item and the announcement its outbox entry, which the publication
/// clears; nothing is left on the file item for the next sender to publish again.
#[tokio::test]
async fn a_closure_written_unread_given_back_unsent_is_announced_once() {
    use oncall_domain::lifecycle::Outcome;
    use oncall_domain::ports::{CloseFile, Outbox, SendLease, UnreadClosing, UnreadClosingResult};
    let (store, client) = store().await;
    let now = jiff::Timestamp::now();
    let day = jiff::SignedDuration::from_hours(24);
    let (file, closing) = claimed_and_delivered(&store, "GIVEN-BACK-1", now).await;
    let mut closed = file.opened();
    closed.state = FileState::Closed(Outcome::Done);
    closed.events.push(closing.clone());
    let announce: Vec<_> = oncall_domain::DomainEvent::closed(&closed, "partner")
        .into_iter()
        .collect();
    let until = now + jiff::SignedDuration::from_mins(3);
    let written = store
        .close_unread(UnreadClosing {
            id: &file.id(),
            owner: &file.owner,
            closing: &closing,
            outcome: Outcome::Done,
            retention_ends: now + 395 * day,
            announce: &announce,
            sending_until: until,
        })
        .await
        .unwrap();
    assert!(matches!(written, UnreadClosingResult::ClosedSending(_)));

    // As `deliver_under_lease` out of time: the lease given back, the announcement
    // published and cleared.
    store.release_send_lease(&file.id(), until).await.unwrap();
    store
        .clear_published(&[announce[0].event_id()])
        .await
        .unwrap();
    let later = now + jiff::SignedDuration::from_mins(1);
    store
        .take_send_lease(
            &file.id(),
            later,
            later + jiff::SignedDuration::from_mins(3),
        )
        .await
        .unwrap();

    let outbox = client
        .scan()
        .table_name(store.table())
        .filter_expression("sk = :outbox")
        .expression_attribute_values(":outbox", AttributeValue::S("OUTBOX".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    assert!(outbox.is_empty(), "published again later: {outbox:?}");
    let loaded = store.load_file(&file.id()).await.unwrap().unwrap();
    assert_eq!(loaded.events.len(), 2);
    assert!(loaded.events[1].delivery.is_pending(), "still to send");
    assert!(
        !raw_file_item(&store, &file.id())
            .await
            .contains_key("stagedOutbox")
    );
}

/// The unread closure's condition, case by case against DynamoDB Local: every file it
/// cannot decide alone refuses it, nothing written; the boundary cases it can decide are
/// written.
#[tokio::test]
async fn a_closure_written_unread_is_refused_by_every_file_it_cannot_decide_alone() {
    use oncall_domain::lifecycle::Outcome;
    use oncall_domain::ports::{
        CloseFile, MarkQuitusReceived, SendLease, UnreadClosing, UnreadClosingResult,
    };
    let (store, client) = store().await;
    let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap();
    let day = jiff::SignedDuration::from_hours(24);
    let nanosecond = jiff::SignedDuration::from_nanos(1);
    let opened_at = |file: &NewFile| file.opening.log.event_date.timestamp();
    let expires_at = now + 400 * day;

    #[derive(Clone, Copy, Debug)]
    enum Case {
        AnotherPartner,
        OpeningPending,
        QuitusReceived,
        LeaseLeftBehind,
        DatedBeforeTheOpening,
        ExpiryBeforeTheRetention,
        ExpiryPastTheMargin,
        StoredWithoutItsCopy,
        NoFile,
        DatedAsTheOpening,
        ExpiryAtTheRetentionsEnd,
        ExpiryAtTheMarginsEnd,
    }
    use Case::*;
    for (index, case) in [
        AnotherPartner,
        OpeningPending,
        QuitusReceived,
        LeaseLeftBehind,
        DatedBeforeTheOpening,
        ExpiryBeforeTheRetention,
        ExpiryPastTheMargin,
        StoredWithoutItsCopy,
        NoFile,
        DatedAsTheOpening,
        ExpiryAtTheRetentionsEnd,
        ExpiryAtTheMarginsEnd,
    ]
    .into_iter()
    .enumerate()
    {
        let reference = format!("UNREAD-{index}");
        let mut file = new_file(&reference);
        if !matches!(case, OpeningPending) {
            file.opening.delivery = Delivery::Delivered {
                attempts: 1,
                delivered_at: now - day,
            };
        }
        file.expires_at = Some(expires_at);
        if !matches!(case, NoFile) {
            store.open_file(&file, &[]).await.unwrap();
        }
        match case {
            QuitusReceived => {
                store.mark_quitus_received(&file.id()).await.unwrap();
            }
            LeaseLeftBehind => {
                store
                    .take_send_lease(&file.id(), now - 10 * day, now - 9 * day)
                    .await
                    .unwrap();
            }
            StoredWithoutItsCopy => {
                client
                    .update_item()
                    .table_name(store.table())
                    .key(
                        "pk",
                        AttributeValue::S(format!("FILE#contract1#{reference}")),
                    )
                    .key("sk", AttributeValue::S("FILE".into()))
                    .update_expression("REMOVE openingCopy, openingEventAt")
                    .send()
                    .await
                    .unwrap();
            }
            _ => {}
        }
        let mut log = parse_intervention_log(
            oncall_domain::intent_examples::SEED_CLOSURE_DONE
                .replace("INTER-0500", &reference)
                .as_bytes(),
        )
        .unwrap();
        match case {
            DatedBeforeTheOpening => {
                log.event_date =
                    oncall_domain::IntentDateTime::from_timestamp(opened_at(&file) - nanosecond);
            }
            DatedAsTheOpening => {
                log.event_date = oncall_domain::IntentDateTime::from_timestamp(opened_at(&file));
            }
            _ => {}
        }
        let closing = RecordedEvent::new(2, log, now, Delivery::new_pending());
        let retention_ends = match case {
            ExpiryBeforeTheRetention => expires_at + jiff::SignedDuration::from_secs(1),
            ExpiryPastTheMargin => expires_at - 14 * day - jiff::SignedDuration::from_secs(1),
            ExpiryAtTheRetentionsEnd => expires_at,
            ExpiryAtTheMarginsEnd => expires_at - 14 * day,
            _ => now + 395 * day,
        };
        let owner = match case {
            AnotherPartner => PartnerId("partner-b".into()),
            _ => file.owner.clone(),
        };
        let until = now + jiff::SignedDuration::from_mins(3);
        let written = store
            .close_unread(UnreadClosing {
                id: &file.id(),
                owner: &owner,
                closing: &closing,
                outcome: Outcome::Done,
                retention_ends,
                announce: &[],
                sending_until: until,
            })
            .await
            .unwrap();
        let stored = store.load_file(&file.id()).await.unwrap();
        match case {
            DatedAsTheOpening | ExpiryAtTheRetentionsEnd | ExpiryAtTheMarginsEnd => {
                let UnreadClosingResult::ClosedSending(closed) = written else {
                    panic!("{case:?}: {written:?}");
                };
                assert_eq!(closed.events.len(), 2, "{case:?}");
                assert_eq!(stored.as_ref(), Some(&closed), "{case:?}: as stored");
                assert_eq!(closed.expires_at, Some(expires_at), "{case:?}");
            }
            NoFile => {
                assert_eq!(written, UnreadClosingResult::NotApplied, "{case:?}");
                assert_eq!(stored, None, "{case:?}: no item created");
            }
            _ => {
                let stored = stored.unwrap();
                // Refused, the file item gives the file back when it holds it whole (its
                // opening delivered, no quitus).
                match (case, written) {
                    (
                        AnotherPartner
                        | LeaseLeftBehind
                        | DatedBeforeTheOpening
                        | ExpiryBeforeTheRetention
                        | ExpiryPastTheMargin,
                        UnreadClosingResult::Refused(file),
                    ) => assert_eq!(file, stored, "{case:?}: given back as stored"),
                    (
                        OpeningPending | QuitusReceived | StoredWithoutItsCopy,
                        UnreadClosingResult::NotApplied,
                    ) => {}
                    (case, written) => panic!("{case:?}: {written:?}"),
                }
                assert_eq!(stored.state, FileState::Open, "{case:?}");
                assert_eq!(stored.events.len(), 1, "{case:?}");
                let file_item = raw_file_item(&store, &file.id()).await;
                assert!(!file_item.contains_key("stagedClosing"), "{case:?}");
                if !matches!(case, LeaseLeftBehind) {
                    assert!(!file_item.contains_key("sendingUntil"), "{case:?}");
                }
            }
        }
    }
}

/// A file closed unread and delivered is given back whole by the refusal of its replay
/// (answered without a read); once a reconciliation finds its closing lost and refused,
/// the file item no longer says the closing delivered, and the refusal gives nothing back
/// (the file is read, never answered from a stale copy).
#[tokio::test]
async fn a_refusal_gives_the_file_back_only_while_the_file_item_says_it_whole() {
    use oncall_domain::ports::{FinishDelivery, RecordLostEventRefused, UnreadClosingResult};
    let (store, client) = store().await;
    let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap();
    let (file, closing) = claimed_and_delivered(&store, "GIVEN-WHOLE-1", now).await;
    let until = now + jiff::SignedDuration::from_mins(3);
    closed_unread(&store, &file, &closing, until).await;
    let delivered = Delivery::Delivered {
        attempts: 1,
        delivered_at: now,
    };
    store
        .finish_delivery(&file.id(), 2, &delivered, &[], until, &[])
        .await
        .unwrap();
    let replay = || {
        close_unread_of(
            &store,
            &file,
            &closing,
            until + jiff::SignedDuration::from_mins(1),
        )
    };

    let stored = store.load_file(&file.id()).await.unwrap().unwrap();
    assert_eq!(replay().await, UnreadClosingResult::Refused(stored));

    let refused = Delivery::Failed {
        attempts: 2,
        last_error: "the closing is not on Intent".into(),
        last_attempt_at: now,
    };
    assert!(
        store
            .record_lost_event_refused(&file.id(), 2, &refused, &[])
            .await
            .unwrap()
    );
    assert_eq!(replay().await, UnreadClosingResult::NotApplied);
    let stored = store.load_file(&file.id()).await.unwrap().unwrap();
    assert!(stored.events[1].delivery.is_failed());

    // Expired (TTL not yet through), a whole file item gives nothing back either: a read
    // finds no file.
    let (file, closing) = claimed_and_delivered(&store, "GIVEN-WHOLE-2", now).await;
    closed_unread(&store, &file, &closing, until).await;
    store
        .finish_delivery(&file.id(), 2, &delivered, &[], until, &[])
        .await
        .unwrap();
    let replay = || {
        close_unread_of(
            &store,
            &file,
            &closing,
            until + jiff::SignedDuration::from_mins(1),
        )
    };
    assert!(matches!(replay().await, UnreadClosingResult::Refused(_)));
    client
        .update_item()
        .table_name(store.table())
        .key(
            "pk",
            AttributeValue::S("FILE#contract1#GIVEN-WHOLE-2".into()),
        )
        .key("sk", AttributeValue::S("FILE".into()))
        .update_expression("SET expiresAt = :past")
        .expression_attribute_values(
            ":past",
            AttributeValue::N((jiff::Timestamp::now().as_second() - 2).to_string()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(replay().await, UnreadClosingResult::NotApplied);
    assert_eq!(store.load_file(&file.id()).await.unwrap(), None);
}

/// A claim of the seed under `reference` stored with its opening delivered a day before
/// `now` (kept 400 days), and its closing as of `now`, pending.
async fn claimed_and_delivered(
    store: &DynamoDbStore,
    reference: &str,
    now: jiff::Timestamp,
) -> (NewFile, RecordedEvent) {
    let day = jiff::SignedDuration::from_hours(24);
    let mut file = new_file(reference);
    file.opening.delivery = Delivery::Delivered {
        attempts: 1,
        delivered_at: now - day,
    };
    file.expires_at = Some(now + 400 * day);
    store.open_file(&file, &[]).await.unwrap();
    let log = parse_intervention_log(
        oncall_domain::intent_examples::SEED_CLOSURE_DONE
            .replace("INTER-0500", reference)
            .as_bytes(),
    )
    .unwrap();
    (
        file,
        RecordedEvent::new(2, log, now, Delivery::new_pending()),
    )
}
