//! DynamoDB spoken directly: its JSON protocol (`DynamoDB_20120810`, JSON 1.0), each call
//! signed by hand ([`aws_signing::AwsJsonService`]), instead of the SDK client.
//!
//! Why (issue 12): the SDK client's two transactions were two thirds of a warm claim's
//! instructions (its orchestrator, its serializers, its endpoint rules run per call), and
//! its construction parsed the AWS partitions document at every start (0.85 M
//! instructions, 44 % of a partner function's start). The store needs few operations and
//! few shapes: items of strings, numbers and booleans, update/condition expressions,
//! transactions with their cancellation reasons, queries with paging, batch reads and
//! deletes. Those are written here, with DynamoDB's own field names.
//!
//! What the SDK client did that is kept: retries of what may pass later (no answer, a
//! 5xx, a throttling) with backoff and jitter, a `ClientRequestToken` on every
//! `TransactWriteItems` so that a retry after a lost answer is not applied twice, and the
//! error type and message of every refusal. `tests/tests/system/signatures.rs` has moto
//! check the signature of these calls, DynamoDB Local runs every store test on them.

use aws_signing::{AwsJsonService, CallFailure};
use backon::Retryable;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// An item: its attributes by name.
pub type Item = HashMap<String, AttributeValue>;

/// One attribute value in DynamoDB's JSON (`{"S": "text"}`, `{"N": "42"}`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttributeValue {
    #[serde(rename = "S")]
    S(String),
    /// A number, as DynamoDB carries it: decimal text.
    #[serde(rename = "N")]
    N(String),
    #[serde(rename = "BOOL")]
    Bool(bool),
    #[serde(rename = "NULL")]
    Null(bool),
    #[serde(rename = "M")]
    M(HashMap<String, AttributeValue>),
    #[serde(rename = "L")]
    L(Vec<AttributeValue>),
    #[serde(rename = "SS")]
    Ss(Vec<String>),
    #[serde(rename = "NS")]
    Ns(Vec<String>),
    /// Binary, as DynamoDB carries it: base64 text (the store writes none).
    #[serde(rename = "B")]
    B(String),
    #[serde(rename = "BS")]
    Bs(Vec<String>),
}

impl AttributeValue {
    /// The text of an `S` (else the value itself, as the SDK's accessors do).
    pub fn as_s(&self) -> Result<&String, &Self> {
        match self {
            AttributeValue::S(text) => Ok(text),
            other => Err(other),
        }
    }

    /// The decimal text of an `N`.
    pub fn as_n(&self) -> Result<&String, &Self> {
        match self {
            AttributeValue::N(number) => Ok(number),
            other => Err(other),
        }
    }

    pub fn as_bool(&self) -> Result<&bool, &Self> {
        match self {
            AttributeValue::Bool(value) => Ok(value),
            other => Err(other),
        }
    }
}

/// The fields of a request (and of a transaction's actions, which take the same names):
/// only those set are sent.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Request {
    #[serde(skip_serializing_if = "Option::is_none")]
    table_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    index_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<Item>,
    #[serde(skip_serializing_if = "Option::is_none")]
    item: Option<Item>,
    #[serde(skip_serializing_if = "Option::is_none")]
    update_expression: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    condition_expression: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_condition_expression: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    projection_expression: Option<String>,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    expression_attribute_names: HashMap<String, String>,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    expression_attribute_values: Item,
    #[serde(skip_serializing_if = "Option::is_none")]
    consistent_read: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    return_values: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    return_values_on_condition_check_failure: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    select: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scan_index_forward: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exclusive_start_key: Option<Item>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    transact_items: Vec<TransactWriteItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_request_token: Option<String>,
    /// `BatchGetItem`'s and `BatchWriteItem`'s requests by table, as DynamoDB takes (and
    /// gives back unprocessed) them.
    #[serde(skip_serializing_if = "Option::is_none")]
    request_items: Option<serde_json::Value>,
}

