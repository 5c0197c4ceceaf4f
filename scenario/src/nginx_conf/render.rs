//! Directives back to nginx.conf text, with where each line came from (so
//! nginx's messages about the generated file name the user's). Pure.

use std::sync::Arc;

use balancer::conf::Directive;

/// The directives as nginx.conf text, and where each of its lines came from:
/// `origins[n - 1]` is the file and line of the directive on line `n`
/// (`lbkit`, 0 for what the rewrite added).
pub fn render_traced(directives: &[Directive]) -> (String, Vec<(Arc<str>, usize)>) {
    let mut out = String::new();
    let mut origins = Vec::new();
    render_into(directives, 0, &mut out, &mut origins);
    (out, origins)
}

fn render_into(
    directives: &[Directive],
    depth: usize,
    out: &mut String,
    origins: &mut Vec<(Arc<str>, usize)>,
) {
    for d in directives {
        let from = (d.file.clone(), d.line);
        let start = out.len();
        out.push_str(&"    ".repeat(depth));
        out.push_str(&d.name);
        for a in &d.args {
            out.push(' ');
            out.push_str(&quote(a));
        }
        match &d.block {
            Some(inner) => {
                out.push_str(" {\n");
                push_origins(origins, &from, &out[start..]);
                render_into(inner, depth + 1, out, origins);
                out.push_str(&"    ".repeat(depth));
                out.push_str("}\n");
                origins.push(from);
            }
            None => {
                out.push_str(";\n");
                push_origins(origins, &from, &out[start..]);
            }
        }
    }
}

/// One origin per line the directive took (an argument may hold newlines).
fn push_origins(origins: &mut Vec<(Arc<str>, usize)>, from: &(Arc<str>, usize), text: &str) {
    for _ in 0..text.matches('\n').count() {
        origins.push(from.clone());
    }
}

/// An argument as nginx reads it back: bare when it can be, else quoted.
fn quote(arg: &str) -> String {
    let bare = !arg.is_empty()
        && !arg.contains(|c: char| {
            c.is_whitespace() || matches!(c, ';' | '{' | '}' | '"' | '\'' | '#')
        });
    if bare {
        return arg.to_string();
    }
    let mut out = String::from("'");
    for c in arg.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}
