//! Normalisation of Junos curly-brace text to set-form lines (devices.md
//! §2.5), used to compare composed configurations with router transcripts.
//!
//! Tokens: quoted strings, `[ … ]` lists, `{`, `}`, `;` and newlines as
//! terminators; `/* */`, `##…` and `#…` comments are dropped. A statement
//! followed by `{` opens a block, any other statement is a leaf. Every leaf
//! or empty block becomes one line (enclosing headers + own tokens); `[ a b ]`
//! expands into one line per item; quotes are removed; the token after
//! `authentication-key`, `encrypted-password`, `secret`, `pre-shared-key`
//! becomes `<secret>`.

use std::collections::BTreeSet;

/// A token of Junos curly-brace text (shared with [`crate::device::config`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    Word(String),
    List(Vec<String>),
    Open,
    Close,
    End,
}

const SECRET_KEYWORDS: [&str; 4] = [
    "authentication-key",
    "encrypted-password",
    "secret",
    "pre-shared-key",
];

/// Splits Junos curly-brace text into tokens (comments dropped, quotes removed).
pub(crate) fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut list: Option<Vec<String>> = None;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                if list.is_none() {
                    out.push(Token::End);
                }
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    i += 1;
                }
                i += 2;
            }
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '"' => {
                i += 1;
                let mut s = String::new();
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    s.push(chars[i]);
                    i += 1;
                }
                i += 1;
                push_word(&mut out, &mut list, s);
            }
            '[' => {
                list = Some(Vec::new());
                i += 1;
            }
            ']' => {
                if let Some(items) = list.take() {
                    out.push(Token::List(items));
                }
                i += 1;
            }
            '{' | '}' | ';' => {
                if let Some(items) = list.take() {
                    out.push(Token::List(items));
                }
                out.push(match c {
                    '{' => Token::Open,
                    '}' => Token::Close,
                    _ => Token::End,
                });
                i += 1;
            }
            _ => {
                let mut s = String::new();
                while i < chars.len() {
                    let d = chars[i];
                    if d.is_whitespace() || matches!(d, '{' | '}' | ';' | '[' | ']' | '"') {
                        break;
                    }
                    s.push(d);
                    i += 1;
                }
                push_word(&mut out, &mut list, s);
            }
        }
    }
    if let Some(items) = list.take() {
        out.push(Token::List(items));
    }
    out
}

fn push_word(out: &mut Vec<Token>, list: &mut Option<Vec<String>>, w: String) {
    match list {
        Some(items) => items.push(w),
        None => out.push(Token::Word(w)),
    }
}

/// Expands a statement (tokens, lists) into its lines' token vectors.
pub(crate) fn expand(tokens: &[Token]) -> Vec<Vec<String>> {
    let mut lines: Vec<Vec<String>> = vec![Vec::new()];
    for t in tokens {
        match t {
            Token::Word(w) => lines.iter_mut().for_each(|l| l.push(w.clone())),
            Token::List(items) => {
                lines = lines
                    .iter()
                    .flat_map(|l| {
                        items.iter().map(move |it| {
                            let mut l = l.clone();
                            l.push(it.clone());
                            l
                        })
                    })
                    .collect();
            }
            _ => {}
        }
    }
    lines
}

fn mask_secrets(tokens: &mut [String]) {
    for i in 1..tokens.len() {
        if SECRET_KEYWORDS.contains(&tokens[i - 1].as_str()) {
            tokens[i] = "<secret>".into();
        }
    }
}

struct Flattener {
    headers: Vec<Vec<String>>,
    /// per open block: whether anything was emitted inside it
    filled: Vec<bool>,
    lines: Vec<String>,
}

impl Flattener {
    fn emit(&mut self, own: &[String]) {
        let mut tokens: Vec<String> = self.headers.iter().flatten().cloned().collect();
        tokens.extend_from_slice(own);
        if tokens.is_empty() {
            return;
        }
        mask_secrets(&mut tokens);
        self.lines.push(tokens.join(" "));
        self.filled.iter_mut().for_each(|f| *f = true);
    }
}

