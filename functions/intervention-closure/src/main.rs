use partner_lambda::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    partner_lambda::run(&[Route::CloseIntervention, Route::RequestDocumentUpload]).await
}