impl Request {
    /// A request (or an action) on `table`.
    pub fn on(table: &str) -> Self {
        Self {
            table_name: Some(table.to_string()),
            ..Self::default()
        }
    }

    pub fn index_name(mut self, index: &str) -> Self {
        self.index_name = Some(index.to_string());
        self
    }

    /// The item's key: its `pk` and `sk` (every item of the table has both, as text).
    pub fn key(mut self, pk: impl Into<String>, sk: impl Into<String>) -> Self {
        self.key = Some(HashMap::from([
            ("pk".to_string(), AttributeValue::S(pk.into())),
            ("sk".to_string(), AttributeValue::S(sk.into())),
        ]));
        self
    }

    pub fn set_key(mut self, key: Item) -> Self {
        self.key = Some(key);
        self
    }

    pub fn item(mut self, item: Item) -> Self {
        self.item = Some(item);
        self
    }

    pub fn update_expression(mut self, expression: impl Into<String>) -> Self {
        self.update_expression = Some(expression.into());
        self
    }

    pub fn condition_expression(mut self, condition: impl Into<String>) -> Self {
        self.condition_expression = Some(condition.into());
        self
    }

    pub fn key_condition_expression(mut self, condition: impl Into<String>) -> Self {
        self.key_condition_expression = Some(condition.into());
        self
    }

    pub fn projection_expression(mut self, projection: impl Into<String>) -> Self {
        self.projection_expression = Some(projection.into());
        self
    }

    /// `#placeholder` stands for attribute `name` in the expressions.
    pub fn name(mut self, placeholder: &str, name: &str) -> Self {
        self.expression_attribute_names
            .insert(placeholder.to_string(), name.to_string());
        self
    }

    /// `:placeholder` stands for `value` in the expressions.
    pub fn value(mut self, placeholder: impl Into<String>, value: AttributeValue) -> Self {
        self.expression_attribute_values
            .insert(placeholder.into(), value);
        self
    }

    pub fn consistent_read(mut self) -> Self {
        self.consistent_read = Some(true);
        self
    }

    /// `ReturnValues` (`ALL_OLD`, `UPDATED_OLD`, …).
    pub fn return_values(mut self, which: &'static str) -> Self {
        self.return_values = Some(which);
        self
    }

    /// A write whose condition fails gives back the item as it is (a transaction's action
    /// in its cancellation reasons, a single write in its error): what refused the write,
    /// without reading it again.
    pub fn old_item_on_condition_failure(mut self) -> Self {
        self.return_values_on_condition_check_failure = Some("ALL_OLD");
        self
    }

    /// `Select: COUNT`: the number of matching items, not the items.
    pub fn count_only(mut self) -> Self {
        self.select = Some("COUNT");
        self
    }

    /// The first `limit` items in ascending range-key order.
    pub fn first(mut self, limit: u32) -> Self {
        self.scan_index_forward = Some(true);
        self.limit = Some(limit);
        self
    }

    pub fn transact_items(mut self, items: Vec<TransactWriteItem>) -> Self {
        self.transact_items = items;
        self
    }

    pub fn client_request_token(mut self, token: impl Into<String>) -> Self {
        self.client_request_token = Some(token.into());
        self
    }

    pub fn request_items(mut self, items: serde_json::Value) -> Self {
        self.request_items = Some(items);
        self
    }

    /// The `pk` and `sk` of the item this action is on (`Key`, or a `Put`'s item).
    pub fn item_key(&self) -> Option<(String, String)> {
        let map = self.key.as_ref().or(self.item.as_ref())?;
        let text = |name: &str| match map.get(name) {
            Some(AttributeValue::S(value)) => Some(value.clone()),
            _ => None,
        };
        Some((text("pk")?, text("sk")?))
    }
}

/// One action of a `TransactWriteItems`.
#[derive(Debug, Clone, Serialize)]
pub enum TransactWriteItem {
    Put(Request),
    Update(Request),
    Delete(Request),
    /// A condition on an item the transaction does not write.
    ConditionCheck(Request),
}

