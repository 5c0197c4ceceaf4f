//! Flag errors in one line, as every lbkit tool reports bad input.

use clap::error::ErrorKind;
use clap::Parser;

/// The command's flags, or the one line that says what is wrong with them:
/// clap's error with its tip or the values allowed, without the usage
/// block. Help and version print as usual and exit.
pub fn parse_flags<T: Parser>() -> Result<T, String> {
    parse_flags_from(std::env::args_os())
}

/// [`parse_flags`] on these arguments (the first is the command's name): a
/// subcommand's, say.
pub fn parse_flags_from<T: Parser>(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Result<T, String> {
    T::try_parse_from(args).or_else(|e| match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => e.exit(),
        _ => Err(one_line(&e.render().to_string())),
    })
}

fn one_line(text: &str) -> String {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("bad arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let rest: Vec<&str> = lines.collect();
    // "the following required arguments were not provided:" lists them
    // on the lines after, before the usage.
    let listed: Vec<&str> = match first.ends_with(':') {
        true => rest
            .iter()
            .take_while(|l| !l.starts_with("Usage:"))
            .copied()
            .collect(),
        false => Vec::new(),
    };
    let listed = if listed.is_empty() {
        String::new()
    } else {
        format!(" {}", listed.join(", "))
    };
    // What helps: a similar flag, or the values allowed.
    let hints: String = rest
        .iter()
        .filter_map(|l| {
            l.strip_prefix("tip: ")
                .or(l.strip_prefix('[').and_then(|l| l.strip_suffix(']')))
        })
        .map(|h| format!("; {h}"))
        .collect();
    format!("{first}{listed}{hints} (see --help)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_errors_keep_their_first_line_and_hints() {
        let clap = "error: unexpected argument '--thresold' found\n\n  tip: a similar argument exists: '--threshold'\n\nUsage: loadgen [OPTIONS] [URL]\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(clap),
            "unexpected argument '--thresold' found; a similar argument exists: '--threshold' (see --help)"
        );
        let values = "error: invalid value 'xml' for '--output <FORMAT>'\n  [possible values: text, json]\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(values),
            "invalid value 'xml' for '--output <FORMAT>'; possible values: text, json (see --help)"
        );
        let required = "error: the following required arguments were not provided:\n  --shards <N>\n\nUsage: loadgen --shard-from-env --shards <N> [URL]\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(required),
            "the following required arguments were not provided: --shards <N> (see --help)"
        );
    }
}
