use partner_lambda::Route;

// One thread: Lambda hands an environment one event at a time, and a second worker only
// adds the wake-ups between threads each awaited answer costs (lambda-bench, issue 12).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    partner_lambda::run(&[Route::OpenIntervention, Route::GetIntervention]).await
}
