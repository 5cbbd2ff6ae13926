//! Group commit: concurrent transactions of one process share `TransactWriteItems` calls.
//!
//! A function that writes many files at once (the on-call closer at the end of a period:
//! thousands of closings, then thousands of delivery records) would otherwise make one
//! round trip per file and per step. Here a transaction submitted while fewer than
//! `max_in_flight` calls are under way is sent at once (no added latency when the process
//! is quiet); those submitted meanwhile wait for the next call and go together, up to
//! DynamoDB's 100 actions per call. Each submission keeps its own all-or-nothing
//! semantics (a combined transaction is all-or-nothing for all of them), and gets its own
//! answer:
//!
//! - the call committed: every submission committed;
//! - the call was cancelled: DynamoDB gives one reason per action, in order, so each
//!   submission is told its own: a failed condition (`ConditionFailed`), a conflict with
//!   another writer (`Conflict`: its caller retries with jitter, as for a transaction of
//!   its own), and those that only fell with the others go again in the next call;
//! - no answer at all (a timeout, a connection lost, a 5xx), a throttling, the same call
//!   still in progress: the same call again with the same `ClientRequestToken`
//!   ([`Client::send`]'s retries, as for any call; a throttling or a call still in
//!   progress, then again after growing pauses), so a call applied whose answer was lost
//!   is not applied twice; still throttled or in progress after that, every submission is
//!   told the store is unavailable (none is to blame, and sending each on its own would
//!   only add load, or find the call's own writes);
//! - anything else (a validation error, reasons missing, still no answer): each
//!   submission is sent again on its own, so one bad submission never fails another (one
//!   applied after all then finds its condition failed: a closing recognises its own write
//!   by the token it carries, a delivery record or a lease release finds its work done).
//!
//! Two submissions touching the same item never share a call (DynamoDB refuses a
//! transaction with two actions on one item). The calls are made by spawned tasks: a
//! caller that stops waiting (a deadline) does not stop the others' call.

use crate::store::{Attempt, attempt_failed, send_transaction, unavailable};
use crate::wire::{
    DynamoDb as Client, DynamoError, OldItems, Operation, Request, TransactWriteItem, request_token,
};
use oncall_domain::ports::StoreError;
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// DynamoDB's limit of actions in one `TransactWriteItems`.
pub(crate) const MAX_ACTIONS: usize = 100;

/// An item's key (`pk`, `sk`), to keep two actions on one item out of a call.
type ItemKey = (String, String);

struct Submission {
    items: Vec<TransactWriteItem>,
    keys: Vec<ItemKey>,
    reply: oneshot::Sender<Result<Attempt, StoreError>>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Submission>,
    in_flight: usize,
}

/// Shared by the clones of one store.
pub(crate) struct GroupCommit {
    queue: Mutex<Queue>,
    max_in_flight: usize,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("max_in_flight", &self.max_in_flight)
            .finish_non_exhaustive()
    }
}

impl GroupCommit {
    pub(crate) fn new(max_in_flight: usize) -> Arc<Self> {
        Arc::new(Self {
            queue: Mutex::new(Queue::default()),
            max_in_flight: max_in_flight.max(1),
        })
    }

