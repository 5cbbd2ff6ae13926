//! The `SdkConfig` of a Lambda function, read from the environment Lambda sets (region,
//! the execution role's credentials, and the standard `AWS_ENDPOINT_URL[_SERVICE]`
//! overrides the emulators use), without `aws-config`'s provider chains: no profile files
//! to look for, no web-identity or container providers to build, and none of their code
//! in the binary. Part of a start near the floor and a small binary (issue 12).

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_types::SdkConfig;
use aws_types::region::Region;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};

/// `AWS_ENDPOINT_URL_{SERVICE}` then `AWS_ENDPOINT_URL`, as the SDK documents them.
#[derive(Debug)]
struct EndpointOverrides {
    lookup: fn(&str) -> Option<String>,
}

impl LoadServiceConfig for EndpointOverrides {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        let service = key
            .service_id()
            .to_ascii_uppercase()
            .replace([' ', '-'], "_");
        (self.lookup)(&format!("{}_{service}", key.env()))
            .or_else(|| (self.lookup)(key.env()))
            .filter(|value| !value.trim().is_empty())
    }
}

fn from_process(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// A function started without the variables Lambda always sets.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "the AWS configuration is incomplete: {} not set (Lambda sets them for the function's role)",
    .missing.join(", ")
)]
pub struct MissingLambdaEnvironment {
    pub missing: Vec<&'static str>,
}

/// The configuration from `lookup`'s variables: a region and the role's credentials. No
/// HTTP client, sleep or time source: no SDK client is built from it (every call is
/// signed by hand, see `aws-signing`), only what signing needs is read from it.
pub(crate) fn from_environment(
    lookup: fn(&str) -> Option<String>,
) -> Result<SdkConfig, MissingLambdaEnvironment> {
    let region = lookup("AWS_REGION").or_else(|| lookup("AWS_DEFAULT_REGION"));
    let access_key = lookup("AWS_ACCESS_KEY_ID");
    let secret_key = lookup("AWS_SECRET_ACCESS_KEY");
    let (Some(region), Some(access_key), Some(secret_key)) = (region, access_key, secret_key)
    else {
        let missing = [
            (
                "AWS_REGION",
                lookup("AWS_REGION").or_else(|| lookup("AWS_DEFAULT_REGION")),
            ),
            ("AWS_ACCESS_KEY_ID", lookup("AWS_ACCESS_KEY_ID")),
            ("AWS_SECRET_ACCESS_KEY", lookup("AWS_SECRET_ACCESS_KEY")),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.is_none().then_some(name))
        .collect();
        return Err(MissingLambdaEnvironment { missing });
    };
    let credentials = Credentials::new(
        access_key,
        secret_key,
        lookup("AWS_SESSION_TOKEN"),
        None,
        "lambda-environment",
    );
    let mut builder = SdkConfig::builder()
        .region(Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .service_config(EndpointOverrides { lookup });
    if let Some(url) = lookup("AWS_ENDPOINT_URL") {
        builder = builder.endpoint_url(url);
    }
    Ok(builder.build())
}

/// [`from_environment`] on the process's variables.
pub(crate) fn from_process_environment() -> Result<SdkConfig, MissingLambdaEnvironment> {
    from_environment(from_process)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lambda(name: &str) -> Option<String> {
        match name {
            "AWS_REGION" => Some("eu-west-3".into()),
            "AWS_ACCESS_KEY_ID" => Some("AKIA".into()),
            "AWS_SECRET_ACCESS_KEY" => Some("secret".into()),
            "AWS_SESSION_TOKEN" => Some("token".into()),
            "AWS_ENDPOINT_URL_DYNAMODB" => Some("http://127.0.0.1:8000".into()),
            _ => None,
        }
    }

    fn nothing(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn lambdas_variables_make_the_configuration() {
        let config = from_environment(lambda).expect("a configuration");
        assert_eq!(config.region().map(|r| r.as_ref()), Some("eu-west-3"));
        assert!(config.credentials_provider().is_some());
        let overrides = config.service_config().unwrap();
        let key = |service| {
            ServiceConfigKey::builder()
                .service_id(service)
                .env("AWS_ENDPOINT_URL")
                .profile("endpoint_url")
                .build()
                .unwrap()
        };
        assert_eq!(
            overrides.load_config(key("DynamoDB")).as_deref(),
            Some("http://127.0.0.1:8000")
        );
        assert_eq!(overrides.load_config(key("EventBridge")), None);
        assert_eq!(
            from_environment(nothing).unwrap_err().missing,
            ["AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
        );
        fn no_secret(name: &str) -> Option<String> {
            (name != "AWS_SECRET_ACCESS_KEY")
                .then(|| lambda(name))
                .flatten()
        }
        let error = from_environment(no_secret).unwrap_err();
        assert_eq!(error.missing, ["AWS_SECRET_ACCESS_KEY"]);
        assert!(error.to_string().contains("AWS_SECRET_ACCESS_KEY not set"));
    }
}
