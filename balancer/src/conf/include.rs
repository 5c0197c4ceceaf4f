//! `include` as nginx follows it: a pattern (globs allowed; relative ones
//! from the main file's directory, as nginx resolves them against its
//! configuration prefix) replaced by the directives of every file it
//! names, in name order. Pure: the files come from a [`Sources`], which
//! reads them from disk ([`Files`]) or from an `nginx -T` dump ([`Dump`]).

use std::path::{Path, PathBuf};

use super::syntax::{parse, Directive};
use super::ConfError;

/// Where included files come from.
pub trait Sources {
    /// The files `pattern` names, as (name, text), in name order. A glob
    /// that matches nothing names none; a plain path that is not there is
    /// an error, as nginx makes it.
    fn read(&mut self, pattern: &str) -> Result<Vec<(String, String)>, String>;
}

/// nginx gives up on includes nested deeper than this (a loop).
const DEPTH: usize = 32;

/// `top` with every `include` replaced by what it names, recursively.
pub fn expand(top: Vec<Directive>, sources: &mut dyn Sources) -> Result<Vec<Directive>, ConfError> {
    expand_at(top, sources, 0)
}

fn expand_at(
    directives: Vec<Directive>,
    sources: &mut dyn Sources,
    depth: usize,
) -> Result<Vec<Directive>, ConfError> {
    let mut out = Vec::with_capacity(directives.len());
    for mut d in directives {
        if d.name == "include" && d.block.is_none() {
            let err = |m: String| ConfError::new(&d.file, d.line, "include", m);
            let [pattern] = d.args.as_slice() else {
                return Err(err(format!("takes 1 argument, not {}", d.args.len())));
            };
            if depth >= DEPTH {
                return Err(err(format!(
                    "nested more than {DEPTH} deep: is {pattern} including itself?"
                )));
            }
            for (name, text) in sources.read(pattern).map_err(err)? {
                let included = parse(&name, &text)?;
                out.extend(expand_at(included, sources, depth + 1)?);
            }
            continue;
        }
        if let Some(block) = d.block.take() {
            d.block = Some(expand_at(block, sources, depth)?);
        }
        out.push(d);
    }
    Ok(out)
}

/// Whether a path holds glob characters nginx expands.
fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// Files on disk, relative patterns from `dir` (the main file's directory).
pub struct Files {
    pub dir: PathBuf,
}

impl Files {
    fn path(&self, pattern: &str) -> PathBuf {
        let p = Path::new(pattern);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }
}

impl Sources for Files {
    fn read(&mut self, pattern: &str) -> Result<Vec<(String, String)>, String> {
        let path = self.path(pattern);
        let paths = if is_glob(pattern) {
            let text = path.display().to_string();
            let mut found: Vec<PathBuf> = glob::glob(&text)
                .map_err(|e| format!("{text}: not a usable pattern: {e}"))?
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .collect();
            found.sort();
            found
        } else {
            vec![path]
        };
        paths
            .into_iter()
            .map(|p| {
                let name = p.display().to_string();
                std::fs::read_to_string(&p)
                    .map(|text| (name.clone(), text))
                    .map_err(|e| format!("cannot read \"{name}\": {e}"))
            })
            .collect()
    }
}

/// The files of an `nginx -T` dump: each after its `# configuration file
/// PATH:` line. The first is the main one.
pub struct Dump {
    pub files: Vec<(String, String)>,
    /// The main file's directory, for relative includes.
    pub dir: String,
}

impl Dump {
    /// The files of `text` when it is an `nginx -T` dump, else `None`.
    pub fn of(text: &str) -> Option<Dump> {
        const MARK: &str = "# configuration file ";
        let mut files: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            if let Some(name) = line.strip_prefix(MARK).and_then(|l| l.strip_suffix(':')) {
                files.push((name.to_string(), String::new()));
            } else if let Some((_, body)) = files.last_mut() {
                body.push_str(line);
                body.push('\n');
            }
        }
        let dir = files.first().map(|(main, _)| {
            Path::new(main)
                .parent()
                .map_or(String::new(), |d| d.display().to_string())
        })?;
        Some(Dump { files, dir })
    }
}