    /// Sends `items` as one transaction, in a call it may share with others.
    pub(crate) async fn submit(
        self: &Arc<Self>,
        client: &Client,
        items: Vec<TransactWriteItem>,
    ) -> Result<Attempt, StoreError> {
        let keys: Option<Vec<ItemKey>> = items.iter().map(TransactWriteItem::key).collect();
        let Some(keys) = keys.filter(|_| items.len() < MAX_ACTIONS) else {
            // Not shareable (no plain key, or as large as a call): on its own.
            return send_transaction(client, items, request_token()).await;
        };
        let (reply, answer) = oneshot::channel();
        let start_sender = {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.waiting.push_back(Submission { items, keys, reply });
            let start = queue.in_flight < self.max_in_flight;
            if start {
                queue.in_flight += 1;
            }
            start
        };
        if start_sender {
            let group = Arc::clone(self);
            let client = client.clone();
            tokio::spawn(async move { group.send_while_waiting(&client).await });
        }
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the shared transaction call was abandoned".into(),
            ))
        })
    }

    /// One sender: takes waiting submissions into calls until none is left.
    async fn send_while_waiting(&self, client: &Client) {
        let mut slot = SenderSlot {
            group: self,
            given_back: false,
        };
        loop {
            let batch = {
                let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                let batch = take_batch(&mut queue.waiting);
                if batch.is_empty() {
                    // Under the lock that a new submission takes: none is left unsent.
                    queue.in_flight -= 1;
                    slot.given_back = true;
                    return;
                }
                batch
            };
            let retry = self.send_batch(client, batch).await;
            if !retry.is_empty() {
                let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                for submission in retry.into_iter().rev() {
                    queue.waiting.push_front(submission);
                }
            }
        }
    }

    /// Sends one call; answers each submission, and returns those to send again (they
    /// only fell with another one).
    async fn send_batch(&self, client: &Client, batch: Vec<Submission>) -> Vec<Submission> {
        let items: Vec<TransactWriteItem> = batch
            .iter()
            .flat_map(|submission| submission.items.iter().cloned())
            .collect();
        // One token for the call and its retries (`Client::send` tries it again, same token,
        // while it may pass later): if an attempt was applied but its answer lost, DynamoDB
        // answers the retry with success instead of applying it twice (or failing its
        // conditions on our own writes).
        let request = Request::default()
            .transact_items(items)
            .client_request_token(request_token());
        let abandoned = || batch.iter().all(|submission| submission.reply.is_closed());
        let error = match send_while_held_up(client, &request, abandoned).await {
            Ok(()) => {
                for submission in batch {
                    let _ = submission.reply.send(Ok(Attempt::Committed));
                }
                return Vec::new();
            }
            Err(error) => error,
        };
        if error.is_held_up() {
            // Still held up after the pauses: no submission's fault, and sending each on
            // its own (new tokens, all at once) would only add load or find the call's own
            // writes. Each is told the store is unavailable.
            tracing::warn!(
                submissions = batch.len(),
                %error,
                "a shared transaction call is still held up; its submissions fail for now"
            );
            for submission in batch {
                let _ = submission.reply.send(Err(unavailable(error.clone())));
            }
            return Vec::new();
        }
        if batch.len() == 1 {
            // Alone in its call: its answer is the call's.
            for submission in batch {
                let _ = submission.reply.send(attempt_failed(error.clone()));
            }
            return Vec::new();
        }
        let Some(reasons) = reasons_per_action(&error) else {
            // No per-action answer (refused as a whole, or never answered): each goes on
            // its own, for its own answer; one that was applied after all finds its
            // condition failed (see the module's documentation for what it then does).
            tracing::warn!(
                submissions = batch.len(),
                %error,
                "a shared transaction call failed without per-action reasons; sending each on its own"
            );
            send_each(client, batch).await;
            return Vec::new();
        };
        if reasons.len() != batch.iter().map(|s| s.items.len()).sum::<usize>() {
            // Not the answer DynamoDB documents: each on its own as well.
            send_each(client, batch).await;
            return Vec::new();
        }
        if reasons.iter().all(|code| code == "None") {
            // Cancelled with no action to blame: not an answer DynamoDB documents; rather
            // than send the same call again forever, each on its own.
            send_each(client, batch).await;
            return Vec::new();
        }
        let mut offset = 0;
        let mut again = Vec::new();
        for submission in batch {
            let actions = offset..offset + submission.items.len();
            offset += submission.items.len();
            // The items DynamoDB gave back come one per action, in the call's order: each
            // submission gets its own (a closing tells its own earlier write by them).
            let old = OldItems(
                error
                    .old_items
                    .0
                    .get(actions.clone())
                    .map(<[_]>::to_vec)
                    .unwrap_or_default(),
            );
            match verdict(&reasons[actions], old) {
                Verdict::Answer(answer) => {
                    let _ = submission.reply.send(answer);
                }
                Verdict::SendAgain => again.push(submission),
            }
        }
        again
    }
}

/// Sends `request` (a shared call, its token kept), asking again with the same token, after
/// growing pauses, while DynamoDB says the call is still being applied (a new token could
/// find the call's own writes and fail their conditions) or throttles it (past the
/// client's own retries), unless every caller has stopped waiting (`abandoned`: a run cut
/// off by its host; nothing is sent on its behalf later).
async fn send_while_held_up(
    client: &Client,
    request: &Request,
    abandoned: impl Fn() -> bool,
) -> Result<(), DynamoError> {
    let mut attempt = 0;
    loop {
        match client
            .send_kept(Operation::TransactWriteItems, request)
            .await
        {
            Ok(_) => return Ok(()),
            Err(error) if error.is_held_up() && attempt < HELD_UP_RETRIES && !abandoned() => {
                crate::store::contention_pause(attempt).await;
                attempt += 1;
                if abandoned() {
                    return Err(error);
                }
            }
            Err(error) => return Err(error),
        }
    }
}

