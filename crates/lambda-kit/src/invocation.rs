//! Where a request came from: the Lambda invocation (function, version, alias, region) and
//! the API Gateway stage. Pure functions over what lambda_http puts in request extensions;
//! none of it exists when the router is served locally.
use axum::http::Extensions;
use lambda_http::request::RequestContext;
use lambda_http::{Context, RequestExt};
use serde::Serialize;

/// The Lambda half of `/build-info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LambdaInfo {
    pub function_name: String,
    /// The published version that served this request (`$LATEST` when unpublished).
    pub function_version: String,
    /// The alias in the invoked ARN; `None` when the function was invoked unqualified or by
    /// version number.
    pub alias: Option<String>,
}

/// Everything about the current invocation that `/build-info` and the request log report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invocation {
    pub lambda: Option<LambdaInfo>,
    pub request_id: Option<String>,
    pub region: Option<String>,
    pub stage: Option<String>,
}

impl Invocation {
    pub fn from_extensions(ext: &Extensions) -> Self {
        let ctx = ext.lambda_context_ref();
        Invocation {
            lambda: ctx.map(lambda_info),
            request_id: ctx
                .map(|c| c.request_id.clone())
                .filter(|id| !id.is_empty()),
            // The ARN names the region; Lambda also always sets AWS_REGION, which covers
            // emulators that pass a placeholder ARN.
            region: ctx.and_then(|c| {
                region_from_arn(&c.invoked_function_arn)
                    .or_else(|| std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()))
            }),
            stage: ext.request_context_ref().and_then(stage),
        }
    }
}

fn lambda_info(ctx: &Context) -> LambdaInfo {
    LambdaInfo {
        function_name: ctx.env_config.function_name.clone(),
        function_version: ctx.env_config.version.clone(),
        alias: alias_from_arn(&ctx.invoked_function_arn),
    }
}

/// `arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]`; the qualifier is an
/// alias unless it is a version number or `$LATEST`.
pub fn alias_from_arn(arn: &str) -> Option<String> {
    let qualifier = arn.split(':').nth(7)?;
    let is_version = qualifier == "$LATEST" || qualifier.bytes().all(|b| b.is_ascii_digit());
    (!qualifier.is_empty() && !is_version).then(|| qualifier.to_owned())
}

pub fn region_from_arn(arn: &str) -> Option<String> {
    let mut parts = arn.split(':');
    if parts.next() != Some("arn") {
        return None;
    }
    parts.nth(2).filter(|r| !r.is_empty()).map(str::to_owned)
}

/// The API Gateway stage of the request. A Lambda function URL sends an HTTP API-shaped
/// event with stage `$default` but is not behind API Gateway, so it has no stage.
pub fn stage(ctx: &RequestContext) -> Option<String> {
    match ctx {
        RequestContext::ApiGatewayV1(c) => c.stage.clone(),
        RequestContext::ApiGatewayV2(c) => {
            let function_url = c
                .domain_name
                .as_deref()
                .is_some_and(|d| d.contains(".lambda-url."));
            c.stage.clone().filter(|_| !function_url)
        }
        _ => None,
    }
}

/// The stage that API Gateway puts in front of the path: a named stage, never `$default`.
pub fn path_stage(ctx: &RequestContext) -> Option<&str> {
    let stage = match ctx {
        RequestContext::ApiGatewayV1(c) => c.stage.as_deref(),
        RequestContext::ApiGatewayV2(c) => c.stage.as_deref(),
        _ => None,
    };
    stage.filter(|s| !s.is_empty() && *s != "$default")
}

/// The path the router sees: `/<stage>/build-info` becomes `/build-info`. lambda_http adds
/// the stage of a REST API (payload 1.0) in front of the path, and an HTTP API's rawPath
/// already carries a named stage; the routes are the same on every stage.
pub fn strip_stage<'a>(path: &'a str, stage: Option<&str>) -> &'a str {
    let Some(stage) = stage else { return path };
    match path.strip_prefix('/').and_then(|p| p.strip_prefix(stage)) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:path-to-live-app";

    #[test]
    fn alias_comes_from_the_qualifier() {
        assert_eq!(
            alias_from_arn(&format!("{ARN}:live")).as_deref(),
            Some("live")
        );
        assert_eq!(alias_from_arn(ARN), None);
        assert_eq!(alias_from_arn(&format!("{ARN}:7")), None);
        assert_eq!(alias_from_arn(&format!("{ARN}:$LATEST")), None);
        assert_eq!(alias_from_arn(""), None);
    }

    #[test]
    fn region_comes_from_the_arn() {
        assert_eq!(region_from_arn(ARN).as_deref(), Some("eu-west-1"));
        assert_eq!(region_from_arn(""), None);
        assert_eq!(region_from_arn("not-an-arn:a:b:c"), None);
    }

    #[test]
    fn strip_stage_removes_one_leading_stage_segment() {
        assert_eq!(strip_stage("/dev/build-info", Some("dev")), "/build-info");
        assert_eq!(strip_stage("/dev", Some("dev")), "/");
        assert_eq!(strip_stage("/dev/", Some("dev")), "/");
        assert_eq!(strip_stage("/dev/dev/x", Some("dev")), "/dev/x");
        assert_eq!(strip_stage("/devices", Some("dev")), "/devices");
        assert_eq!(strip_stage("/build-info", Some("dev")), "/build-info");
        assert_eq!(strip_stage("/dev/build-info", None), "/dev/build-info");
    }
}
