//! Name rules, each in one place with the one pattern that both validation and the OpenAPI
//! document use: names operators give (clusters, hosts, services, users, snapshots), and the
//! identifiers stack authors give (services, components, commands, endpoints; config
//! properties).

use crate::{Error, Result};

/// Checks a note an operator gives (a job's reason, a maintenance window's): one line of at
/// most `max` characters, without control characters; the error names `field`.
pub fn check_note(field: &str, what: &str, note: &str, max: usize) -> Result<()> {
    if note.chars().count() > max {
        return Err(Error::invalid_field(
            field,
            format!("{what} is at most {max} characters"),
        ));
    }
    if note.chars().any(char::is_control) {
        return Err(Error::invalid_field(
            field,
            format!("{what} is one line of text, without control characters"),
        ));
    }
    Ok(())
}

/// The pattern of a name an operator gives: 1-63 letters, digits, `-`, `_` or `.`, starting
/// with a letter or digit (safe in a path, a shell word, a URL segment and a file name).
pub const NAME_PATTERN: &str = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$";

/// The pattern of an identifier in a stack: lower-case letters, digits and `_`, starting with a
/// letter (`zookeeper_server`).
pub const IDENTIFIER_PATTERN: &str = r"^[a-z][a-z0-9_]*$";

/// The pattern of a config property's name: letters, digits, `_`, `.` and `-`, starting with a
/// letter or `_` (`tickTime`, `log.dirs`).
pub const PROPERTY_PATTERN: &str = r"^[A-Za-z_][A-Za-z0-9_.-]*$";

/// True if `name` matches [`NAME_PATTERN`].
pub fn is_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Checks a name an operator gives to a `kind` of thing (`cluster`, `host`, `user`, …); the
/// error says the rule.
pub fn check_name(kind: &str, name: &str) -> Result<()> {
    if is_name(name) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "'{name}' is not a valid {kind} name: use 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit"
        )))
    }
}

/// Checks a host name: the same rule for hosts added by operators and agents joining.
pub fn check_host_name(name: &str) -> Result<()> {
    check_name("host", name)
}

/// True if `name` matches [`IDENTIFIER_PATTERN`].
pub fn is_identifier(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// True if `name` matches [`PROPERTY_PATTERN`].
pub fn is_property_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// True if `name` can name an environment variable a script reads: letters, digits and `_`,
/// not starting with a digit (POSIX's portable names, the ones a shell can expand), at most
/// 255 bytes.
pub fn is_env_name(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The OpenAPI schema of a field holding a name: a string matching [`NAME_PATTERN`] (for
/// `#[schema(schema_with = crate::name::name_schema)]`).
#[cfg(feature = "openapi")]
pub fn name_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(NAME_PATTERN))
        .min_length(Some(1))
        .max_length(Some(63))
        .description(Some(
            "1-63 letters, digits, `-`, `_` or `.`, starting with a letter or digit.",
        ))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Each check against its pattern, on strings drawn from the pattern and on arbitrary ones
    /// (ASCII punctuation, non-ASCII and lengths around the limits included).
    fn agree(
        check: fn(&str) -> bool,
        pattern: &str,
        s: &str,
    ) -> std::result::Result<(), TestCaseError> {
        let re = regex::Regex::new(pattern).unwrap();
        prop_assert_eq!(check(s), re.is_match(s), "{:?} against {}", s, pattern);
        Ok(())
    }

    /// Strings matching `pattern` (the generator takes it without its anchors).
    fn drawn_from(pattern: &str) -> proptest::string::RegexGeneratorStrategy<String> {
        let bare = pattern.trim_start_matches('^').trim_end_matches('$');
        proptest::string::string_regex(bare).unwrap()
    }

    proptest! {
        #[test]
        fn names_match_their_pattern(s in drawn_from(NAME_PATTERN)) {
            prop_assert!(is_name(&s));
        }

        #[test]
        fn identifiers_match_their_pattern(s in drawn_from(IDENTIFIER_PATTERN)) {
            prop_assert!(is_identifier(&s));
        }

        #[test]
        fn property_names_match_their_pattern(s in drawn_from(PROPERTY_PATTERN)) {
            prop_assert!(is_property_name(&s));
        }

        #[test]
        fn checks_and_patterns_agree(s in "[a-zA-Z0-9._ /$;é-]{0,70}") {
            agree(is_name, NAME_PATTERN, &s)?;
            agree(is_identifier, IDENTIFIER_PATTERN, &s)?;
            agree(is_property_name, PROPERTY_PATTERN, &s)?;
        }
    }

    #[test]
    fn examples() {
        assert!(is_name("zk-1.example_a") && is_name(&"a".repeat(63)));
        assert!(!is_name("") && !is_name(&"a".repeat(64)) && !is_name("-a") && !is_name("a b"));
        let err = check_name("cluster", "../x").unwrap_err().to_string();
        assert!(err.contains("'../x' is not a valid cluster name"), "{err}");
        assert!(is_identifier("zookeeper_server") && is_identifier("a1"));
        for bad in ["1a", "Zoo", "zoo-keeper", ""] {
            assert!(!is_identifier(bad), "{bad}");
        }
        assert!(is_property_name("tickTime") && is_property_name("log.dir"));
        assert!(!is_property_name("9lives"));
    }
}
