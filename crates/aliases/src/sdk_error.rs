//! An AWS SDK error as one readable line: the SDK's outer layers say only which layer failed
//! ("service error", "dispatch failure"); the causes say why. Every adapter's messages use
//! it (promote's for every service, this crate's for Lambda's aliases).

use anyhow::anyhow;
use aws_sdk_lambda::config::http::HttpResponse;
use aws_sdk_lambda::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// The error and its causes, joined, without the SDK's layer names and debug dumps.
pub fn concise(e: &(dyn std::error::Error + 'static)) -> String {
    // The SDK's outer layers say only which layer failed; the causes say why.
    const LAYERS: [&str; 5] = [
        "service error",
        "dispatch failure",
        "io error",
        "unhandled error",
        "other",
    ];
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        let readable = !text.is_empty()
            && !LAYERS.contains(&text.as_str())
            && !text.contains(" { ")
            && text.len() <= 300;
        if readable && !parts.iter().any(|p| p.contains(text.as_str())) {
            parts.push(text);
        }
        cur = err.source();
    }
    if parts.is_empty() {
        return e.to_string();
    }
    parts.join(": ")
}

/// An SDK error as one readable line: the chain of causes, without the SDK's debug
/// structures (`DispatchFailure(DispatchFailure { source: ConnectorError { ... } })`), which
/// stay in the `-vv` log. Three failures say what was tried and what to do instead: no
/// credentials, an endpoint that cannot be reached, and an endpoint answering 5xx (whose body
/// the SDK may fail to parse, as moto's 500 to a percentile: "error parsing XML").
pub fn sdk_err<E: std::error::Error + 'static>(
    at: &Endpoint<'_>,
    call: &str,
    e: SdkError<E, HttpResponse>,
) -> anyhow::Error {
    tracing::debug!(error = %DisplayErrorContext(&e), call, "AWS call failed");
    let detail = concise(&e);
    let endpoint = at.url();
    if CREDENTIAL_ERRORS.iter().any(|c| detail.contains(c)) {
        return anyhow!(
            "{call}: no AWS credentials found ({detail}); the SDK tried the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), AWS_PROFILE and the shared config files, web identity and container/instance metadata. Export credentials or a profile; for the local emulator, the exports `make demo-up` printed"
        );
    }
    match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => anyhow!(
            "{call}: could not reach the endpoint {endpoint} ({detail}); check AWS_ENDPOINT_URL and AWS_REGION (for the local emulator, the exports `make demo-up` printed)"
        ),
        _ => match e.raw_response().map(|r| r.status().as_u16()) {
            Some(status) if status >= 500 => {
                anyhow!("{call}: the endpoint {endpoint} answered HTTP {status} ({detail})")
            }
            _ => anyhow!("{call}: {detail}"),
        },
    }
}

/// How aws-credential-types' CredentialsError displays (that crate is not a dependency of
/// ours, so its type cannot be matched).
const CREDENTIAL_ERRORS: [&str; 3] = [
    "the credential provider was not enabled",
    "an error occurred while loading credentials",
    "credentials provider timed out",
];

/// Which endpoint a call went to, for messages: AWS_ENDPOINT_URL when set, else the service's
/// regional AWS endpoint.
pub struct Endpoint<'a> {
    configured: Option<&'a str>,
    host: &'static str,
    region: &'a str,
}

impl<'a> Endpoint<'a> {
    /// `configured`: AWS_ENDPOINT_URL (or the profile's endpoint_url); `host`: the
    /// service's endpoint prefix (`lambda`, `apigateway`, `monitoring`).
    pub fn new(configured: Option<&'a str>, host: &'static str, region: &'a str) -> Self {
        Endpoint {
            configured,
            host,
            region,
        }
    }

    fn url(&self) -> String {
        match self.configured {
            Some(url) => url.to_string(),
            None => format!("https://{}.{}.amazonaws.com", self.host, self.region),
        }
    }
}

/// Errors after which the request may or may not have been applied, or that say "later":
/// no answer (timeout, dropped connection), a 5xx, a throttle.
pub fn is_transient<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(se) => {
            let throttled = matches!(
                se.err().code(),
                Some(
                    "ThrottlingException"
                        | "Throttling"
                        | "TooManyRequestsException"
                        | "RequestLimitExceeded"
                )
            );
            let status = se.raw().status().as_u16();
            throttled || status >= 500 || status == 429
        }
        _ => false,
    }
}
