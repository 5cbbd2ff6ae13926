//! The floor `lambda-bench` compares the functions with: the smallest `lambda_runtime`
//! binary there is (tokio's multi-threaded runtime, as the functions use it), echoing its
//! event back.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(event.payload)
    }))
    .await
}
