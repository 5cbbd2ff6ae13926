use partner_lambda::{BucketUploads, Route};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    partner_lambda::run::<BucketUploads>(&[Route::CloseIntervention, Route::RequestDocumentUpload])
        .await
}
