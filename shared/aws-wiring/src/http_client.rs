//! The HTTP client of AWS calls: reqwest on the functions' one TLS configuration
//! ([`intent_client::tls_client_config`], webpki roots compiled in), for the calls signed
//! by hand and (operator's command and tests only, feature `full-chain`) as the SDK
//! clients' HTTP client. The SDK's own default client would scan the OS certificate store
//! at its first connection and link a second HTTP/TLS stack; this one shares Intent's.

#[cfg(feature = "full-chain")]
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
#[cfg(feature = "full-chain")]
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
#[cfg(feature = "full-chain")]
use aws_smithy_runtime_api::client::result::ConnectorError;
#[cfg(feature = "full-chain")]
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
#[cfg(feature = "full-chain")]
use aws_smithy_types::body::SdkBody;
use std::time::Duration;

/// How long a connection may take to open, unless the SDK says otherwise.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

#[cfg(feature = "full-chain")]
#[derive(Debug, Clone)]
struct ReqwestClient {
    client: reqwest::Client,
}

#[cfg(feature = "full-chain")]
/// Builds the SDK's HTTP client (once per execution environment: it owns the pool).
pub fn sdk_http_client() -> Result<SharedHttpClient, String> {
    Ok(SharedHttpClient::new(ReqwestClient {
        client: aws_reqwest_client()?,
    }))
}

/// A reqwest client for AWS calls, on the functions' TLS configuration. Built per caller,
/// never shared through a global: a pool is tied to the runtime that opened its
/// connections (the tests run many runtimes in one process).
pub fn aws_reqwest_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(intent_client::tls_client_config()?)
        // AWS answers are read as they come (a 200 MB object is streamed): no total
        // timeout here, the SDK's own operation timeouts apply; a stalled read is cut.
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(Duration::from_secs(60))
        .pool_idle_timeout(Duration::from_secs(50))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("HTTP client set-up: {e}"))
}

#[cfg(feature = "full-chain")]
impl HttpClient for ReqwestClient {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

#[cfg(feature = "full-chain")]
impl HttpConnector for ReqwestClient {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client.clone();
        HttpConnectorFuture::new(async move {
            let request = request
                .try_into_http1x()
                .map_err(|e| ConnectorError::user(e.into()))?;
            let (parts, body) = request.into_parts();
            let response = client
                .request(parts.method, parts.uri.to_string())
                .version(parts.version)
                .headers(parts.headers)
                .body(reqwest::Body::wrap(body))
                .send()
                .await
                .map_err(connector_error)?;
            let response: http::Response<reqwest::Body> = response.into();
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

#[cfg(feature = "full-chain")]
/// Timeouts and connection failures are transient for the SDK's retries; the rest is not.
fn connector_error(error: reqwest::Error) -> ConnectorError {
    if error.is_timeout() {
        ConnectorError::timeout(error.into())
    } else if error.is_connect() || error.is_request() || error.is_body() {
        ConnectorError::io(error.into())
    } else {
        ConnectorError::other(error.into(), None)
    }
}
