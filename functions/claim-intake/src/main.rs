use partner_lambda::{NoUploads, Route};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    partner_lambda::run::<NoUploads>(&[Route::OpenIntervention, Route::GetIntervention]).await
}
