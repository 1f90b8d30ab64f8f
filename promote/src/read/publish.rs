//! `publish`: deployment zip -> published version described by the artifact's build stamp.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;
use rollout::BuildStamp;
use sha2::{Digest, Sha256};

use crate::cli::events;
use crate::cli::exit::Exit;
use crate::cloud::aws::{Cloud, UpdateStatus};
use crate::ctx::Ctx;

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
) -> events::Published {
    events::Published {
        version,
        created,
        name: stamp.name.clone(),
        semver: stamp.semver.to_string(),
        git_sha: stamp.git_sha.clone(),
        dry_run: dry_run.then_some(true),
    }
}

pub async fn publish<C: Cloud>(ctx: &Ctx<'_, C>, zip: &Path, dry_run: bool) -> Result<()> {
    let (text, event) = publish_function(ctx, zip, dry_run).await?;
    ctx.ui.emit_result(text, &event);
    Ok(())
}

/// Publishes every function's zip (`ctxs[i]` works on `zips[i]`'s function), each as one
/// function alone would be, then prints the release: `app=4 birthday=7` (what `deploy
/// --release` takes) or one `release` event. A function whose zip holds the code of one of
/// its versions keeps that version.
pub async fn publish_release<C: Cloud>(
    ctxs: &[Ctx<'_, C>],
    zips: &[&Path],
    dry_run: bool,
    ui: &crate::cli::ui::Ui,
) -> Result<()> {
    let mut release = std::collections::BTreeMap::new();
    let mut line = Vec::new();
    for (ctx, zip) in ctxs.iter().zip(zips) {
        let (text, event) = publish_function(ctx, zip, dry_run)
            .await
            .with_context(|| format!("function {}", ctx.function))?;
        ctx.ui.say(format!("{}: {text}", ctx.function));
        ctx.ui.emit(&event);
        line.push(format!(
            "{}={}",
            ctx.function,
            event.version.as_deref().unwrap_or("?")
        ));
        release.insert(ctx.function.to_string(), event.version.clone());
    }
    ui.emit_result(
        line.join(" "),
        &events::Release {
            release,
            dry_run: dry_run.then_some(true),
        },
    );
    Ok(())
}

/// One function's publish: the result's text and event.
async fn publish_function<C: Cloud>(
    ctx: &Ctx<'_, C>,
    zip: &Path,
    dry_run: bool,
) -> Result<(String, events::Published)> {
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
        return Ok((
            existing.version.to_string(),
            result_json(
                Some(existing.version.to_string()),
                false,
                &art.stamp,
                dry_run,
            ),
        ));
    }
    if dry_run {
        let text = format!(
            "dry run: would upload {} ({} bytes, CodeSha256 {}) and publish a version described \"{description}\"",
            zip.display(),
            art.bytes.len(),
            art.code_sha256
        );
        return Ok((text, result_json(None, false, &art.stamp, true)));
    }
    if ctx.interrupt.is_set() {
        return Err(Exit::Interrupted("stopped before uploading; nothing changed".into()).into());
    }
    let size = art.bytes.len();
    let update = ctx.cloud.update_code(art.bytes).await?;
    if !update.code_sha256.is_empty() && update.code_sha256 != art.code_sha256 {
        tracing::warn!(ours = %art.code_sha256, lambda = %update.code_sha256, "CodeSha256 reported by Lambda differs from the zip's");
    }
    ui.emit(&events::CodeUploaded {
        bytes: size,
        code_sha256: art.code_sha256.clone(),
    });
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
    Ok((
        published.version.to_string(),
        result_json(Some(published.version.to_string()), true, &art.stamp, false),
    ))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::cli::ui::Format;
    use crate::cloud::aws::UpdateStatus;
    use crate::cloud::fake::{World, ver};

    const SHA: &str = "3f2c0e9d1c4b5a69788796a5b4c3d2e1f0a9b8c7";

    fn zip_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, body) in entries {
            w.start_file(*name, opts).unwrap();
            w.write_all(body).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn stamped(semver: &str) -> Vec<u8> {
        let bootstrap = format!("\x7fELF...@@build-stamp@@app {semver} {SHA}@@end@@...");
        zip_with(&[("bootstrap", bootstrap.as_bytes())])
    }

    fn write_tmp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("promote-publish-{}-{name}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn reads_the_stamp_and_the_code_sha_of_an_artifact() {
        let bytes = stamped("0.2.0");
        let path = write_tmp("ok.zip", &bytes);
        let art = read_artifact(&path).unwrap();
        assert_eq!(art.stamp.to_string(), format!("app 0.2.0 {SHA}"));
        let expected = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&bytes));
        assert_eq!(art.code_sha256, expected);
        assert_eq!(
            art.code_sha256.len(),
            44,
            "base64 of 32 bytes, as Lambda's CodeSha256"
        );
    }

    #[test]
    fn bad_artifacts_are_bad_input_naming_the_file() {
        let cases = [
            ("nozip.zip", b"not a zip".to_vec(), "is not a zip archive"),
            (
                "noboot.zip",
                zip_with(&[("other", b"x")]),
                "no `bootstrap` entry",
            ),
            (
                "nostamp.zip",
                zip_with(&[("bootstrap", b"\x7fELF plain binary")]),
                "carries no build stamp",
            ),
            (
                "badstamp.zip",
                zip_with(&[("bootstrap", b"@@build-stamp@@app 1.x nope@@end@@")]),
                "malformed",
            ),
        ];
        for (name, bytes, what) in cases {
            let path = write_tmp(name, &bytes);
            let err = read_artifact(&path).unwrap_err();
            assert!(matches!(err, Exit::BadInput(_)), "{name}");
            let msg = err.to_string();
            assert!(msg.contains(name) && msg.contains(what), "{name}: {msg}");
        }
        let missing = read_artifact(Path::new("/nonexistent/app.zip"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("/nonexistent/app.zip"), "{missing}");
    }

    #[tokio::test]
    async fn publishes_after_the_update_finishes_with_the_stamp_as_description() {
        let w = World::new(Format::Json);
        w.fake.state.borrow_mut().status_script =
            [UpdateStatus::InProgress, UpdateStatus::InProgress]
                .into_iter()
                .collect();
        let path = write_tmp("new.zip", &stamped("0.2.0"));
        publish(&w.ctx(), &path, false).await.unwrap();
        let st = w.fake.state.borrow();
        assert_eq!(st.code_updates.len(), 1);
        assert_eq!(st.status_reads, 3, "polled until Successful");
        assert_eq!(st.published.len(), 1);
        assert_eq!(st.published[0].0, format!("app 0.2.0 {SHA}"));
        let last: serde_json::Value =
            serde_json::from_str(w.stdout().lines().last().unwrap()).unwrap();
        assert_eq!(
            last,
            serde_json::json!({"event": "published", "v": 1, "version": "4", "created": true, "name": "app", "semver": "0.2.0", "git_sha": SHA})
        );
    }

    #[tokio::test]
    async fn identical_code_returns_the_existing_version_without_uploading() {
        let w = World::new(Format::Table);
        let bytes = stamped("0.1.1");
        let path = write_tmp("same.zip", &bytes);
        let sha = read_artifact(&path).unwrap().code_sha256;
        w.fake.state.borrow_mut().versions[1].code_sha256 = sha;
        publish(&w.ctx(), &path, false).await.unwrap();
        assert_eq!(w.stdout(), "2\n", "stdout is just the version number");
        let st = w.fake.state.borrow();
        assert!(st.code_updates.is_empty() && st.published.is_empty());
        assert_eq!(st.versions.len(), 3);
        assert_eq!(st.versions[1].version, ver(2));
    }

    #[tokio::test]
    async fn dry_run_and_failed_updates_publish_nothing() {
        let w = World::new(Format::Table);
        let ctx = w.ctx();
        let (fake, ui) = (&w.fake, &w.ui);
        let path = write_tmp("dry.zip", &stamped("0.3.0"));
        publish(&ctx, &path, true).await.unwrap();
        assert!(
            ui.output().0.starts_with("dry run: would upload"),
            "{}",
            ui.output().0
        );
        assert!(fake.state.borrow().code_updates.is_empty());

        fake.state.borrow_mut().status_script = [UpdateStatus::Failed].into_iter().collect();
        let err = publish(&ctx, &path, false).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("code update of the function failed"),
            "{err}"
        );
        assert!(fake.state.borrow().published.is_empty());
    }
}
