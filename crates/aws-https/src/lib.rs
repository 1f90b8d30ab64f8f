//! The HTTPS client behind every AWS SDK client in this workspace: the SDK's own hyper 1
//! client, with rustls on `ring` instead of the SDK default's `aws-lc-rs`.
//!
//! Why not the default: `aws-lc-rs` is a C library whose build script was the longest single
//! step of a fresh build (30 s of CPU in a 3-minute `cargo build -p promote -p gateway` on 2
//! cores), and it sits before every SDK crate, so nothing else could overlap it. The SDK
//! crates' `rustls` feature, the other way to pick a client, builds a second, legacy stack
//! (hyper 0.14, rustls 0.21). `ring` is rustls' other supported provider and speaks every
//! cipher suite AWS endpoints offer. The client otherwise behaves as the default one: the
//! connector honours the SDK's timeouts and sleep, and the standard proxy variables.

use aws_config::meta::region::RegionProviderChain;
use aws_config::provider_config::ProviderConfig;
use aws_config::{BehaviorVersion, ConfigLoader, Region};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder, ConnectorBuilder};

pub use aws_config::SdkConfig;
pub use aws_types::sdk_config::SharedHttpClient;

/// The workspace's HTTPS client for `SdkConfig::builder().http_client(..)` and loaders.
pub fn client() -> SharedHttpClient {
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector =
            ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::Ring));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// `aws_config::defaults` (the standard environment: region, credentials, endpoint) with
/// this client: what every binary loads its configuration from.
pub fn defaults() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).http_client(client())
}

/// The SDK's default region chain (environment, profile, then the instance metadata service),
/// then `fallback`. `RegionProviderChain::default_provider()` would build its metadata client
/// with the SDK's default HTTP client, which this workspace does not compile in: it panics.
pub fn region_or(fallback: Region) -> RegionProviderChain {
    let config = ProviderConfig::default().with_http_client(client());
    RegionProviderChain::first_try(
        aws_config::environment::EnvironmentVariableRegionProvider::new(),
    )
    .or_else(
        aws_config::profile::ProfileFileRegionProvider::builder()
            .configure(&config)
            .build(),
    )
    .or_else(
        aws_config::imds::region::ImdsRegionProvider::builder()
            .configure(&config)
            .build(),
    )
    .or_else(fallback)
}
