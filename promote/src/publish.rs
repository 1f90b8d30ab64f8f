//! `publish`: deployment zip -> published version described by the artifact's build stamp.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use base64::Engine;
use rollout::BuildStamp;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::aws::{Cloud, UpdateStatus};
use crate::commands::Ctx;
use crate::exit::Exit;

/// How long Lambda may take to finish a code update before we give up.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(600);
const UPDATE_POLL: Duration = Duration::from_millis(500);

/// What `publish` needs from the zip.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    pub bytes: Vec<u8>,
    pub stamp: BuildStamp,
    /// Base64 SHA-256 of the zip: how Lambda identifies code (CodeSha256).
    pub code_sha256: String,
}

pub fn read_artifact(path: &Path) -> Result<Artifact, Exit> {
    let shown = path.display();
    let bytes =
        std::fs::read(path).map_err(|e| Exit::BadInput(format!("cannot read {shown}: {e}")))?;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).map_err(|e| {
        Exit::BadInput(format!(
            "{shown} is not a zip archive ({e}); build it with `make package`"
        ))
    })?;
    let mut entry = archive.by_name("bootstrap").map_err(|_| {
        Exit::BadInput(format!("{shown} has no `bootstrap` entry at its root; a provided.al2023 function zip needs one (`make package`)"))
    })?;
    let mut bootstrap = Vec::with_capacity(entry.size().min(256 << 20) as usize);
    entry
        .read_to_end(&mut bootstrap)
        .map_err(|e| Exit::BadInput(format!("cannot read bootstrap from {shown}: {e}")))?;
    drop(entry);
    let stamp = match BuildStamp::find_in_binary(&bootstrap) {
        Some(Ok(s)) => s,
        Some(Err(found)) => {
            return Err(Exit::BadInput(format!(
                "{shown}: the build stamp in bootstrap is malformed ({found:?}); expected `<name> <semver> <40-hex git sha>`"
            )));
        }
        None => {
            return Err(Exit::BadInput(format!(
                "{shown}: bootstrap carries no build stamp (@@build-stamp@@<name> <semver> <sha>@@end@@); was it built from app/?"
            )));
        }
    };
    let code_sha256 = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&bytes));
    Ok(Artifact {
        bytes,
        stamp,
        code_sha256,
    })
}

fn result_json(
    version: Option<String>,
    created: bool,
    stamp: &BuildStamp,
    dry_run: bool,
) -> serde_json::Value {
    let mut v = json!({
        "version": version, "created": created, "name": stamp.name,
        "semver": stamp.semver.to_string(), "git_sha": stamp.git_sha,
    });
    if dry_run {
        v["dry_run"] = true.into();
    }
    v
}

pub async fn publish<C: Cloud>(ctx: &Ctx<'_, C>, zip: &Path, dry_run: bool) -> Result<()> {
    let art = read_artifact(zip)?;
    let ui = ctx.ui;
    let description = art.stamp.to_string();
    let versions = ctx.cloud.list_versions().await?;
    // Lambda only dedupes against the latest version; any published version with the same
    // code is the same release, so return the newest such one.
    if let Some(existing) = versions
        .iter()
        .rev()
        .find(|v| v.code_sha256 == art.code_sha256)
    {
        ui.say(format!(
            "{} holds the same code (CodeSha256 {}) as version {} (\"{}\"); nothing published",
            zip.display(),
            art.code_sha256,
            existing.version,
            existing.description
        ));
        ui.result(
            existing.version.to_string(),
            result_json(
                Some(existing.version.to_string()),
                false,
                &art.stamp,
                dry_run,
            ),
        );
        return Ok(());
    }
    if dry_run {
        let text = format!(
            "dry run: would upload {} ({} bytes, CodeSha256 {}) and publish a version described \"{description}\"",
            zip.display(),
            art.bytes.len(),
            art.code_sha256
        );
        ui.result(&text, result_json(None, false, &art.stamp, true));
        return Ok(());
    }
    if ctx.interrupt.is_set() {
        return Err(Exit::Interrupted("stopped before uploading; nothing changed".into()).into());
    }
    let size = art.bytes.len();
    let update = ctx.cloud.update_code(art.bytes).await?;
    if !update.code_sha256.is_empty() && update.code_sha256 != art.code_sha256 {
        tracing::warn!(ours = %art.code_sha256, lambda = %update.code_sha256, "CodeSha256 reported by Lambda differs from the zip's");
    }
    ui.event(json!({"event": "code_uploaded", "bytes": size, "code_sha256": art.code_sha256}));
    let start = Instant::now();
    loop {
        let (status, reason) = ctx.cloud.update_status().await?;
        match status {
            UpdateStatus::Successful => break,
            UpdateStatus::Failed => bail!("the code update of the function failed: {reason}"),
            UpdateStatus::InProgress => {}
        }
        if start.elapsed() > UPDATE_TIMEOUT {
            bail!(
                "the code update has not finished after {}; check the function in the console",
                rollout::format_duration(UPDATE_TIMEOUT)
            );
        }
        ui.progress(
            "update",
            &format!(
                "waiting for the code update to finish ({} so far)",
                rollout::format_duration(start.elapsed())
            ),
        );
        if ctx.interrupt.sleep(UPDATE_POLL).await {
            ui.end_progress();
            return Err(Exit::Interrupted("stopped while the code update was in progress; $LATEST has the new code but no version was published. Run the same publish again".into()).into());
        }
    }
    ui.end_progress();
    let published = ctx
        .cloud
        .publish_version(
            &description,
            &art.code_sha256,
            update.revision_id.as_deref(),
        )
        .await?;
    ui.say(format!(
        "published version {} (\"{description}\")",
        published.version
    ));
    ui.result(
        published.version.to_string(),
        result_json(Some(published.version.to_string()), true, &art.stamp, false),
    );
    Ok(())
}
