//! A scenario's requests: its weighted `[[load.request]]` mix with
//! templates, or the request lines of an access log to replay. Files they
//! name are read here, before anything starts, relative to the scenario.

use std::time::Duration;

use analyzer::formats::{self, Reader};
use hyper::header::{HeaderName, HeaderValue};
use hyper::Method;

use super::spec::{ConversationSpec, DatasetSpec, Loaded, SpecError};
use engine::dataset;
use engine::Text;
use engine::Variant;

/// The requests to send and, for a timed replay, when each is due.
pub struct Mix {
    pub variants: Vec<Variant>,
    pub replay_due: Option<Vec<Duration>>,
}

pub fn build(loaded: &Loaded) -> Result<Mix, SpecError> {
    let load = &loaded.scenario.load;
    if let Some(log) = &load.replay {
        return replay(loaded, log, load.speed);
    }
    let dir = loaded.file.parent().unwrap_or(std::path::Path::new("."));
    if let Some(c) = &load.conversations {
        return conversations(loaded, c);
    }
    if let Some(d) = &load.dataset {
        return dataset(loaded, dir, d);
    }
    let mut read_lines = |name: &str| -> Result<Vec<String>, String> {
        let text = std::fs::read_to_string(dir.join(name)).map_err(|e| format!("{name}: {e}"))?;
        Ok(text
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    };
    let mut variants = Vec::new();
    for r in &load.requests_mix {
        let spec = r.get_ref();
        let err = |why: String| loaded.error_at(Some(r.span()), format!("[[load.request]] {why}"));
        let method =
            Method::from_bytes(spec.method.as_bytes()).map_err(|_| err("method".into()))?;
        let path =
            Text::parse(&spec.path, &mut read_lines).map_err(|e| err(format!("path: {e}")))?;
        let mut headers = Vec::new();
        let mut header = |name: &str, value: &str| -> Result<(), SpecError> {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| err(format!("headers: {name:?} is not a header name")))?;
            let v = HeaderValue::from_str(value)
                .map_err(|_| err(format!("headers.{name}: not a header value")))?;
            headers.push((n, v));
            Ok(())
        };
        for (name, value) in &spec.headers {
            header(name, value)?;
        }
        let body_text = match (&spec.json, &spec.body, &spec.body_file) {
            (Some(json), ..) => {
                if !spec
                    .headers
                    .keys()
                    .any(|k| k.eq_ignore_ascii_case("content-type"))
                {
                    header("content-type", "application/json")?;
                }
                Some(to_json(json).to_string())
            }
            (_, Some(body), _) => Some(body.clone()),
            (.., Some(file)) => Some(
                std::fs::read_to_string(dir.join(file))
                    .map_err(|e| err(format!("body_file: {file}: {e}")))?,
            ),
            _ => None,
        };
        if spec.stream {
            header("accept", "text/event-stream")?;
        }
        let body = body_text
            .map(|b| Text::parse(&b, &mut read_lines).map_err(|e| err(format!("body: {e}"))))
            .transpose()?;
        variants.push(Variant {
            method,
            path,
            headers,
            body,
            weight: spec.weight.max(1),
        });
    }
    Ok(Mix {
        variants,
        replay_due: None,
    })
}

/// `[load.conversations]`: every turn of every conversation, in the order
/// that sends each turn after the one before it.
fn conversations(
    loaded: &Loaded,
    spec: &toml::Spanned<ConversationSpec>,
) -> Result<Mix, SpecError> {
    let c = spec.get_ref();
    let err =
        |why: String| loaded.error_at(Some(spec.span()), format!("[load.conversations] {why}"));
    let talks = dataset::Conversations {
        count: c.count,
        turns: c.turns,
        system_tokens: c.system_tokens,
        user_tokens: c.user_tokens,
        answer_tokens: c.answer_tokens,
        seed: c.seed,
    }
    .records();
    let header = HeaderName::from_bytes(c.header.as_bytes())
        .map_err(|_| err(format!("header: {:?} is not a header name", c.header)))?;
    let each = talks.iter().map(|(id, r)| (Some(id.as_str()), r));
    let variants = dataset::variants(each, &c.path, &c.model, c.stream, Some(&header))
        .map_err(|e| err(e.0))?;
    Ok(Mix {
        variants,
        replay_due: None,
    })
}

