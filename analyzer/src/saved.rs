//! A log's summary as `--summary-out` writes it, for `analyzer merge`: the
//! whole [`Summary`] (histograms in HdrHistogram's V2 encoding, so adding
//! them is exact) and how the log was read, which the report and the
//! checks need once the log itself is gone. The summaries of a log's parts
//! merged are the summary of the whole log.

use serde::{Deserialize, Serialize};

use crate::formats::{Chosen, Reader};
use crate::summary::Summary;

/// Bumped when the file changes in a way an older analyzer would misread.
pub const FORMAT: u32 = 1;

/// How a log was read: its format, and what that format holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Read {
    pub format: String,
    /// Recognised from the lines rather than named by the user.
    pub detected: bool,
    /// Lines name the node that answered.
    pub has_node: bool,
    /// Which timing the latency figures come from, in words.
    pub timing: Option<String>,
    pub json_lines: bool,
}

impl Read {
    /// How `chosen` read a log whose first lines are `first_lines`.
    pub fn of(chosen: &Chosen, first_lines: &[String]) -> Read {
        Read {
            format: chosen.name.clone(),
            detected: chosen.detected,
            has_node: chosen.reader.has_node(),
            timing: chosen.reader.timing_in(first_lines),
            json_lines: matches!(chosen.reader, Reader::Json(_)),
        }
    }
}

/// One log's summary, as the file holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub tool: String,
    pub format: u32,
    pub version: String,
    /// The logs it summarises.
    pub inputs: Vec<String>,
    pub read: Read,
    pub summary: Summary,
}

/// What the file's `tool` says.
pub const TOOL: &str = "analyzer summary";

impl Saved {
    pub fn new(inputs: Vec<String>, read: Read, summary: Summary) -> Saved {
        Saved {
            tool: TOOL.into(),
            format: FORMAT,
            version: env!("CARGO_PKG_VERSION").into(),
            inputs,
            read,
            summary,
        }
    }

    /// A summary file's text, checked: its name goes in each error.
    pub fn parse(name: &str, text: &str) -> Result<Saved, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("{name}: not JSON: {e}"))?;
        Saved::from_value(name, value)
    }

    /// [`Saved::parse`] on JSON already read.
    pub fn from_value(name: &str, value: serde_json::Value) -> Result<Saved, String> {
        if value.get("tool").and_then(|t| t.as_str()) != Some(TOOL) {
            return Err(format!(
                "{name}: not a summary; write one with analyzer --summary-out"
            ));
        }
        let format = value.get("format").and_then(|f| f.as_u64());
        if format != Some(u64::from(FORMAT)) {
            return Err(format!(
                "{name}: a summary of format {format:?} (this analyzer reads {FORMAT}); merge with the analyzer that wrote it"
            ));
        }
        serde_json::from_value(value).map_err(|e| format!("{name}: the summary does not read: {e}"))
    }
}

/// The summaries of the parts of a log (or of several nodes' logs) as one:
/// how they were read must agree. Malformed lines keep their order, each
/// part's after the one before.
pub fn merge(parts: Vec<(String, Saved)>) -> Result<Saved, String> {
    let mut parts = parts.into_iter();
    let Some((first_name, mut whole)) = parts.next() else {
        return Err("no summary to merge".into());
    };
    for (name, part) in parts {
        let (a, b) = (&whole.read, &part.read);
        if (&a.format, a.has_node, &a.timing) != (&b.format, b.has_node, &b.timing) {
            return Err(format!(
                "{first_name} and {name} were not read alike: format {} and {}; merge summaries of logs in one format",
                a.format, b.format
            ));
        }
        whole.read.detected &= b.detected;
        let mut summary = part.summary;
        let before = whole.summary.lines;
        for (order, _) in &mut summary.malformed_examples {
            *order += before;
        }
        whole.summary.merge(&summary);
        whole.inputs.extend(part.inputs);
    }
    Ok(whole)
}

/// Histograms as HdrHistogram's compressed V2 encoding in base64 (what
/// other HDR tools read). Read back, one grows as the ones it is added to.
pub mod histogram {
    use base64::prelude::{Engine as _, BASE64_STANDARD};
    use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
    use hdrhistogram::Histogram;

    pub fn encode(h: &Histogram<u64>) -> String {
        let mut bytes = Vec::new();
        match V2DeflateSerializer::new().serialize(h, &mut bytes) {
            Ok(_) => BASE64_STANDARD.encode(bytes),
            Err(_) => String::new(),
        }
    }

    pub fn decode(text: &str) -> Result<Histogram<u64>, String> {
        let bytes = BASE64_STANDARD
            .decode(text)
            .map_err(|e| format!("a histogram is not base64: {e}"))?;
        let mut h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut &bytes[..])
            .map_err(|e| format!("a histogram does not decode: {e:?}"))?;
        h.auto(true);
        Ok(h)
    }

    pub fn serialize<S: serde::Serializer>(h: &Histogram<u64>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(h))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Histogram<u64>, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        decode(&text).map_err(serde::de::Error::custom)
    }
}
