//! Values in files a shell reads: [`quote`], which the templates' `{{shell_quote x}}` helper
//! applies, and [`check_template`], which a stack's loader runs on every template of format
//! `shell` so that no value reaches such a file unquoted.
//!
//! The rule, by construction rather than by review: in a shell-format template every value is
//! `{{shell_quote …}}`, on the right of an assignment (`NAME={{shell_quote x}}`), outside any
//! quotes and comments of the template's own text; block helpers (`{{#each}}`, `{{#if}}`,
//! `{{else}}`, `{{/…}}`) stand outside quotes and comments too, so whatever they repeat or
//! skip is balanced. The template's own text may not open command substitutions (`$(`,
//! backquotes), parameter expansions (`${`) or here-documents (`<<`), inside which quoting
//! means something else. What passes renders, for any values, to lines of assignments whose
//! values are single-quoted words: sourcing it runs nothing and sets each variable to its value
//! byte for byte.

/// `s` as one single-quoted shell word: `it's` → `'it'\''s'`. Every byte but `'` stands for
/// itself inside single quotes (newlines and NULs included; a NUL cannot reach a shell
/// variable, which is why config strings refuse control characters, see
/// [`crate::stack::PropertyType::check`]).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Where a shell-format template breaks the rule, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The line, from 1.
    pub line: usize,
    /// The column (in characters), from 1.
    pub column: usize,
    /// What is wrong and what to write instead.
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

/// The shell's lexical state over the template's own text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quoting {
    /// Outside quotes.
    None,
    /// Inside `'…'`.
    Single,
    /// Inside `"…"`.
    Double,
    /// Inside `$'…'` (backslash escapes apply).
    AnsiC,
    /// In a `#` comment, until the end of the line.
    Comment,
}

impl Quoting {
    fn describe(self) -> &'static str {
        match self {
            Quoting::None => "outside quotes",
            Quoting::Single => "inside single quotes",
            Quoting::Double => "inside double quotes",
            Quoting::AnsiC => "inside $'…' quotes",
            Quoting::Comment => "inside a # comment",
        }
    }
}

/// A scanner of the template's literal text, as a POSIX shell would read it.
struct Lexer {
    quoting: Quoting,
    /// The previous character was an unquoted (or double-quoted) backslash.
    escaped: bool,
    /// The current word's text so far, outside quotes (`NAME=` tells an assignment).
    word: String,
    /// The current word has started (quotes count: `''` is a word).
    in_word: bool,
    /// The previous character, for two-character constructs.
    prev: Option<char>,
}

impl Lexer {
    fn new() -> Lexer {
        Lexer {
            quoting: Quoting::None,
            escaped: false,
            word: String::new(),
            in_word: false,
            prev: None,
        }
    }

    /// Reads one character of literal text; an error for constructs the rule does not allow.
    fn push(&mut self, c: char) -> std::result::Result<(), String> {
        let prev = self.prev.replace(c);
        if self.escaped {
            self.escaped = false;
            if self.quoting == Quoting::None {
                // `\<newline>` joins lines; any other escaped character is part of the word.
                if c != '\n' {
                    self.word.push(c);
                    self.in_word = true;
                }
            }
            return Ok(());
        }
        match self.quoting {
            Quoting::Comment => {
                if c == '\n' {
                    self.quoting = Quoting::None;
                    self.end_word();
                }
            }
            Quoting::Single => {
                if c == '\'' {
                    self.quoting = Quoting::None;
                }
            }
            Quoting::AnsiC => match c {
                '\\' => self.escaped = true,
                '\'' => self.quoting = Quoting::None,
                _ => {}
            },
            Quoting::Double => match c {
                '\\' => self.escaped = true,
                '"' => self.quoting = Quoting::None,
                '`' => return Err(no_substitution()),
                '(' | '{' if prev == Some('$') => return Err(no_substitution()),
                _ => {}
            },
            Quoting::None => match c {
                '\\' => self.escaped = true,
                '\'' if prev == Some('$') => {
                    self.quoting = Quoting::AnsiC;
                    self.in_word = true;
                }
                '\'' => {
                    self.quoting = Quoting::Single;
                    self.in_word = true;
                }
                '"' => {
                    self.quoting = Quoting::Double;
                    self.in_word = true;
                }
                '`' => return Err(no_substitution()),
                '(' | '{' if prev == Some('$') => return Err(no_substitution()),
                '<' if prev == Some('<') => {
                    return Err("here-documents (<<) are not allowed in a shell-format \
                                template: their quoting differs; assign variables instead"
                        .into());
                }
                '#' if !self.in_word => self.quoting = Quoting::Comment,
                ' ' | '\t' | '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>' => self.end_word(),
                _ => {
                    self.word.push(c);
                    self.in_word = true;
                }
            },
        }
        Ok(())
    }

    fn end_word(&mut self) {
        self.word.clear();
        self.in_word = false;
    }

    /// True if the current word is an assignment's value: it starts `NAME=`.
    fn in_assignment(&self) -> bool {
        let Some((name, _)) = self.word.split_once('=') else {
            return false;
        };
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    }