/// How often a shared call still held up is asked again.
const HELD_UP_RETRIES: u32 = 8;

/// Sends each submission in a call of its own, and answers it.
async fn send_each(client: &Client, batch: Vec<Submission>) {
    let answers = futures_util::future::join_all(
        batch
            .iter()
            .map(|submission| send_transaction(client, submission.items.clone(), request_token())),
    )
    .await;
    for (submission, answer) in batch.into_iter().zip(answers) {
        let _ = submission.reply.send(answer);
    }
}

/// A sender's place among the `max_in_flight`, given back even if its task is dropped
/// mid-call (a panic, a runtime shutting down), so later submissions still find one.
struct SenderSlot<'a> {
    group: &'a GroupCommit,
    given_back: bool,
}

impl Drop for SenderSlot<'_> {
    fn drop(&mut self) {
        if !self.given_back {
            let mut queue = self.group.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.in_flight -= 1;
        }
    }
}

/// Takes the submissions that fit in one call, in order, skipping (and leaving waiting)
/// those that touch an item already in it.
fn take_batch(waiting: &mut VecDeque<Submission>) -> Vec<Submission> {
    let mut batch = Vec::new();
    let mut actions = 0;
    let mut keys: HashSet<ItemKey> = HashSet::new();
    let mut left = VecDeque::new();
    while let Some(submission) = waiting.pop_front() {
        if submission.reply.is_closed() {
            // Its caller stopped waiting (a run cut off at its deadline): it decided what
            // an unknown outcome means; nothing is written on its behalf later.
            continue;
        }
        let fits = actions + submission.items.len() <= MAX_ACTIONS
            && submission.keys.iter().all(|key| !keys.contains(key));
        if fits {
            actions += submission.items.len();
            keys.extend(submission.keys.iter().cloned());
            batch.push(submission);
        } else {
            left.push_back(submission);
        }
        if actions == MAX_ACTIONS {
            break;
        }
    }
    left.extend(waiting.drain(..));
    *waiting = left;
    batch
}

/// The cancellation reason codes, one per action (`None` for an action that was fine),
/// when the call was cancelled.
fn reasons_per_action(error: &DynamoError) -> Option<Vec<String>> {
    if !error.is_transaction_cancelled() || error.cancellation_reasons.is_empty() {
        return None;
    }
    Some(error.cancellation_reasons.clone())
}

enum Verdict {
    Answer(Result<Attempt, StoreError>),
    SendAgain,
}

