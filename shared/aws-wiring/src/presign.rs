//! Partners' quitus uploads: a presigned S3 `PUT` URL, signed here with the SDK's own
//! SigV4 crate, without an S3 client.
//!
//! Why not `aws-sdk-s3`'s presigner: signing is local work (no request), but linking the
//! S3 client for it brought the S3 SDK, its endpoint rules and its checksum code into the
//! partner functions: 1.25 MB of claim-intake's x86_64 binary (7.07 → 5.82 MB when it
//! stopped linking it). The URL is the one the SDK's presigner makes for the same inputs,
//! query parameter for parameter (`x-id=PutObject`, the `X-Amz-*` ones, the signature):
//! `tests/tests/system/quitus_upload.rs` compares the two at the same instant, for a key
//! with spaces and accents, path-style and virtual-hosted.

use aws_signing::{S3Endpoint, query_value, s3_signing_settings};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, sign};
use aws_sigv4::sign::v4;
use aws_types::SdkConfig;
use oncall_domain::ports::PresignedUpload;
use std::time::{Duration, SystemTime};

/// SigV4's limit for a presigned URL.
const MAX_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// The content type every upload must declare (part of the signature).
const PDF: &str = "application/pdf";

/// Signs uploads to one bucket.
#[derive(Clone, Debug)]
pub struct S3UploadSigner {
    bucket: String,
    s3: S3Endpoint,
}

impl S3UploadSigner {
    /// For `bucket`, in the region and with the credentials of `sdk`, at its S3 endpoint
    /// override if it has one; `force_path_style` puts the bucket in the path (the
    /// emulators) instead of the host name.
    pub fn new(sdk: &SdkConfig, bucket: &str, force_path_style: bool) -> Result<Self, String> {
        Ok(Self {
            bucket: bucket.to_string(),
            s3: S3Endpoint::new(sdk, force_path_style, "to sign uploads with")?,
        })
    }

    /// A `PUT` of exactly `size` bytes of `application/pdf` to `key`, once (`If-None-Match:
    /// *`), valid for `lifetime` from `at`.
    pub async fn presign_put(
        &self,
        key: &str,
        size: u64,
        lifetime: Duration,
        at: SystemTime,
    ) -> Result<PresignedUpload, String> {
        if lifetime > MAX_LIFETIME {
            return Err(format!(
                "an upload URL is valid at most 7 days, not {} s",
                lifetime.as_secs()
            ));
        }
        let signing = self.s3.signing();
        let identity = signing.identity("to sign the upload").await?;
        let mut settings = s3_signing_settings();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(lifetime);
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&signing.region)
            .name("s3")
            .time(at)
            .settings(settings)
            .build()
            .map_err(|e| format!("signing the upload: {e}"))?
            .into();
        let url = format!("{}?x-id=PutObject", self.s3.object_url(&self.bucket, key)?);
        let length = size.to_string();
        // `If-None-Match: *`: the key is written once. A PUT sent again (a client's retry
        // after a timeout, a double click) is refused with 412 instead of making a second
        // version, which would be forwarded to Intent as a second quitus.
        let headers = [
            ("content-length", length.as_str()),
            ("content-type", PDF),
            ("if-none-match", "*"),
        ];
        let signable = SignableRequest::new(
            "PUT",
            url.as_str(),
            headers.iter().copied(),
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| format!("signing the upload: {e}"))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| format!("signing the upload: {e}"))?
            .into_parts();
        let mut signed = url;
        for (name, value) in instructions.params() {
            signed.push('&');
            signed.push_str(name);
            signed.push('=');
            signed.push_str(&query_value(value));
        }
        Ok(PresignedUpload {
            method: "PUT".into(),
            url: signed,
            headers: headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;
    use aws_credential_types::provider::SharedCredentialsProvider;
    use aws_types::region::Region;

    fn signer() -> S3UploadSigner {
        let sdk = SdkConfig::builder()
            .region(Region::new("eu-west-3"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKIA", "secret", None, None, "test",
            )))
            .build();
        S3UploadSigner::new(&sdk, "documents", false).unwrap()
    }

    #[tokio::test]
    async fn an_upload_url_is_valid_seven_days_at_most() {
        let week = Duration::from_secs(7 * 24 * 3600);
        let signed = signer()
            .presign_put("quitus/a.pdf", 10, week, SystemTime::now())
            .await
            .unwrap();
        assert!(
            signed.url.contains("X-Amz-Expires=604800"),
            "{}",
            signed.url
        );
        let error = signer()
            .presign_put(
                "quitus/a.pdf",
                10,
                week + Duration::from_secs(1),
                SystemTime::now(),
            )
            .await
            .unwrap_err();
        assert!(error.contains("7 days"), "{error}");
    }
}