/// `[load.dataset]`: a file's records, or vLLM's synthetic prompts.
fn dataset(
    loaded: &Loaded,
    dir: &std::path::Path,
    spec: &toml::Spanned<DatasetSpec>,
) -> Result<Mix, SpecError> {
    let d = spec.get_ref();
    let err = |why: String| loaded.error_at(Some(spec.span()), format!("[load.dataset] {why}"));
    let records = if d.file == "random" {
        dataset::Synthetic::checked(
            d.input_len,
            d.output_len,
            d.range_ratio,
            d.prefix_len,
            d.seed,
        )
        .map_err(|e| err(format!("{}: {}", e.key, e.why)))?
        .records(
            loaded
                .scenario
                .load
                .requests
                .unwrap_or(dataset::DEFAULT_PROMPTS),
        )
    } else {
        let synthetic = [
            d.input_len.is_some(),
            d.output_len.is_some(),
            d.range_ratio.is_some(),
            d.prefix_len.is_some(),
        ];
        if synthetic.iter().any(|s| *s) {
            return Err(err(
                "input_len, output_len, range_ratio and prefix_len go with file = \"random\""
                    .into(),
            ));
        }
        let bytes =
            std::fs::read(dir.join(&d.file)).map_err(|e| err(format!("file: {}: {e}", d.file)))?;
        dataset::parse(&bytes).map_err(|e| err(format!("{}: {}", d.file, e.0)))?
    };
    let each = records.iter().map(|r| (None, r));
    let variants =
        dataset::variants(each, &d.path, &d.model, d.stream, None).map_err(|e| err(e.0))?;
    Ok(Mix {
        variants,
        replay_due: None,
    })
}

/// A TOML value as the JSON it stands for.
fn to_json(v: &toml::Value) -> serde_json::Value {
    match v {
        toml::Value::String(s) => s.clone().into(),
        toml::Value::Integer(i) => (*i).into(),
        toml::Value::Float(f) => (*f).into(),
        toml::Value::Boolean(b) => (*b).into(),
        toml::Value::Datetime(d) => d.to_string().into(),
        toml::Value::Array(a) => a.iter().map(to_json).collect(),
        toml::Value::Table(t) => t.iter().map(|(k, v)| (k.clone(), to_json(v))).collect(),
    }
}

/// The request lines (`$request`) of an nginx-format log, in order, and
/// with `speed`, when each is due: the logged gaps divided by `speed`.
fn replay(loaded: &Loaded, log: &str, speed: Option<f64>) -> Result<Mix, SpecError> {
    let err = |why: String| loaded.error_at(None, format!("[load] replay: {why}"));
    let path = loaded
        .file
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join(log);
    let text =
        std::fs::read_to_string(&path).map_err(|e| err(format!("{}: {e}", path.display())))?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let sample: Vec<&str> = lines.iter().take(formats::SAMPLE_LINES).copied().collect();
    let chosen = formats::detect(&sample).map_err(|e| err(e.to_string()))?;
    let Reader::Nginx { format, .. } = &chosen.reader else {
        return Err(err(format!(
            "{log} is {}; replay reads nginx-format logs, which log $request",
            chosen.name
        )));
    };
    let Some(request) = format.var_index("request") else {
        return Err(err(format!(
            "{log}'s format ({}) has no $request to replay",
            chosen.name
        )));
    };
    if let Some(s) = speed.filter(|s| !(*s > 0.0 && s.is_finite())) {
        return Err(err(format!("speed = {s}: must be above 0")));
    }
    let mut variants = Vec::new();
    let mut times = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let bad = |why: &str| err(format!("{log}:{}: {why}", n + 1));
        let record = format.parse(line).map_err(|e| bad(&e.to_string()))?;
        let line_text = record.value(request).unwrap_or_default();
        let mut parts = line_text.split(' ');
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            return Err(bad(&format!("{line_text:?} is not a request line")));
        };
        let method = Method::from_bytes(method.as_bytes()).map_err(|_| bad("no HTTP method"))?;
        if !target.starts_with('/') {
            return Err(bad(&format!("{target:?} is not a path")));
        }
        variants.push(Variant {
            method,
            path: Text::literal(target),
            headers: Vec::new(),
            body: None,
            weight: 1,
        });
        if speed.is_some() {
            let at = chosen.reader.entry(line).ok().and_then(|e| e.at);
            times.push(at.ok_or_else(|| bad("no time to pace the replay by"))?);
        }
    }
    if variants.is_empty() {
        return Err(err(format!("{log} has no lines")));
    }
    let replay_due = speed.map(|speed| {
        let first = times.iter().copied().fold(f64::MAX, f64::min);
        times
            .iter()
            .map(|t| Duration::from_secs_f64(((t - first) / speed).max(0.0)))
            .collect()
    });
    Ok(Mix {
        variants,
        replay_due,
    })
}