/// What a submission's own actions' reasons mean for it, `old` the items its actions gave
/// back.
fn verdict(codes: &[String], old: OldItems) -> Verdict {
    if codes.iter().any(|code| code == "ConditionalCheckFailed") {
        return Verdict::Answer(Ok(Attempt::ConditionFailed(old)));
    }
    if codes.iter().any(|code| {
        matches!(
            code.as_str(),
            "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
        )
    }) {
        return Verdict::Answer(Ok(Attempt::Conflict));
    }
    match codes.iter().find(|code| code.as_str() != "None") {
        Some(code) => Verdict::Answer(Err(StoreError::Unavailable(format!(
            "the transaction was refused: {code}"
        )))),
        None => Verdict::SendAgain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::AttributeValue;

    fn put(pk: &str, sk: &str) -> TransactWriteItem {
        TransactWriteItem::Put(Request::on("t").item(std::collections::HashMap::from([
            ("pk".to_string(), AttributeValue::S(pk.into())),
            ("sk".to_string(), AttributeValue::S(sk.into())),
        ])))
    }

    fn update(pk: &str, sk: &str) -> TransactWriteItem {
        TransactWriteItem::Update(Request::on("t").key(pk, sk).update_expression("SET a = :a"))
    }

    /// A submission whose caller waits for its answer (forever: the receiver is leaked).
    fn submission(items: Vec<TransactWriteItem>) -> Submission {
        let keys = items.iter().map(|item| item.key().unwrap()).collect();
        let (reply, answer) = oneshot::channel();
        std::mem::forget(answer);
        Submission { items, keys, reply }
    }

    /// A submission refused inside a shared call gets the items its own actions gave back
    /// (a closing recognises its own earlier write by them), not an empty answer.
    #[test]
    fn a_refused_submission_gets_its_own_old_items() {
        let file = std::collections::HashMap::from([(
            "closingToken".to_string(),
            AttributeValue::S("t1".into()),
        )]);
        let codes = ["ConditionalCheckFailed".to_string(), "None".to_string()];
        let old = OldItems(vec![Some(file.clone()), None]);
        match verdict(&codes, old) {
            Verdict::Answer(Ok(Attempt::ConditionFailed(old))) => {
                assert_eq!(old.get(0), Some(&file));
            }
            _ => panic!("a failed condition"),
        }
    }

    #[test]
    fn a_submission_its_caller_stopped_waiting_for_is_not_sent() {
        let keys = vec![("FILE#gone".to_string(), "FILE".to_string())];
        let abandoned = Submission {
            items: vec![update("FILE#gone", "FILE")],
            keys,
            reply: oneshot::channel().0,
        };
        let mut waiting =
            VecDeque::from([abandoned, submission(vec![update("FILE#kept", "FILE")])]);
        let batch = take_batch(&mut waiting);
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].keys[0].0, "FILE#kept");
        assert!(waiting.is_empty());
    }

    #[test]
    fn every_kind_of_action_has_its_key() {
        let delete = TransactWriteItem::Delete(Request::on("t").key("p", "s"));
        for item in [put("p", "s"), update("p", "s"), delete] {
            assert_eq!(item.key(), Some(("p".into(), "s".into())));
        }
    }

    #[test]
    fn two_submissions_on_one_item_never_share_a_call() {
        let mut waiting = VecDeque::from([
            submission(vec![update("FILE#a", "FILE"), put("FILE#a", "EVENT#2")]),
            submission(vec![update("FILE#b", "FILE")]),
            submission(vec![update("FILE#a", "FILE")]),
            submission(vec![update("FILE#c", "FILE")]),
        ]);
        let batch = take_batch(&mut waiting);
        let firsts: Vec<String> = batch.iter().map(|s| s.keys[0].0.clone()).collect();
        assert_eq!(firsts, ["FILE#a", "FILE#b", "FILE#c"]);
        assert_eq!(waiting.len(), 1, "the second write of FILE#a waits");
        assert_eq!(waiting[0].keys[0].0, "FILE#a");
        let next = take_batch(&mut waiting);
        assert_eq!(next.len(), 1);
        assert!(waiting.is_empty());
    }

    #[test]
    fn a_call_holds_at_most_a_hundred_actions_and_keeps_the_order() {
        let mut waiting: VecDeque<Submission> = (0..30)
            .map(|n| {
                let pk = format!("FILE#{n}");
                submission(vec![
                    update(&pk, "FILE"),
                    put(&pk, "EVENT#2"),
                    update(&pk, "EVENT#1"),
                    put(&format!("OUTBOX#{n}"), "OUTBOX"),
                ])
            })
            .collect();
        let batch = take_batch(&mut waiting);
        assert_eq!(batch.len(), 25);
        assert_eq!(batch[0].keys[0].0, "FILE#0");
        assert_eq!(batch[24].keys[0].0, "FILE#24");
        assert_eq!(waiting.len(), 5);
        assert_eq!(waiting[0].keys[0].0, "FILE#25");
    }

    #[test]
    fn each_submission_is_told_its_own_reason() {
        let codes = |list: &[&str]| list.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        assert!(matches!(
            verdict(
                &codes(&["None", "ConditionalCheckFailed"]),
                OldItems::default()
            ),
            Verdict::Answer(Ok(Attempt::ConditionFailed(_)))
        ));
        assert!(matches!(
            verdict(
                &codes(&["TransactionConflict", "None"]),
                OldItems::default()
            ),
            Verdict::Answer(Ok(Attempt::Conflict))
        ));
        assert!(matches!(
            verdict(&codes(&["None", "None"]), OldItems::default()),
            Verdict::SendAgain
        ));
        assert!(matches!(
            verdict(&codes(&["ValidationError"]), OldItems::default()),
            Verdict::Answer(Err(StoreError::Unavailable(_)))
        ));
    }
}
