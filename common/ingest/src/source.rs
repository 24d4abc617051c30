//! `inputSource`: the files or bytes a batch task reads. Local sources list files under
//! `baseDir` matching `filter` (a glob on the path relative to `baseDir`), or named `files`;
//! inline sources hold the data in the spec; http sources are downloaded first.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use eddy_types::spec::ingest::InputSource;

use crate::error::IngestError;

#[derive(Debug, Clone)]
pub enum Entity {
    File(PathBuf),
    Inline(Arc<str>),
    Http {
        uri: String,
        user: Option<String>,
        password: Option<String>,
    },
}

impl Entity {
    pub fn name(&self) -> String {
        match self {
            Entity::File(p) => p.display().to_string(),
            Entity::Inline(_) => "inline data".into(),
            Entity::Http { uri, .. } => uri.clone(),
        }
    }

    /// Bytes to read, when known up front (for progress).
    pub fn size(&self) -> Option<u64> {
        match self {
            Entity::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
            Entity::Inline(s) => Some(s.len() as u64),
            Entity::Http { .. } => None,
        }
    }
}

/// Lists what a source will read, with errors that name the bad field.
pub fn list(source: &InputSource) -> Result<Vec<Entity>, IngestError> {
    match source {
        InputSource::Inline { data } => Ok(vec![Entity::Inline(data.as_str().into())]),
        InputSource::Http {
            uris,
            http_authentication_username,
            http_authentication_password,
        } => {
            if uris.is_empty() {
                return Err(IngestError::Spec(
                    "spec.ioConfig.inputSource.uris: at least one uri is needed".into(),
                ));
            }
            let password = match http_authentication_password {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(obj) => obj
                    .get("password")
                    .and_then(|p| p.as_str())
                    .map(str::to_string),
            };
            for u in uris {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err(IngestError::Spec(format!(
                        "spec.ioConfig.inputSource.uris: {u:?} is not an http(s) uri"
                    )));
                }
            }
            Ok(uris
                .iter()
                .map(|u| Entity::Http {
                    uri: u.clone(),
                    user: http_authentication_username.clone(),
                    password: password.clone(),
                })
                .collect())
        }
        InputSource::Local {
            base_dir,
            filter,
            files,
        } => {
            let mut out: Vec<Entity> = Vec::new();
            for f in files {
                let p = PathBuf::from(f);
                if !p.is_file() {
                    return Err(IngestError::Spec(format!(
                        "spec.ioConfig.inputSource.files: {f:?} is not a readable file"
                    )));
                }
                out.push(Entity::File(p));
            }
            if let Some(dir) = base_dir {
                let base = Path::new(dir);
                if !base.is_dir() {
                    return Err(IngestError::Spec(format!(
                        "spec.ioConfig.inputSource.baseDir: {dir:?} is not a directory"
                    )));
                }
                let pattern = filter.clone().unwrap_or_else(|| "*".into());
                let glob = globset::GlobBuilder::new(&pattern)
                    .literal_separator(false)
                    .build()
                    .map_err(|e| {
                        IngestError::Spec(format!("spec.ioConfig.inputSource.filter: {e}"))
                    })?
                    .compile_matcher();
                let mut found = Vec::new();
                walk(base, base, &glob, &mut found)
                    .map_err(|e| IngestError::Io(format!("listing {dir}: {e}")))?;
                found.sort();
                if found.is_empty() {
                    return Err(IngestError::Spec(format!(
                        "spec.ioConfig.inputSource: no files under baseDir {dir:?} match filter {pattern:?}"
                    )));
                }
                out.extend(found.into_iter().map(Entity::File));
            }
            if out.is_empty() {
                return Err(IngestError::Spec("spec.ioConfig.inputSource: a local source needs baseDir (with filter) or files".into()));
            }
            Ok(out)
        }
    }
}

fn walk(
    base: &Path,
    dir: &Path,
    glob: &globset::GlobMatcher,
    out: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if path.is_dir() {
            walk(base, &path, glob, out)?;
        } else {
            let rel = path.strip_prefix(base).unwrap_or(&path);
            let name = path.file_name().map(Path::new).unwrap_or(rel);
            if glob.is_match(rel) || glob.is_match(name) {
                out.push(path);
            }
        }
    }
    Ok(())
}

/// Downloads an http entity into `dir` and returns it as a file entity.
pub async fn materialize(entity: &Entity, dir: &Path, index: usize) -> Result<Entity, IngestError> {
    let Entity::Http {
        uri,
        user,
        password,
    } = entity
    else {
        return Ok(entity.clone());
    };
    let client = reqwest::Client::new();
    let mut req = client.get(uri);
    if let Some(u) = user {
        req = req.basic_auth(u, password.clone());
    }
    let resp = req
        .send()
        .await
        .map_err(|e| IngestError::Io(format!("fetching {uri}: {e}")))?;
    if !resp.status().is_success() {
        return Err(IngestError::Io(format!(
            "fetching {uri}: HTTP {}",
            resp.status()
        )));
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| IngestError::Io(format!("reading {uri}: {e}")))?;
    let suffix = uri
        .rsplit('/')
        .next()
        .unwrap_or("data")
        .replace(|c: char| !c.is_ascii_alphanumeric() && c != '.', "_");
    let path = dir.join(format!("http-{index}-{suffix}"));
    tokio::fs::write(&path, &bytes)
        .await
        .map_err(|e| IngestError::Io(format!("saving {uri}: {e}")))?;
    Ok(Entity::File(path))
}

/// Opens a file or inline entity as a byte stream, decompressing `.gz` files.
pub fn open(entity: &Entity) -> Result<Box<dyn Read + Send>, IngestError> {
    match entity {
        Entity::Inline(s) => Ok(Box::new(std::io::Cursor::new(s.as_bytes().to_vec()))),
        Entity::File(p) => {
            let f = std::fs::File::open(p)
                .map_err(|e| IngestError::Io(format!("opening {}: {e}", p.display())))?;
            let reader = std::io::BufReader::with_capacity(1 << 20, f);
            if p.extension().is_some_and(|e| e == "gz") {
                Ok(Box::new(flate2::read::MultiGzDecoder::new(reader)))
            } else {
                Ok(Box::new(reader))
            }
        }
        Entity::Http { uri, .. } => Err(IngestError::Io(format!(
            "{uri} must be downloaded before reading"
        ))),
    }
}