/// Normalised set lines of Junos text, in order of appearance (duplicates
/// kept; see [`set_line_set`] for the comparison form).
pub fn set_lines(text: &str) -> Vec<String> {
    let mut f = Flattener {
        headers: Vec::new(),
        filled: Vec::new(),
        lines: Vec::new(),
    };
    let mut stmt: Vec<Token> = Vec::new();
    for tok in tokenize(text) {
        match tok {
            Token::Word(_) | Token::List(_) => stmt.push(tok),
            Token::End => {
                for l in expand(&stmt) {
                    if !l.is_empty() {
                        f.emit(&l);
                    }
                }
                stmt.clear();
            }
            Token::Open => {
                // a header with a list is unusual; use its first expansion
                let header = expand(&stmt).into_iter().next().unwrap_or_default();
                f.headers.push(header);
                f.filled.push(false);
                stmt.clear();
            }
            Token::Close => {
                for l in expand(&stmt) {
                    if !l.is_empty() {
                        f.emit(&l);
                    }
                }
                stmt.clear();
                let filled = f.filled.pop().unwrap_or(true);
                if !filled {
                    f.emit(&[]);
                }
                f.headers.pop();
            }
        }
    }
    for l in expand(&stmt) {
        if !l.is_empty() {
            f.emit(&l);
        }
    }
    f.lines
}

/// The set of normalised lines (the comparison form).
pub fn set_line_set(text: &str) -> BTreeSet<String> {
    set_lines(text).into_iter().collect()
}

/// The set lines **added** by a `show | compare` transcript: `+` lines
/// parsed relative to the preceding `[edit a b c]` header; context lines are
/// ignored.
pub fn added_set_lines(transcript: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut header = String::new();
    let mut body = String::new();
    let flush = |header: &str, body: &mut String, out: &mut Vec<String>| {
        if !body.is_empty() {
            let prefix: Vec<String> = if header.is_empty() {
                Vec::new()
            } else {
                set_lines(header).into_iter().take(1).collect()
            };
            for l in set_lines(body) {
                out.push(match prefix.first() {
                    Some(p) => format!("{p} {l}"),
                    None => l,
                });
            }
            body.clear();
        }
    };
    for line in transcript.lines() {
        let t = line.trim();
        if let Some(inner) = t.strip_prefix("[edit").and_then(|r| r.strip_suffix(']')) {
            flush(&header, &mut body, &mut out);
            header = inner.trim().to_string();
        } else if let Some(added) = line.strip_prefix('+') {
            body.push_str(added);
            body.push('\n');
        }
    }
    flush(&header, &mut body, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_blocks_leaves_and_lists() {
        let text = "system {\n  host-name r1;\n  name-server [ 1.1.1.1 8.8.8.8 ];\n  empty { }\n}\nfoo bar\n";
        assert_eq!(
            set_lines(text),
            vec![
                "system host-name r1",
                "system name-server 1.1.1.1",
                "system name-server 8.8.8.8",
                "system empty",
                "foo bar"
            ]
        );
    }

    #[test]
    fn comments_quotes_and_secrets() {
        let text = "/* c */ a { ## x\n description \"two words\"; # y\n neighbor 10.0.0.1 authentication-key \"s3cr3t\"; }";
        assert_eq!(
            set_lines(text),
            vec![
                "a description two words",
                "a neighbor 10.0.0.1 authentication-key <secret>"
            ]
        );
    }

    #[test]
    fn newline_terminates_a_statement() {
        assert_eq!(
            set_lines("unit 1 {\napply-groups G\nvlan-id 1;\n }"),
            vec!["unit 1 apply-groups G", "unit 1 vlan-id 1"]
        );
    }

    #[test]
    fn transcript_added_lines() {
        let t = "[edit interfaces ge-0/0/1]\n+    unit 5 {\n+        vlan-id 5;\n+    }\n[edit]\n  context;\n";
        assert_eq!(
            added_set_lines(t),
            vec!["interfaces ge-0/0/1 unit 5 vlan-id 5"]
        );
    }
}