impl TransactWriteItem {
    /// The action, asking for its item as it is when its condition fails.
    pub fn old_item_on_condition_failure(self) -> Self {
        match self {
            TransactWriteItem::Put(request) => {
                TransactWriteItem::Put(request.old_item_on_condition_failure())
            }
            TransactWriteItem::Update(request) => {
                TransactWriteItem::Update(request.old_item_on_condition_failure())
            }
            TransactWriteItem::Delete(request) => {
                TransactWriteItem::Delete(request.old_item_on_condition_failure())
            }
            TransactWriteItem::ConditionCheck(request) => {
                TransactWriteItem::ConditionCheck(request.old_item_on_condition_failure())
            }
        }
    }

    /// The `pk` and `sk` of the item the action is on.
    pub fn key(&self) -> Option<(String, String)> {
        match self {
            TransactWriteItem::Put(request)
            | TransactWriteItem::Update(request)
            | TransactWriteItem::Delete(request)
            | TransactWriteItem::ConditionCheck(request) => request.item_key(),
        }
    }
}

/// What an operation answers (each fills its own fields).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    /// `GetItem`'s item.
    pub item: Option<Item>,
    /// A `Query`'s page.
    #[serde(default)]
    pub items: Vec<Item>,
    /// `UpdateItem`'s `ReturnValues`.
    pub attributes: Option<Item>,
    /// A `Query`'s count.
    #[serde(default)]
    pub count: u64,
    pub last_evaluated_key: Option<Item>,
    /// `BatchGetItem`'s items by table.
    #[serde(default)]
    pub responses: HashMap<String, Vec<Item>>,
    /// `BatchGetItem`'s keys left for another call, in its request's shape.
    pub unprocessed_keys: Option<serde_json::Value>,
    /// `BatchWriteItem`'s requests left for another call.
    pub unprocessed_items: Option<serde_json::Value>,
}

/// Why a DynamoDB call gave no answer to use.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct DynamoError {
    /// DynamoDB's error type without its namespace (`ConditionalCheckFailedException`).
    pub error_type: Option<String>,
    pub message: String,
    pub transient: bool,
    /// A cancelled transaction's reason codes, one per action in order (`None` for an
    /// action that was fine).
    pub cancellation_reasons: Vec<String>,
    /// The items as they were, for the actions that asked for them and whose condition
    /// failed, in the same order.
    pub old_items: OldItems,
}

/// Items a refused transaction gave back, by action. They hold tenants' personal data:
/// `Debug` shows only which actions have one.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OldItems(pub Vec<Option<Item>>);

impl std::fmt::Debug for OldItems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|item| item.as_ref().map(|_| "item")))
            .finish()
    }
}

impl OldItems {
    /// The item action `index` gave back.
    pub fn get(&self, index: usize) -> Option<&Item> {
        self.0.get(index).and_then(Option::as_ref)
    }
}

impl DynamoError {
    /// A conditional write refused because its condition did not hold.
    pub fn is_condition_failure(&self) -> bool {
        self.error_type.as_deref() == Some("ConditionalCheckFailedException")
    }

    fn is(&self, error_type: &str) -> bool {
        self.error_type.as_deref() == Some(error_type)
    }

    /// A `TransactWriteItems` cancelled by DynamoDB (its reasons say why).
    pub fn is_transaction_cancelled(&self) -> bool {
        self.is("TransactionCanceledException")
    }

    /// A `TransactWriteItems` with this token still being applied (the same call sent
    /// again after an attempt that timed out): asked again later, DynamoDB answers with its
    /// outcome.
    pub fn is_transaction_in_progress(&self) -> bool {
        self.is(TRANSACTION_IN_PROGRESS)
    }

    /// Held up, through no fault of the request: throttled (nothing applied), or the same
    /// `TransactWriteItems` still being applied. The same call is worth asking again.
    pub fn is_held_up(&self) -> bool {
        self.is_transaction_in_progress() || THROTTLING.iter().any(|error_type| self.is(error_type))
    }
}

