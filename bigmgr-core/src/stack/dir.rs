//! The directory stack provider: `<root>/<stack>/<version>/<service>/service.toml`.
//!
//! [`DirStackProvider`] searches several roots in order (an earlier root's `<stack>/<version>`
//! hides a later one's), loads a stack version on first use with [`load_stack_dir`], validates
//! it and caches it.

use super::manifest::{MANIFEST_FILE, load_service};
use super::validate::validate_stack;
use super::{Stack, StackProvider, StackRef};
use crate::{Error, Result};
use async_trait::async_trait;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Reads stacks from one or more directories laid out as
/// `<root>/<stack>/<version>/<service>/service.toml`.
#[derive(Debug)]
pub struct DirStackProvider {
    roots: Vec<PathBuf>,
    cache: Mutex<HashMap<StackRef, Arc<Stack>>>,
}

impl DirStackProvider {
    /// A provider over `roots`, searched in order: when two roots hold the same stack name and
    /// version, the earlier one wins. Roots that do not exist are skipped.
    pub fn new(roots: impl IntoIterator<Item = impl Into<PathBuf>>) -> Self {
        DirStackProvider {
            roots: roots.into_iter().map(Into::into).collect(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The roots it searches, in order.
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// Every stack version found, with the directory that provides it (the first root's).
    fn scan(&self) -> Result<BTreeMap<String, BTreeMap<String, PathBuf>>> {
        let mut found: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
        for root in &self.roots {
            let Some(stacks) = subdirs(root, true)? else {
                tracing::debug!(root = %root.display(), "stack root does not exist; skipped");
                continue;
            };
            for (stack, stack_dir) in stacks {
                for (version, version_dir) in subdirs(&stack_dir, false)?.unwrap_or_default() {
                    if has_service(&version_dir)? {
                        found
                            .entry(stack.clone())
                            .or_default()
                            .entry(version)
                            .or_insert(version_dir);
                    }
                }
            }
        }
        Ok(found)
    }

    fn cached(&self, key: &StackRef) -> Option<Arc<Stack>> {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }
}

#[async_trait]
impl StackProvider for DirStackProvider {
    async fn list(&self) -> Result<Vec<StackRef>> {
        let mut out = Vec::new();
        for (name, versions) in self.scan()? {
            let mut versions: Vec<String> = versions.into_keys().collect();
            versions.sort_by(|a, b| compare_versions(a, b));
            out.extend(versions.into_iter().map(|version| StackRef {
                name: name.clone(),
                version,
            }));
        }
        Ok(out)
    }

    async fn stack(&self, name: &str, version: Option<&str>) -> Result<Arc<Stack>> {
        if let Some(v) = version {
            let key = StackRef {
                name: name.to_string(),
                version: v.to_string(),
            };
            if let Some(s) = self.cached(&key) {
                return Ok(s);
            }
        }
        let mut found = self.scan()?;
        let Some(versions) = found.remove(name) else {
            let known: Vec<&str> = found.keys().map(String::as_str).collect();
            return Err(Error::not_found(
                "stack",
                format!(
                    "{name} (available: {}; searched {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    },
                    self.roots
                        .iter()
                        .map(|r| r.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        let chosen = match version {
            Some(v) => versions.get_key_value(v),
            None => versions
                .iter()
                .max_by(|(a, _), (b, _)| compare_versions(a, b)),
        };
        let Some((version, dir)) = chosen else {
            let mut known: Vec<&str> = versions.keys().map(String::as_str).collect();
            known.sort_by(|a, b| compare_versions(a, b));
            return Err(Error::not_found(
                "stack version",
                format!(
                    "{name} {} (available versions: {})",
                    version.unwrap_or_default(),
                    known.join(", ")
                ),
            ));
        };
        let key = StackRef {
            name: name.to_string(),
            version: version.clone(),
        };
        if let Some(s) = self.cached(&key) {
            return Ok(s);
        }
        let stack = Arc::new(load_stack_dir(dir, name, version)?);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        Ok(cache.entry(key).or_insert(stack).clone())
    }
}

/// Loads every service of one stack version directory (`dir` holds one directory per
/// service) and validates the stack as a whole. Hidden entries and plain files are ignored;
/// a service directory without `service.toml` is an error.
pub fn load_stack_dir(dir: &Path, name: &str, version: &str) -> Result<Stack> {
    let mut services = BTreeMap::new();
    let entries = subdirs(dir, false)?.ok_or_else(|| {
        Error::io(
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
        )
    })?;
    for (service, service_dir) in entries {
        if !service_dir.join(MANIFEST_FILE).is_file() {
            return Err(Error::Stack {
                stack: name.to_string(),
                version: version.to_string(),
                message: format!(
                    "directory {} has no {MANIFEST_FILE}; every directory of a stack version \
                     is a service and needs one",
                    service_dir.display()
                ),
            });
        }
        let def = load_service(&service_dir)?;
        services.insert(service, Arc::new(def));
    }
    if services.is_empty() {
        return Err(Error::Stack {
            stack: name.to_string(),
            version: version.to_string(),
            message: format!("{} holds no service directories", dir.display()),
        });
    }
    let stack = Stack {
        name: name.to_string(),
        version: version.to_string(),
        services,
    };
    validate_stack(&stack)?;
    Ok(stack)
}

/// The non-hidden subdirectories of `dir` by name, sorted; `None` if `dir` does not exist.
/// `dir` itself must be readable; unreadable entries are skipped only if `lenient`.
fn subdirs(dir: &Path, lenient: bool) -> Result<Option<BTreeMap<String, PathBuf>>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut out = BTreeMap::new();
    for entry in rd {
        let entry = match entry {
            Ok(e) => e,
            Err(_) if lenient => continue,
            Err(e) => return Err(Error::io(dir, e)),
        };
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if name.starts_with('.') || !path.is_dir() {
            continue;
        }
        out.insert(name, path);
    }
    Ok(Some(out))
}

/// True if `dir` has a subdirectory holding a `service.toml`.
fn has_service(dir: &Path) -> Result<bool> {
    Ok(subdirs(dir, true)?
        .unwrap_or_default()
        .values()
        .any(|d| d.join(MANIFEST_FILE).is_file()))
}

/// Orders versions by their dot-separated parts: numerically where both parts are numbers,
/// as strings otherwise (`1.10.0` > `1.9.2`, `2.0` > `1.99`, `1.0.1` > `1.0`).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let mut pa = a.split('.');
    let mut pb = b.split('.');
    loop {
        match (pa.next(), pb.next()) {
            (None, None) => return a.cmp(b),
            (Some(_), None) => return Ordering::Greater,
            (None, Some(_)) => return Ordering::Less,
            (Some(x), Some(y)) => {
                let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    _ => x.cmp(y),
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(compare_versions("1.10.0", "1.9.2"), Ordering::Greater);
        assert_eq!(compare_versions("2.0", "1.99"), Ordering::Greater);
        assert_eq!(compare_versions("1.0.1", "1.0"), Ordering::Greater);
        assert_eq!(compare_versions("1.0.0", "1.0.0"), Ordering::Equal);
        assert_eq!(compare_versions("beta", "alpha"), Ordering::Greater);
        let mut v = vec!["1.2", "1.10", "1.9.1", "0.9"];
        v.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(v, ["0.9", "1.2", "1.9.1", "1.10"]);
    }
}
