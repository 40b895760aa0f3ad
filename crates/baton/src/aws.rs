//! SDK configuration shared by the Lambdas, the worker and the tools.

use aws_config::{BehaviorVersion, SdkConfig};

/// Load the standard AWS configuration (environment, profile, container and
/// instance credentials; `AWS_ENDPOINT_URL` honoured as every SDK does).
pub async fn load_config() -> SdkConfig {
    aws_config::load_defaults(BehaviorVersion::latest()).await
}

/// Is the S3 endpoint overridden (a local emulator, a VPC endpoint URL)?
fn s3_endpoint_overridden(config: &SdkConfig) -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty());
    config.endpoint_url().is_some() || set("AWS_ENDPOINT_URL") || set("AWS_ENDPOINT_URL_S3")
}

/// An S3 client; path-style addressing when the endpoint is overridden, since
/// `bucket.localhost` and similar virtual hosts do not resolve.
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(s3_endpoint_overridden(config))
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}
