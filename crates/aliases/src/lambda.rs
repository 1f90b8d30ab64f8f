//! The two Lambda calls on an alias: GetAlias and the RevisionId-checked UpdateAlias, with
//! Lambda's refusals sorted into what the guarded write does about them ([`WriteError`]).

use anyhow::{Context, Result};
use aws_sdk_lambda::error::ProvideErrorMetadata;

use crate::record::{AliasRecord, AliasWrite, WriteError, alias_record, routing_config};
use crate::sdk_error::{Endpoint, is_transient, sdk_err};

/// Reads alias `alias` of `function`.
pub async fn get_alias(
    lambda: &aws_sdk_lambda::Client,
    at: &Endpoint<'_>,
    function: &str,
    alias: &str,
) -> Result<AliasRecord> {
    tracing::debug!(function, alias, "GetAlias");
    let out = lambda
        .get_alias()
        .function_name(function)
        .name(alias)
        .send()
        .await
        .map_err(|e| sdk_err(at, "Lambda GetAlias", e))
        .with_context(|| format!("reading alias {alias} of function {function}"))?;
    alias_record(
        alias,
        out.function_version(),
        out.routing_config()
            .and_then(|r| r.additional_version_weights()),
        out.description(),
        out.revision_id(),
    )
}

/// Writes alias `alias` of `function` if its RevisionId still is `revision_id`.
pub async fn update_alias(
    lambda: &aws_sdk_lambda::Client,
    at: &Endpoint<'_>,
    function: &str,
    alias: &str,
    write: &AliasWrite,
    revision_id: &str,
) -> Result<AliasRecord, WriteError> {
    let result = lambda
        .update_alias()
        .function_name(function)
        .name(alias)
        .function_version(write.version.to_string())
        .routing_config(routing_config(write.split))
        .set_description(write.description.clone())
        .revision_id(revision_id)
        .send()
        .await;
    match result {
        Ok(out) => Ok(alias_record(
            alias,
            out.function_version(),
            out.routing_config()
                .and_then(|r| r.additional_version_weights()),
            out.description(),
            out.revision_id(),
        )?),
        Err(e) => {
            let context = format!("updating alias {alias} of function {function}");
            if let Some(se) = e.as_service_error() {
                if se.is_precondition_failed_exception() {
                    return Err(WriteError::Conflict(format!(
                        "alias {alias}: RevisionId {revision_id} is no longer current ({})",
                        se.message().unwrap_or("precondition failed")
                    )));
                }
                if se.is_resource_conflict_exception()
                    || se.is_too_many_requests_exception()
                    || se.is_service_exception()
                {
                    return Err(WriteError::Transient(
                        sdk_err(at, "Lambda UpdateAlias", e).context(context),
                    ));
                }
            }
            if is_transient(&e) {
                return Err(WriteError::Transient(
                    sdk_err(at, "Lambda UpdateAlias", e).context(context),
                ));
            }
            Err(WriteError::Other(
                sdk_err(at, "Lambda UpdateAlias", e).context(context),
            ))
        }
    }
}