/// The same `TransactWriteItems` (same token) is still being applied: the SDK's standard
/// retry mode retries it, with the same token, as a throttling.
const TRANSACTION_IN_PROGRESS: &str = "TransactionInProgressException";

/// DynamoDB's throttling refusals, answered with a 400: worth retrying.
const THROTTLING: [&str; 4] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "LimitExceededException",
];

impl From<CallFailure> for DynamoError {
    fn from(failure: CallFailure) -> Self {
        let reasons = failure
            .answer
            .as_deref()
            .and_then(|answer| answer["CancellationReasons"].as_array());
        let cancellation_reasons = reasons
            .map(|reasons| {
                reasons
                    .iter()
                    .map(|reason| reason["Code"].as_str().unwrap_or("None").to_string())
                    .collect()
            })
            .unwrap_or_default();
        let item = |value: &serde_json::Value| {
            value
                .get("Item")
                .and_then(|item| Item::deserialize(item).ok())
        };
        let old_items = OldItems(match (reasons, failure.answer.as_deref()) {
            // A transaction: one per action.
            (Some(reasons), _) => reasons.iter().map(item).collect(),
            // A single write's failed condition: its one item.
            (None, Some(answer)) if answer.get("Item").is_some() => vec![item(answer)],
            _ => Vec::new(),
        });
        let retryable = failure
            .error_type
            .as_deref()
            .is_some_and(|kind| THROTTLING.contains(&kind) || kind == TRANSACTION_IN_PROGRESS);
        DynamoError {
            transient: failure.transient || retryable,
            error_type: failure.error_type,
            message: failure.message,
            cancellation_reasons,
            old_items,
        }
    }
}

/// The operations the store calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    GetItem,
    PutItem,
    UpdateItem,
    Query,
    BatchGetItem,
    BatchWriteItem,
    TransactWriteItems,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Operation::GetItem => "GetItem",
            Operation::PutItem => "PutItem",
            Operation::UpdateItem => "UpdateItem",
            Operation::Query => "Query",
            Operation::BatchGetItem => "BatchGetItem",
            Operation::BatchWriteItem => "BatchWriteItem",
            Operation::TransactWriteItems => "TransactWriteItems",
        }
    }
}

/// How long one attempt may take (a 100-action transaction under load included).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// A random idempotency token (DynamoDB takes 1 to 36 characters).
pub fn request_token() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// `request`'s JSON body for `operation`.
fn encode(operation: Operation, request: &Request) -> Result<String, DynamoError> {
    serde_json::to_string(request).map_err(|e| DynamoError {
        error_type: None,
        message: format!("a DynamoDB {} request: {e}", operation.name()),
        transient: false,
        cancellation_reasons: Vec::new(),
        old_items: OldItems::default(),
    })
}

/// The table's service: DynamoDB in the function's region, with its credentials.
#[derive(Debug, Clone)]
pub struct DynamoDb {
    service: AwsJsonService,
}

impl DynamoDb {
    /// `service` must speak [`aws_signing::DYNAMODB`].
    pub fn new(service: AwsJsonService) -> Self {
        Self { service }
    }

    /// Where the calls go.
    pub fn endpoint(&self) -> &str {
        self.service.endpoint()
    }

    /// One call, tried again (backoff with jitter, [`aws_signing::retry_policy`]) while it
    /// fails in a way that may pass later. A `TransactWriteItems` without a token is given
    /// one, the same for its retries.
    pub async fn send(
        &self,
        operation: Operation,
        request: Request,
    ) -> Result<Output, DynamoError> {
        let request = if operation == Operation::TransactWriteItems
            && request.client_request_token.is_none()
        {
            request.client_request_token(request_token())
        } else {
            request
        };
        self.send_kept(operation, &request).await
    }

