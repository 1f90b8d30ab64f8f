//! The zips given with `--artifacts`, found by CodeSha256: moto keeps a version's hash but
//! does not hand its code back, so the code comes from the same zips `promote publish` read.
//! A zip is unpacked once, on first use, into a directory removed when the gateway stops.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context as _, Result, bail};
use base64::Engine;
use sha2::{Digest, Sha256};

/// Base64 SHA-256 of the zip's bytes: Lambda's CodeSha256 (as in promote/src/read/publish.rs).
pub fn code_sha256(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

pub struct Artifacts {
    /// CodeSha256 -> zip path.
    by_sha: BTreeMap<String, PathBuf>,
    root: tempfile::TempDir,
    /// CodeSha256 -> unpacked directory (LAMBDA_TASK_ROOT).
    unpacked: Mutex<BTreeMap<String, PathBuf>>,
}

impl Artifacts {
    /// Each path is a zip, or a directory whose `*.zip` files are all taken.
    pub fn index(paths: &[PathBuf]) -> Result<Artifacts> {
        let mut by_sha = BTreeMap::new();
        for path in paths {
            let zips: Vec<PathBuf> = if path.is_dir() {
                let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                    .with_context(|| format!("--artifacts {}: cannot list", path.display()))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "zip"))
                    .collect();
                found.sort();
                found
            } else {
                vec![path.clone()]
            };
            for zip in zips {
                let bytes = std::fs::read(&zip).with_context(|| {
                    format!("--artifacts {}: cannot read the zip", zip.display())
                })?;
                by_sha.insert(code_sha256(&bytes), zip);
            }
        }
        Ok(Artifacts {
            by_sha,
            root: tempfile::Builder::new().prefix("gateway-code-").tempdir()?,
            unpacked: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn len(&self) -> usize {
        self.by_sha.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_sha.is_empty()
    }

    /// The directory holding the unpacked code with this CodeSha256 (its `bootstrap` inside).
    pub fn task_root(&self, sha: &str) -> Result<PathBuf> {
        let mut unpacked = self.unpacked.lock().expect("artifacts lock");
        if let Some(dir) = unpacked.get(sha) {
            return Ok(dir.clone());
        }
        let Some(zip) = self.by_sha.get(sha) else {
            bail!(
                "no zip given with --artifacts has CodeSha256 {sha} (known: {})",
                self.by_sha.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        };
        let dir = self.root.path().join(format!("code-{}", unpacked.len()));
        unpack(zip, &dir)?;
        unpacked.insert(sha.to_string(), dir.clone());
        Ok(dir)
    }
}

fn unpack(zip: &Path, dir: &Path) -> Result<()> {
    let shown = zip.display();
    let file = std::fs::File::open(zip).with_context(|| format!("open {shown}"))?;
    let mut archive =
        zip::ZipArchive::new(file).with_context(|| format!("{shown} is not a zip archive"))?;
    if archive.index_for_name("bootstrap").is_none() {
        bail!("{shown} has no `bootstrap` at its root; a provided.al2023 function needs one");
    }
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i)?;
        // Names that would climb out of the directory are skipped, never written.
        let Some(rel) = entry.enclosed_name() else {
            continue;
        };
        let out = dir.join(&rel);
        if entry.is_dir() {
            std::fs::create_dir_all(&out)?;
            continue;
        }
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes)?;
        std::fs::write(&out, &bytes).with_context(|| format!("write {}", out.display()))?;
        // Lambda runs `bootstrap` whatever mode the zip recorded.
        let mode = match entry.unix_mode() {
            Some(m) if m & 0o111 != 0 => m & 0o777,
            _ if rel == Path::new("bootstrap") => 0o755,
            _ => 0o644,
        };
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_zip(path: &Path, entries: &[(&str, &[u8], u32)]) {
        let file = std::fs::File::create(path).unwrap();
        let mut w = zip::ZipWriter::new(file);
        for (name, body, mode) in entries {
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored)
                .unix_permissions(*mode);
            w.start_file(*name, opts).unwrap();
            w.write_all(body).unwrap();
        }
        w.finish().unwrap();
    }

    #[test]
    fn zips_are_found_by_code_sha256_and_unpacked_executable() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.zip");
        write_zip(
            &a,
            &[
                ("bootstrap", b"#!/bin/sh\n", 0o644),
                ("data/x.txt", b"x", 0o644),
            ],
        );
        let sha = code_sha256(&std::fs::read(&a).unwrap());
        let arts = Artifacts::index(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(arts.len(), 1);
        let root = arts.task_root(&sha).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(root.join("bootstrap"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(std::fs::read(root.join("data/x.txt")).unwrap(), b"x");
        // Unpacked once.
        assert_eq!(arts.task_root(&sha).unwrap(), root);
        let err = arts.task_root("nope").unwrap_err().to_string();
        assert!(
            err.contains("no zip given with --artifacts has CodeSha256 nope"),
            "{err}"
        );
    }

    #[test]
    fn code_sha256_is_base64_of_sha256() {
        assert_eq!(
            code_sha256(b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }
}
