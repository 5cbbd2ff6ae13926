//! S3's REST protocol: an object's URL as the SDK builds it, and requests without a body
//! (`GET`, `HEAD`) signed in their headers.

use crate::context::SigningContext;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_types::SdkConfig;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::time::SystemTime;

/// What S3 leaves unescaped in an object key's path: RFC 3986's unreserved characters and
/// the `/` between segments.
const KEY_PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// A query parameter's value: everything but the unreserved characters escaped.
const QUERY_VALUE: &AsciiSet = &KEY_PATH.add(b'/');

/// `value` escaped for a query string, as SigV4 and S3 expect it.
pub fn query_value(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// SigV4 as S3 wants it: the path escaped once and never normalised.
pub fn s3_signing_settings() -> SigningSettings {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings
}

/// S3 in one region, with one set of credentials.
#[derive(Debug, Clone)]
pub struct S3Endpoint {
    signing: SigningContext,
    force_path_style: bool,
}

impl S3Endpoint {
    /// S3 in the region of `sdk`, with its credentials, at its S3 endpoint override if it
    /// has one (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`); `force_path_style` puts the
    /// bucket in the path (the emulators) instead of the host name. `purpose` completes
    /// the error messages ("to sign uploads with").
    pub fn new(sdk: &SdkConfig, force_path_style: bool, purpose: &str) -> Result<Self, String> {
        Ok(Self {
            signing: SigningContext::of(sdk, "S3", purpose)?,
            force_path_style,
        })
    }

    pub fn signing(&self) -> &SigningContext {
        &self.signing
    }

    /// The object's URL, its key escaped as S3 expects (the SDK's URL for the same inputs).
    pub fn object_url(&self, bucket: &str, key: &str) -> Result<String, String> {
        let key = utf8_percent_encode(key, KEY_PATH).to_string();
        // A bucket name with dots is not a valid TLS host label: path-style, as the SDK.
        let path_style = self.force_path_style || bucket.contains('.');
        Ok(match &self.signing.endpoint_override {
            Some(endpoint) if path_style => format!("{endpoint}/{bucket}/{key}"),
            Some(endpoint) => {
                let (scheme, host) = endpoint
                    .split_once("://")
                    .ok_or_else(|| format!("the S3 endpoint {endpoint} has no scheme"))?;
                format!("{scheme}://{bucket}.{host}/{key}")
            }
            None => {
                let region = &self.signing.region;
                let suffix = self.signing.dns_suffix();
                if path_style {
                    format!("https://s3.{region}.{suffix}/{bucket}/{key}")
                } else {
                    format!("https://{bucket}.s3.{region}.{suffix}/{key}")
                }
            }
        })
    }

    /// The headers that sign a bodiless `method` request of `url` carrying `headers`
    /// (which are signed too): `authorization`, `x-amz-date`, `x-amz-content-sha256` and,
    /// with temporary credentials, `x-amz-security-token`.
    pub async fn sign_bodiless(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Vec<(String, String)>, String> {
        let identity = self.signing.identity("to read from S3").await?;
        let mut settings = s3_signing_settings();
        // The payload's hash travels in `x-amz-content-sha256`.
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.signing.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| format!("signing an S3 {method}: {e}"))?
            .into();
        let signable = SignableRequest::new(
            method,
            url,
            headers.iter().copied(),
            SignableBody::Bytes(&[]),
        )
        .map_err(|e| format!("signing an S3 {method}: {e}"))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| format!("signing an S3 {method}: {e}"))?
            .into_parts();
        Ok(instructions
            .headers()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;
    use aws_credential_types::provider::SharedCredentialsProvider;
    use aws_types::region::Region;

    fn endpoint(override_url: Option<&str>, path_style: bool) -> S3Endpoint {
        let mut sdk = SdkConfig::builder()
            .region(Region::new("eu-west-3"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKIA", "secret", None, None, "test",
            )));
        if let Some(url) = override_url {
            sdk = sdk.endpoint_url(url);
        }
        S3Endpoint::new(&sdk.build(), path_style, "to test").unwrap()
    }

    #[test]
    fn object_urls_follow_the_sdk_rules() {
        assert_eq!(
            endpoint(None, false)
                .object_url("documents", "quitus/a b#é.pdf")
                .unwrap(),
            "https://documents.s3.eu-west-3.amazonaws.com/quitus/a%20b%23%C3%A9.pdf"
        );
        assert_eq!(
            endpoint(None, false)
                .object_url("my.documents", "k")
                .unwrap(),
            "https://s3.eu-west-3.amazonaws.com/my.documents/k"
        );
        assert_eq!(
            endpoint(Some("http://127.0.0.1:5000/"), true)
                .object_url("documents", "k")
                .unwrap(),
            "http://127.0.0.1:5000/documents/k"
        );
    }

    #[tokio::test]
    async fn a_bodiless_request_is_signed_with_the_empty_payload_hash() {
        let headers = endpoint(None, false)
            .sign_bodiless(
                "GET",
                "https://documents.s3.eu-west-3.amazonaws.com/k",
                &[("range", "bytes=0-9")],
            )
            .await
            .unwrap();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            get("x-amz-content-sha256"),
            Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        let authorization = get("authorization").unwrap();
        assert!(
            authorization.contains("/eu-west-3/s3/aws4_request")
                && authorization
                    .contains("SignedHeaders=host;range;x-amz-content-sha256;x-amz-date"),
            "{authorization}"
        );
    }
}