    /// Where the current word stands, as far as blocks must keep it.
    fn word_kind(&self) -> WordKind {
        if !self.in_word {
            WordKind::Between
        } else if self.in_assignment() {
            WordKind::Assignment
        } else {
            WordKind::Other
        }
    }

    /// A value was written here (a quoted word): it continues the current word.
    fn value(&mut self) {
        self.word.push('v');
        self.in_word = true;
        self.prev = Some('\'');
    }
}

/// Where the literal text stands between words: a block's body may be repeated or skipped, so
/// it must leave this as it found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WordKind {
    /// Between words.
    Between,
    /// In the value of an assignment (`NAME=…`).
    Assignment,
    /// In any other word.
    Other,
}

impl WordKind {
    fn describe(self) -> &'static str {
        match self {
            WordKind::Between => "between words",
            WordKind::Assignment => "in an assignment's value",
            WordKind::Other => "in a word",
        }
    }
}

fn no_substitution() -> String {
    "command substitutions ($(…), backquotes) and parameter expansions (${…}) are not allowed \
     in a shell-format template: values are assigned, never run; compute in the script instead"
        .into()
}

/// What a `{{…}}` expression is, by its first token.
enum Mustache<'a> {
    /// `{{! … }}`: nothing rendered.
    Comment,
    /// `{{#…}}`, `{{^…}}`: a block opens.
    Open,
    /// `{{else …}}`: a block's other branch.
    Else,
    /// `{{/…}}`: a block closes.
    Close,
    /// `{{shell_quote …}}`.
    Quoted,
    /// Anything else that renders a value: `{{name}}`, `{{{name}}}`, `{{> partial}}`, `{{eq a b}}`.
    Raw(&'a str),
}

fn classify(inner: &str, triple: bool) -> Mustache<'_> {
    let body = inner.trim();
    if body.starts_with('!') {
        return Mustache::Comment;
    }
    if triple {
        return Mustache::Raw(body);
    }
    if body.starts_with(['#', '^']) {
        return Mustache::Open;
    }
    if body.starts_with('/') {
        return Mustache::Close;
    }
    if body == "else" || body.starts_with("else ") {
        return Mustache::Else;
    }
    if body
        .strip_prefix("shell_quote")
        .is_some_and(|rest| rest.starts_with(char::is_whitespace) && !rest.trim().is_empty())
    {
        return Mustache::Quoted;
    }
    Mustache::Raw(body)
}

