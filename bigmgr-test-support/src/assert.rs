//! Assertions on text that show the whole text when they fail.

/// Asserts that `text` contains `needle`; on failure shows both.
#[track_caller]
pub fn assert_contains(text: impl AsRef<str>, needle: impl AsRef<str>) {
    let (text, needle) = (text.as_ref(), needle.as_ref());
    assert!(text.contains(needle), "no {needle:?} in:\n{text}");
}
