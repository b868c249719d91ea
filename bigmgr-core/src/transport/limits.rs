//! How much text one agent event may carry: a log line and a result's message are bounded, so
//! no single event can outgrow a transport's message limit (see `proto/README.md`).

/// The longest text of one log line an event carries, in bytes, marker included. The agent's
/// tailer cuts a longer line and ends it with a marker saying how long the line was and where
/// the whole output is (the run's `stdout.log` or `stderr.log` on the host).
pub const MAX_LOG_LINE: usize = 64 * 1024;

/// The longest message of a task result, in bytes, marker included.
pub const MAX_RESULT_MESSAGE: usize = 8 * 1024;

/// The most a task may carry to its agent — script, rendered config files and template
/// context together — in bytes: half of a transport message, so the rest of a `RunTask`
/// always fits. The engine fails a task over it, saying so, instead of sending it.
pub const MAX_TASK_PAYLOAD: usize = 8 * 1024 * 1024;

/// Cuts `text` (at a character boundary) so that it holds at most `max` bytes once `marker` is
/// appended, and appends the marker. A marker longer than `max` is appended to nothing.
pub fn truncate_with(text: &mut String, max: usize, marker: &str) {
    let mut keep = max.saturating_sub(marker.len()).min(text.len());
    while !text.is_char_boundary(keep) {
        keep -= 1;
    }
    text.truncate(keep);
    text.push_str(marker);
}

/// Bounds `text` to `max` bytes: a NUL (which no store keeps) becomes U+FFFD first, then a
/// longer text is cut and ends with `… [<what> truncated: <length> bytes]`. Returns whether it
/// was cut.
pub fn bound(text: &mut String, max: usize, what: &str) -> bool {
    if text.contains('\0') {
        *text = text.replace('\0', "\u{FFFD}");
    }
    if text.len() <= max {
        return false;
    }
    let marker = format!(" … [{what} truncated: {} bytes]", text.len());
    truncate_with(text, max, &marker);
    true
}

/// A copy of `text` bounded as [`bound`] does.
pub fn bounded(text: &str, max: usize, what: &str) -> String {
    if text.contains('\0') {
        let mut text = text.replace('\0', "\u{FFFD}");
        bound(&mut text, max, what);
        return text;
    }
    if text.len() <= max {
        return text.to_owned();
    }
    let mut head = text[..floor_char_boundary(text, max)].to_owned();
    let marker = format!(" … [{what} truncated: {} bytes]", text.len());
    truncate_with(&mut head, max, &marker);
    head
}

/// The largest character boundary of `text` at or below `at`.
fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_nul_becomes_u_fffd_before_the_bound() {
        let text = "\0".repeat(100);
        let cut = super::bounded(&text, 64, "line");
        assert!(cut.len() <= 64 && !cut.contains('\0'), "{cut:?}");
        assert!(cut.starts_with('\u{FFFD}'), "{cut:?}");
        assert_eq!(super::bounded("a\0b", 64, "line"), "a\u{FFFD}b");
    }

    use super::*;

    #[test]
    fn short_text_is_kept_and_long_text_is_cut_with_a_marker() {
        let mut short = "abc".to_owned();
        assert!(!bound(&mut short, 3, "line"));
        assert_eq!(short, "abc");
        let long = "é".repeat(100);
        let mut cut = long.clone();
        assert!(bound(&mut cut, 64, "line"));
        assert!(cut.len() <= 64, "{}", cut.len());
        assert!(cut.ends_with(" … [line truncated: 200 bytes]"), "{cut}");
        assert!(cut.starts_with("éé"));
        assert_eq!(bounded(&long, 64, "line"), cut);
        assert_eq!(bounded("abc", 64, "line"), "abc");
    }

    #[test]
    fn a_marker_longer_than_the_bound_stands_alone() {
        let mut text = "abcdef".to_owned();
        truncate_with(&mut text, 2, "[cut]");
        assert_eq!(text, "[cut]");
    }
}