    /// [`Client::send`] of a request the caller keeps (a transaction sent again as it is
    /// after a refusal, without copying its items).
    pub async fn send_kept(
        &self,
        operation: Operation,
        request: &Request,
    ) -> Result<Output, DynamoError> {
        let body = encode(operation, request)?;
        (|| self.send_once(operation, body.clone()))
            .retry(aws_signing::retry_policy())
            .when(|error: &DynamoError| error.transient)
            .notify(|error, pause| {
                tracing::warn!(operation = operation.name(), %error, ?pause, "a DynamoDB call failed; trying again");
            })
            .await
    }

    /// One attempt, without retries.
    async fn send_once(&self, operation: Operation, body: String) -> Result<Output, DynamoError> {
        Ok(self
            .service
            .call::<Output>(operation.name(), body, ATTEMPT_TIMEOUT)
            .await?)
    }

    /// Each page of a `Query`, in order, handed to `take`.
    async fn each_page(
        &self,
        mut request: Request,
        mut take: impl FnMut(Output),
    ) -> Result<(), DynamoError> {
        loop {
            let mut page = self.send(Operation::Query, request.clone()).await?;
            let next = page.last_evaluated_key.take();
            take(page);
            match next {
                Some(next) => request.exclusive_start_key = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// Every item a `Query` matches, page after page.
    pub async fn query_all(&self, request: Request) -> Result<Vec<Item>, DynamoError> {
        let mut items = Vec::new();
        self.each_page(request, |page| items.extend(page.items))
            .await?;
        Ok(items)
    }

    /// How many items a `Query` matches, page after page.
    pub async fn count_all(&self, request: Request) -> Result<u64, DynamoError> {
        let mut count = 0;
        self.each_page(request.count_only(), |page| count += page.count)
            .await?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_transaction_is_written_in_dynamodbs_json() {
        let put = Request::on("t")
            .item(HashMap::from([
                ("pk".to_string(), AttributeValue::S("FILE#a".into())),
                ("sk".to_string(), AttributeValue::S("FILE".into())),
                ("version".to_string(), AttributeValue::N("1".into())),
                ("inDoubt".to_string(), AttributeValue::Bool(true)),
            ]))
            .condition_expression("attribute_not_exists(pk)");
        let update = Request::on("t")
            .key("FILE#a", "EVENT#000001")
            .update_expression("SET #delivery = :v")
            .condition_expression("attribute_exists(pk)")
            .name("#delivery", "delivery")
            .value(":v", AttributeValue::S("delivered".into()));
        let request = Request::default()
            .transact_items(vec![
                TransactWriteItem::Put(put),
                TransactWriteItem::Update(update),
            ])
            .client_request_token("token");
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            json!({
                "TransactItems": [
                    {"Put": {
                        "TableName": "t",
                        "Item": {
                            "pk": {"S": "FILE#a"},
                            "sk": {"S": "FILE"},
                            "version": {"N": "1"},
                            "inDoubt": {"BOOL": true}
                        },
                        "ConditionExpression": "attribute_not_exists(pk)"
                    }},
                    {"Update": {
                        "TableName": "t",
                        "Key": {"pk": {"S": "FILE#a"}, "sk": {"S": "EVENT#000001"}},
                        "UpdateExpression": "SET #delivery = :v",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeNames": {"#delivery": "delivery"},
                        "ExpressionAttributeValues": {":v": {"S": "delivered"}}
                    }}
                ],
                "ClientRequestToken": "token"
            })
        );
    }

    #[test]
    fn an_answer_is_read_with_its_pages_and_its_unprocessed_keys() {
        let output: Output = serde_json::from_value(json!({
            "Items": [{"pk": {"S": "FILE#a"}, "n": {"N": "3"}, "m": {"M": {"x": {"NULL": true}}}}],
            "Count": 1,
            "ScannedCount": 1,
            "LastEvaluatedKey": {"pk": {"S": "FILE#a"}, "sk": {"S": "FILE"}},
            "UnprocessedKeys": {"t": {"Keys": [{"pk": {"S": "b"}, "sk": {"S": "c"}}]}}
        }))
        .unwrap();
        assert_eq!(output.items.len(), 1);
        assert_eq!(output.items[0]["n"].as_n().unwrap(), "3");
        assert_eq!(output.count, 1);
        assert!(output.last_evaluated_key.is_some());
        assert_eq!(
            output.unprocessed_keys.unwrap()["t"]["Keys"][0]["pk"]["S"],
            "b"
        );
    }

    #[test]
    fn a_cancelled_transaction_gives_one_reason_per_action() {
        let failure = CallFailure {
            error_type: Some("TransactionCanceledException".into()),
            message: "cancelled".into(),
            transient: false,
            answer: Some(Box::new(json!({
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "CancellationReasons": [
                    {"Code": "None"},
                    {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed",
                     "Item": {"pk": {"S": "FILE#a"}, "phone": {"S": "06 12 34 56 78"}}}
                ]
            }))),
        };
        let error = DynamoError::from(failure);
        assert!(error.is_transaction_cancelled());
        assert_eq!(
            error.cancellation_reasons,
            ["None", "ConditionalCheckFailed"]
        );
        assert!(!error.transient);
        assert!(error.old_items.get(0).is_none());
        assert_eq!(
            error.old_items.get(1).unwrap()["pk"].as_s().unwrap(),
            "FILE#a"
        );
        let shown = format!("{error:?}");
        assert!(!shown.contains("06 12"), "{shown}");
    }

    fn failure(error_type: Option<&str>, transient: bool) -> DynamoError {
        DynamoError::from(CallFailure {
            error_type: error_type.map(str::to_string),
            message: "refused".into(),
            transient,
            answer: None,
        })
    }

    #[test]
    fn a_single_writes_failed_condition_gives_its_item_back() {
        let error = DynamoError::from(CallFailure {
            error_type: Some("ConditionalCheckFailedException".into()),
            message: "The conditional request failed".into(),
            transient: false,
            answer: Some(Box::new(json!({
                "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
                "message": "The conditional request failed",
                "Item": {"pk": {"S": "FILE#a"}, "sendingBy": {"S": "me"}}
            }))),
        });
        assert!(error.is_condition_failure());
        assert_eq!(
            error.old_items.get(0).unwrap()["sendingBy"].as_s().unwrap(),
            "me"
        );
    }

    #[test]
    fn what_may_pass_later_is_transient_and_a_refusal_is_not() {
        // A throttling (DynamoDB answers it with a 400): retried.
        let throttled = failure(Some("ProvisionedThroughputExceededException"), false);
        assert!(throttled.transient);
        // The same transaction still being applied (a 400 too): retried with its token.
        let in_progress = failure(Some("TransactionInProgressException"), false);
        assert!(in_progress.transient);
        assert!(in_progress.is_transaction_in_progress());
        // No answer, or a 5xx (it may have been applied): retried, with its token.
        assert!(failure(None, true).transient);
        assert!(failure(Some("InternalServerError"), true).transient);
        // A refusal: not retried.
        let refused = failure(Some("ConditionalCheckFailedException"), false);
        assert!(!refused.transient);
        let cancelled = failure(Some("TransactionCanceledException"), false);
        assert!(!cancelled.transient);
    }

    #[test]
    fn every_action_names_its_item() {
        let key = Some(("p".to_string(), "s".to_string()));
        let put = Request::on("t").item(HashMap::from([
            ("pk".to_string(), AttributeValue::S("p".into())),
            ("sk".to_string(), AttributeValue::S("s".into())),
        ]));
        assert_eq!(TransactWriteItem::Put(put).key(), key);
        for action in [
            TransactWriteItem::Update(Request::on("t").key("p", "s")),
            TransactWriteItem::Delete(Request::on("t").key("p", "s")),
        ] {
            assert_eq!(action.key(), key);
        }
    }
}
