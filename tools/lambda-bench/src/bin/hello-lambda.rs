//! The floor `lambda-bench` compares the functions with: the smallest `lambda_runtime`
//! binary there is (tokio's single-threaded runtime, as the functions use it), echoing its
//! event back.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

// One thread, as the functions (see their `main.rs`).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(event.payload)
    }))
    .await
}
