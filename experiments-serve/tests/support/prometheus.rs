//! A strict reader of the Prometheus text format for tests: every sample of a scrape with
//! its labels unescaped, after checking what a scraper relies on (each family once, with
//! HELP and TYPE, no duplicate series). Included by `src/metrics.rs`'s unit tests and by
//! `tests/http.rs`, so both read `/metrics` the same way.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};

use prom_text_format_parser::{Scrape, Type, ValueType};

/// One parsed sample: its full name (`_bucket`, `_sum`, `_count` put back for
/// histograms), the family's type, its labels unescaped, its value.
#[derive(Debug)]
pub struct Parsed {
    pub name: String,
    pub kind: Type,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A label value as written (escaped) back to the string it stands for.
fn unescape(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(c @ ('\\' | '"')) => out.push(c),
            other => panic!("bad escape \\{other:?} in {raw:?}"),
        }
    }
    out
}

/// The samples of `text`, read by a strict parser of the text format (escapes, names,
/// floats, family grouping); every family must have HELP and TYPE, appear once, and
/// hold no duplicate series.
pub fn parse(text: &str) -> Vec<Parsed> {
    let scrape = Scrape::parse(text).unwrap_or_else(|e| panic!("{e:?} in\n{text}"));
    let mut families = HashSet::new();
    let mut series = HashSet::new();
    let mut samples = Vec::new();
    for metric in scrape.metrics {
        assert!(families.insert(metric.name.clone()), "{} twice", metric.name);
        assert!(metric.help_desc.is_some(), "{} has no HELP", metric.name);
        assert_ne!(metric.kind, Type::Untyped, "{} has no TYPE", metric.name);
        for s in metric.samples {
            let suffix = match (metric.kind, s.value.value_type) {
                (Type::Histogram, ValueType::Sample) => "_bucket",
                (_, ValueType::Sum) => "_sum",
                (_, ValueType::Count) => "_count",
                _ => "",
            };
            let labels: BTreeMap<String, String> =
                s.labels.iter().map(|l| (l.key.clone(), unescape(&l.value))).collect();
            let name = format!("{}{suffix}", metric.name);
            assert!(series.insert((name.clone(), labels.clone())), "{name} {labels:?} twice");
            samples.push(Parsed { name, kind: metric.kind, labels, value: s.value.value.as_f64() });
        }
    }
    samples
}

/// The value of the one sample named `name` with exactly `labels`.
pub fn value(samples: &[Parsed], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> =
        labels.iter().map(|&(k, v)| (k.to_owned(), v.to_owned())).collect();
    samples.iter().find(|s| s.name == name && s.labels == want).map(|s| s.value)
}

pub fn named<'a>(samples: &'a [Parsed], name: &'a str) -> impl Iterator<Item = &'a Parsed> {
    samples.iter().filter(move |s| s.name == name)
}