impl Sources for Dump {
    fn read(&mut self, pattern: &str) -> Result<Vec<(String, String)>, String> {
        let full = if pattern.starts_with('/') {
            pattern.to_string()
        } else {
            format!("{}/{pattern}", self.dir)
        };
        if !is_glob(pattern) {
            return self
                .files
                .iter()
                .find(|(n, _)| *n == full)
                .map(|f| vec![f.clone()])
                .ok_or_else(|| format!("\"{full}\" is not in the nginx -T dump"));
        }
        let glob = glob::Pattern::new(&full).map_err(|e| format!("{full}: {e}"))?;
        let mut found: Vec<(String, String)> = self
            .files
            .iter()
            .filter(|(n, _)| glob.matches(n))
            .cloned()
            .collect();
        found.sort();
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files in memory, for the expansion alone.
    struct Memory(Vec<(&'static str, &'static str)>);

    impl Sources for Memory {
        fn read(&mut self, pattern: &str) -> Result<Vec<(String, String)>, String> {
            let glob = glob::Pattern::new(pattern).unwrap();
            let mut found: Vec<(String, String)> = self
                .0
                .iter()
                .filter(|(n, _)| glob.matches(n))
                .map(|(n, t)| (n.to_string(), t.to_string()))
                .collect();
            found.sort();
            if found.is_empty() && !is_glob(pattern) {
                return Err(format!("cannot read \"{pattern}\""));
            }
            Ok(found)
        }
    }

    fn names(ds: &[Directive]) -> Vec<String> {
        ds.iter()
            .map(|d| format!("{}@{}:{}", d.name, d.file, d.line))
            .collect()
    }

    #[test]
    fn includes_are_spliced_in_name_order_and_nest() {
        let mut files = Memory(vec![
            (
                "conf.d/b.conf",
                "upstream b { server 127.0.0.1:2; }\ninclude snippets/x.conf;",
            ),
            ("conf.d/a.conf", "upstream a { server 127.0.0.1:1; }"),
            ("snippets/x.conf", "log_format x '$status';"),
        ]);
        let top = parse(
            "nginx.conf",
            "http {\n  include conf.d/*.conf;\n  include none/*.conf;\n}\n",
        )
        .unwrap();
        let out = expand(top, &mut files).unwrap();
        let http = out[0].block.as_ref().unwrap();
        assert_eq!(
            names(http),
            [
                "upstream@conf.d/a.conf:1",
                "upstream@conf.d/b.conf:1",
                "log_format@snippets/x.conf:1"
            ]
        );
        let top = parse("nginx.conf", "include missing.conf;").unwrap();
        let e = expand(top, &mut files).unwrap_err().to_string();
        assert_eq!(e, "nginx.conf:1: include: cannot read \"missing.conf\"");
    }

    #[test]
    fn an_include_loop_is_an_error_not_a_hang() {
        let mut files = Memory(vec![("self.conf", "include self.conf;")]);
        let top = parse("nginx.conf", "include self.conf;").unwrap();
        let e = expand(top, &mut files).unwrap_err().to_string();
        assert!(e.contains("including itself"), "{e}");
    }

    #[test]
    fn an_nginx_t_dump_holds_its_files() {
        let dump = "nginx: the configuration file /etc/nginx/nginx.conf syntax is ok\n\
                    nginx: configuration file /etc/nginx/nginx.conf test is successful\n\
                    # configuration file /etc/nginx/nginx.conf:\n\
                    http {\n    include /etc/nginx/conf.d/*.conf;\n}\n\n\
                    # configuration file /etc/nginx/conf.d/ai.conf:\n\
                    upstream ai { server 127.0.0.1:9; }\n";
        let mut d = Dump::of(dump).unwrap();
        assert_eq!(d.files.len(), 2);
        assert_eq!(d.dir, "/etc/nginx");
        let (main, text) = d.files[0].clone();
        let out = expand(parse(&main, &text).unwrap(), &mut d).unwrap();
        let http = out[0].block.as_ref().unwrap();
        assert_eq!(names(http), ["upstream@/etc/nginx/conf.d/ai.conf:1"]);
        assert!(Dump::of("http { }").is_none(), "not a dump");
    }
}
