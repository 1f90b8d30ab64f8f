//! SDK clients pointed at the emulator, with dummy credentials and bounded calls: what the
//! tests read back (aliases, alarms, metrics) independently of the code under test.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_lambda::config::{Credentials, SharedCredentialsProvider};

use crate::moto::Moto;

/// A runtime to drive them from synchronous tests, and the clients.
pub struct Sdk {
    pub rt: tokio::runtime::Runtime,
    pub lambda: aws_sdk_lambda::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

impl Sdk {
    pub fn new(moto: &Moto, region: &str) -> Sdk {
        let config = config(moto, region);
        Sdk {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime"),
            lambda: aws_sdk_lambda::Client::new(&config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
        }
    }
}

/// The shared SDK configuration for clients on `moto`.
pub fn config(moto: &Moto, region: &str) -> SdkConfig {
    let credentials = Credentials::new("testing", "testing", None, None, "integration-test");
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(aws_https::client())
        .region(Region::new(region.to_string()))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .endpoint_url(&moto.endpoint)
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(20))
                .connect_timeout(Duration::from_secs(2))
                .build(),
        )
        .build()
}
