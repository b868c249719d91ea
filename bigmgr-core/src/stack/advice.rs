//! Log diagnoses a stack teaches the advisor (`[[advice]]` in `service.toml`): when a failed
//! task's log has one of the substrings, the advisor says what it means and what to do.

use crate::{Error, Result};
use serde::Deserialize;
use std::collections::HashSet;
use std::path::Path;

/// The most substrings one diagnosis may list.
const MAX_SUBSTRINGS: usize = 20;
/// The longest substring, title or hint, in characters.
const MAX_TEXT: usize = 500;

/// `[[advice]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdvice {
    name: String,
    #[serde(rename = "match")]
    any: Vec<String>,
    title: String,
    hint: String,
}

/// A log diagnosis of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdviceRule {
    /// Its name, unique in the service; findings name it `<service>.<name>`.
    pub name: String,
    /// Substrings (lower case), any of which in a failed task's log shows it.
    pub any: Vec<String>,
    /// What it means (the finding's title says "… failed: <title>").
    pub title: String,
    /// What to do.
    pub hint: String,
}

/// Converts every `[[advice]]`, refusing a bad one naming the file and the field.
pub(super) fn convert_advice(file: &Path, raw: &[RawAdvice]) -> Result<Vec<AdviceRule>> {
    let mut seen = HashSet::new();
    raw.iter()
        .enumerate()
        .map(|(i, a)| {
            let err = |f: &str, m: String| Error::Manifest {
                file: file.to_path_buf(),
                field: format!("advice[{i}].{f}"),
                message: m,
            };
            if !crate::name::is_identifier(&a.name) {
                return Err(err(
                    "name",
                    format!(
                        "'{}' is not an advice name: lower-case letters, digits and _",
                        a.name
                    ),
                ));
            }
            if !seen.insert(a.name.clone()) {
                return Err(err(
                    "name",
                    format!(
                        "advice '{}' is declared twice; names must be unique",
                        a.name
                    ),
                ));
            }
            if a.any.is_empty() || a.any.len() > MAX_SUBSTRINGS {
                return Err(err(
                    "match",
                    format!("give 1 to {MAX_SUBSTRINGS} substrings of a log line"),
                ));
            }
            for (j, s) in a.any.iter().enumerate() {
                if s.trim().is_empty() || s.chars().count() > MAX_TEXT || s.contains('\n') {
                    return Err(err(
                        &format!("match[{j}]"),
                        format!(
                            "a substring is one non-blank line of at most {MAX_TEXT} characters"
                        ),
                    ));
                }
            }
            for (f, text) in [("title", &a.title), ("hint", &a.hint)] {
                if text.trim().is_empty() || text.chars().count() > MAX_TEXT {
                    return Err(err(
                        f,
                        format!("the {f} is text of 1 to {MAX_TEXT} characters"),
                    ));
                }
            }
            Ok(AdviceRule {
                name: a.name.clone(),
                any: a.any.iter().map(|s| s.to_lowercase()).collect(),
                title: a.title.trim().to_string(),
                hint: a.hint.trim().to_string(),
            })
        })
        .collect()
}
