//! Values inside NRRD header fields: vectors, data file names and patterns, escapes.

use std::path::{Path, PathBuf};

use super::header::{Ctx, DataFiles};
use crate::io::IoError;

/// The `data file` field: one name, `LIST [subdim]` with the names on the lines that follow,
/// or `<format> <min> <max> <step> [subdim]` with a printf-style `%d`.
pub(super) fn parse_data_file(
    value: &str,
    list: Option<Vec<String>>,
    cx: &Ctx,
    dimension: usize,
) -> Result<DataFiles, IoError> {
    let words: Vec<&str> = value.split_whitespace().collect();
    let subdim = |w: Option<&&str>| -> Result<Option<usize>, IoError> {
        match w {
            None => Ok(None),
            Some(s) => s
                .parse::<usize>()
                .ok()
                .filter(|d| (1..=dimension).contains(d))
                .map(Some)
                .ok_or_else(|| cx.field("data file", value, "the sub-dimension is out of range")),
        }
    };
    if let Some(names) = list {
        let names: Vec<String> = names.into_iter().filter(|n| !n.is_empty()).collect();
        if names.is_empty() {
            return Err(cx.field("data file", value, "LIST is followed by no file names"));
        }
        return Ok(DataFiles {
            names,
            subdim: subdim(words.get(1))?,
        });
    }
    if words.len() >= 4 && words[0].contains('%') {
        let num = |s: &str| s.parse::<i64>().ok();
        let (Some(min), Some(max), Some(step)) = (num(words[1]), num(words[2]), num(words[3]))
        else {
            return Err(cx.field("data file", value, "expected <format> <min> <max> <step>"));
        };
        // i128: the arithmetic of any i64 min, max and step fits.
        let (lo, hi, by) = (min as i128, max as i128, step as i128);
        if by == 0 || (hi - lo).signum() * by.signum() < 0 {
            return Err(cx.field("data file", value, "the step never reaches max"));
        }
        let count = (hi - lo) / by + 1;
        if count > 1_000_000 {
            return Err(cx.field("data file", value, "more than a million data files"));
        }
        let names = (0..count)
            .map(|n| format_pattern(words[0], (lo + n * by) as i64))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| cx.field("data file", value, "expected one %d-like conversion"))?;
        return Ok(DataFiles {
            names,
            subdim: subdim(words.get(4))?,
        });
    }
    Ok(DataFiles {
        names: vec![value.to_string()],
        subdim: None,
    })
}

/// Fills a printf-style integer conversion (`%d`, `%03d`, `%i`, `%u`) with `n`.
fn format_pattern(pattern: &str, n: i64) -> Option<String> {
    let start = pattern.find('%')?;
    let rest = &pattern[start + 1..];
    let digits_end = rest.find(|c: char| !c.is_ascii_digit())?;
    let spec = &rest[..digits_end];
    if !matches!(rest.as_bytes()[digits_end], b'd' | b'i' | b'u') {
        return None;
    }
    let width: usize = if spec.is_empty() {
        0
    } else {
        spec.parse().ok()?
    };
    if width > 32 {
        return None;
    }
    let number = if spec.starts_with('0') {
        format!("{n:0width$}")
    } else {
        format!("{n:width$}")
    };
    let tail = &rest[digits_end + 1..];
    if tail.contains('%') {
        return None;
    }
    Some(format!("{}{}{}", &pattern[..start], number, tail))
}

/// `(1,0,0) none (0, 2.5, 0)` → entries; `None` when the text is not such a list.
pub fn parse_vector_list(text: &str) -> Option<Vec<Option<Vec<f64>>>> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('(') {
            let close = inner.find(')')?;
            let values = inner[..close]
                .split(',')
                .map(|t| t.trim().parse::<f64>().ok())
                .collect::<Option<Vec<_>>>()?;
            out.push(Some(values));
            rest = inner[close + 1..].trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            if &rest[..end] != "none" {
                return None;
            }
            out.push(None);
            rest = rest[end..].trim_start();
        }
    }
    Some(out)
}

pub(super) fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('\\') => out.push('\\'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Inverse of the reader's unescaping for `key:=value` text.
pub fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// The folder detached data files are named relative to.
pub fn resolve(base_dir: &Path, name: &str) -> PathBuf {
    let p = Path::new(name);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base_dir.join(p)
    }
}