/// Checks a template of format `shell` against the rule in the module documentation; the
/// first violation names its line and column and says what to write instead.
pub fn check_template(src: &str) -> std::result::Result<(), Violation> {
    let mut lx = Lexer::new();
    // Open blocks: their tag and where the text stood when they opened.
    let mut blocks: Vec<(String, WordKind)> = Vec::new();
    let (mut line, mut column) = (1usize, 1usize);
    let mut rest = src;
    let at = |line: usize, column: usize, message: String| Violation {
        line,
        column,
        message,
    };
    while !rest.is_empty() {
        // `\{{` renders `{{` as text (Handlebars' escape).
        if let Some(after) = rest.strip_prefix("\\{{") {
            for c in "{{".chars() {
                lx.push(c).map_err(|m| at(line, column, m))?;
            }
            column += 3;
            rest = after;
            continue;
        }
        if rest.starts_with("{{") {
            let (open, close) = if rest.starts_with("{{{") {
                ("{{{", "}}}")
            } else {
                ("{{", "}}")
            };
            let inner_start = open.len();
            let end = if rest[inner_start..].starts_with("!--") {
                rest[inner_start..]
                    .find("--}}")
                    .map(|i| inner_start + i + 2)
            } else {
                rest[inner_start..].find(close).map(|i| inner_start + i)
            };
            let Some(end) = end else {
                return Err(at(line, column, "a '{{' is never closed".into()));
            };
            let inner = &rest[inner_start..end];
            if inner.starts_with('~') || inner.ends_with('~') {
                return Err(at(
                    line,
                    column,
                    "whitespace control ({{~ … ~}}) is not allowed in a shell-format template: \
                     it joins words the check tells apart"
                        .into(),
                ));
            }
            let kind = classify(inner, open == "{{{");
            match kind {
                Mustache::Comment => {}
                Mustache::Open | Mustache::Else | Mustache::Close => {
                    if lx.quoting != Quoting::None || lx.escaped {
                        return Err(at(
                            line,
                            column,
                            format!(
                                "'{{{{{}}}}}' stands {}: block helpers must stand outside \
                                 quotes and comments, so what they repeat or skip stays \
                                 balanced",
                                inner.trim(),
                                lx.quoting.describe()
                            ),
                        ));
                    }
                    let now = lx.word_kind();
                    if let Mustache::Open = kind {
                        blocks.push((inner.trim().to_string(), now));
                    } else {
                        let Some((tag, then)) = blocks.last().cloned() else {
                            return Err(at(
                                line,
                                column,
                                format!("'{{{{{}}}}}' closes no block", inner.trim()),
                            ));
                        };
                        if now != then {
                            return Err(at(
                                line,
                                column,
                                format!(
                                    "'{{{{{}}}}}' stands {} but its block '{{{{{tag}}}}}'                                      opened {}: a block's text may be repeated or skipped, so                                      it must end where it began (a repeated value must not                                      start a new word, which the shell could run)",
                                    inner.trim(),
                                    now.describe(),
                                    then.describe()
                                ),
                            ));
                        }
                        if let Mustache::Close = kind {
                            blocks.pop();
                        }
                    }
                }
                Mustache::Quoted => {
                    if lx.quoting != Quoting::None || lx.escaped {
                        return Err(at(
                            line,
                            column,
                            format!(
                                "'{{{{{}}}}}' stands {}: write the value outside quotes \
                                 (NAME={{{{shell_quote x}}}}), where its own quotes protect it",
                                inner.trim(),
                                lx.quoting.describe()
                            ),
                        ));
                    }
                    if !lx.in_assignment() {
                        return Err(at(
                            line,
                            column,
                            format!(
                                "'{{{{{}}}}}' is not the value of an assignment: in a \
                                 shell-format template values only appear as NAME={{{{shell_quote \
                                 x}}}} (a quoted word elsewhere could be run as a command)",
                                inner.trim()
                            ),
                        ));
                    }
                    lx.value();
                }
                Mustache::Raw(body) => {
                    return Err(at(
                        line,
                        column,
                        format!(
                            "'{open}{body}{close}' interpolates a value without shell quoting: \
                             in a shell-format template write NAME={{{{shell_quote {body}}}}}"
                        ),
                    ));
                }
            }
            let taken = &rest[..end + close.len()];
            for c in taken.chars() {
                if c == '\n' {
                    line += 1;
                    column = 1;
                } else {
                    column += 1;
                }
            }
            rest = &rest[end + close.len()..];
            continue;
        }
        let c = rest.chars().next().expect("rest is not empty");
        lx.push(c).map_err(|m| at(line, column, m))?;
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
        rest = &rest[c.len_utf8()..];
    }
    match lx.quoting {
        Quoting::None | Quoting::Comment => Ok(()),
        q => Err(at(
            line,
            column,
            format!("the template ends {}: close them", q.describe()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_as_one_word() {
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("$(id)`id`\n"), "'$(id)`id`\n'");
    }

    #[test]
    fn accepts_quoted_assignments_and_blocks() {
        for ok in [
            "# a comment with text only\nA={{shell_quote a}}\n",
            "A={{shell_quote a}}:{{shell_quote b}}\n",
            "LIST={{#each peers.quorum}}{{shell_quote this.address}}:{{shell_quote this.port}}{{#unless @last}},{{/unless}}{{/each}}\n",
            "{{#each p}}\n{{#if (eq this.component \"x\")}}\nX={{shell_quote this.host}}\n{{/if}}\n{{/each}}\n",
            "export A={{shell_quote a}}\n",
            "A='literal' B={{shell_quote b}}\n",
            "{{!-- a comment {{x}} --}}\nA={{shell_quote a}}\n",
            "{{! short }}A={{shell_quote a}}\n",
            "A={{#if x}}yes{{else}}no{{/if}}\n",
            "A=\\{{literal}}\n",
        ] {
            assert_eq!(check_template(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_unquoted_or_misplaced_values_naming_where() {
        for (bad, line, needle) in [
            ("A={{a}}\n", 1, "without shell quoting"),
            ("# x\nA=\"{{a}}\"\n", 2, "without shell quoting"),
            ("A=\"{{shell_quote a}}\"\n", 1, "inside double quotes"),
            ("A='{{shell_quote a}}'\n", 1, "inside single quotes"),
            ("# note {{shell_quote a}}\n", 1, "inside a # comment"),
            ("# {{host}}\n", 1, "without shell quoting"),
            ("{{shell_quote a}}\n", 1, "not the value of an assignment"),
            (
                "echo {{shell_quote a}}\n",
                1,
                "not the value of an assignment",
            ),
            ("A={{{a}}}\n", 1, "without shell quoting"),
            ("{{> part}}\n", 1, "without shell quoting"),
            ("A={{eq a b}}\n", 1, "without shell quoting"),
            ("A='x{{#if a}}y{{/if}}'\n", 1, "block helpers"),
            ("A=$(echo x)\n", 1, "command substitutions"),
            ("A=\"`id`\"\n", 1, "command substitutions"),
            ("A=${B}\n", 1, "parameter expansions"),
            ("cat <<EOF\n", 1, "here-documents"),
            ("A={{~shell_quote a}}\n", 1, "whitespace control"),
            ("A='open\n", 2, "ends inside single quotes"),
            ("A={{shell_quote a\n", 1, "never closed"),
            (
                "A={{#each xs}}{{shell_quote this}} {{/each}}\n",
                1,
                "must end where it began",
            ),
            ("{{#if a}}A=x{{/if}}\n", 1, "must end where it began"),
        ] {
            let v = check_template(bad).expect_err(bad);
            assert_eq!(v.line, line, "{bad}: {v}");
            assert!(v.message.contains(needle), "{bad}: {v}");
        }
    }
}
