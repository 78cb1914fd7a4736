//! The parsed, immutable snapshot of one `experiments.json` document.

use serde::Serialize;
use serde_json::Value;

use crate::document::{self, Document};
use crate::error::{ConfigError, EvalError, ValidationError};
use crate::experiment::{Active, Experiment, ExperimentRef};
use crate::explain::{Observer, Step};
use crate::inputs::{Inputs, key_hash};
use crate::py;

/// A parsed `experiments.json`: every experiment parsed once, independently. `Send + Sync`;
/// share it behind an `Arc` and evaluate from any number of threads.
#[derive(Debug, Clone, Default)]
pub struct Config {
    entries: Vec<Result<Experiment, ValidationError>>,
    keys: Vec<Box<str>>,
    index: KeyIndex,
}

/// An open-addressing table from key hash to entry index (linear probing, at most half
/// full): one hash of the name and usually one integer and one string comparison per lookup.
#[derive(Debug, Clone, Default)]
struct KeyIndex {
    /// `(hash, index + 1)`; `0` marks an empty slot.
    slots: Vec<(u64, u32)>,
}

impl KeyIndex {
    fn new(keys: &[Box<str>]) -> Self {
        let size = (keys.len() * 2).next_power_of_two().max(8);
        let mut slots = vec![(0u64, 0u32); size];
        for (i, k) in keys.iter().enumerate() {
            let h = key_hash(k);
            let mut s = h as usize & (size - 1);
            while slots[s].1 != 0 {
                s = (s + 1) & (size - 1);
            }
            slots[s] = (h, i as u32 + 1);
        }
        KeyIndex { slots }
    }

    fn find(&self, keys: &[Box<str>], key: &str) -> Option<usize> {
        let mask = self.slots.len().checked_sub(1)?;
        let h = key_hash(key);
        let mut s = h as usize & mask;
        loop {
            let (sh, idx) = self.slots[s];
            if idx == 0 {
                return None;
            }
            let i = idx as usize - 1;
            if sh == h && py::str_eq(&keys[i], key) {
                return Some(i);
            }
            s = (s + 1) & mask;
        }
    }
}

/// The outcome of evaluating one experiment for one call, before event handling.
#[derive(Debug, Clone, Copy)]
pub struct Evaluation<'c, 'i> {
    /// The chosen variant.
    pub variant: Option<&'c str>,
    experiment: &'c Experiment,
    active: Active<'c>,
    /// Whether the experiment logs bucketing events (`should_log_bucketing()`).
    pub log_bucketing: bool,
    /// The truthy bucketing value from the original-case inputs (`get_unique_id`).
    pub bucketing_value: Option<&'i Value>,
    /// Whether an override (or `global_override`) chose the variant.
    pub is_override: bool,
}

impl<'c> Evaluation<'c, '_> {
    /// The experiment as events describe it.
    pub fn experiment(&self) -> ExperimentRef<'c> {
        self.experiment.event_ref(self.active)
    }

    /// The configured bucketing field.
    pub fn bucketing_field(&self) -> Option<&'c str> {
        self.active.bucketing_field()
    }

    /// The prefix of the experiment's dedupe keys.
    pub(crate) fn dedupe_prefix(&self) -> &'c str {
        self.experiment.dedupe_prefix()
    }
}

/// Validation summary of a config at one instant ([`Config::report`]). Built by the engine;
/// non-exhaustive: fields may be added.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ValidationReport {
    /// Number of experiments (config keys).
    pub experiments: usize,
    /// Number of valid experiments.
    pub valid: usize,
    /// The invalid ones, in file order.
    pub invalid: Vec<ValidationError>,
}

impl Config {
    /// Parses a document as baseplate does (`json.load`). Fails only where Python's `json`
    /// fails too (not JSON, a UTF-8 byte order mark, nesting past Python's recursion limit)
    /// or when the top level is not an object; broken experiments are kept as invalid
    /// entries with their errors.
    ///
    /// Plain JSON is parsed by `serde_json` in one pass. A document only Python reads (`NaN`,
    /// `Infinity`, numbers beyond `f64`, lone surrogates, nesting beyond `serde_json`'s 128
    /// levels) is split into its experiments, each parsed on its own: only those holding a
    /// value this port cannot represent, or nested deeper than [`crate::MAX_DEPTH`] levels,
    /// are invalid (see [`crate::Deviation::UnrepresentableValue`] and
    /// [`crate::Deviation::Nesting`]); the others load exactly as they would alone.
    pub fn parse(json: &str) -> Result<Config, ConfigError> {
        match serde_json::from_str(json) {
            Ok(document) => Self::from_document(document, false),
            Err(e) => Self::parse_tolerant(json, e),
        }
    }

    /// [`Config::parse`] from bytes, which must be UTF-8 (baseplate reads the file as UTF-8
    /// text).
    pub fn from_slice(json: &[u8]) -> Result<Config, ConfigError> {
        match serde_json::from_slice(json) {
            Ok(document) => Self::from_document(document, false),
            Err(e) => match std::str::from_utf8(json) {
                Ok(text) => Self::parse_tolerant(text, e),
                Err(u) => Err(ConfigError::NotUtf8 { offset: u.valid_up_to() }),
            },
        }
    }

    /// Builds a config from an already parsed document. An experiment nested deeper than
    /// [`crate::MAX_DEPTH`] levels is invalid ([`crate::Deviation::Nesting`]) and dropped
    /// without recursion, so a value of any depth built in code is safe here.
    pub fn from_value(document: Value) -> Result<Config, ConfigError> {
        Self::from_document(document, true)
    }

    /// [`Config::from_value`]; `check_depth` is false for documents `serde_json` parsed,
    /// which nest fewer than 128 levels.
    fn from_document(document: Value, check_depth: bool) -> Result<Config, ConfigError> {
        let map = match document {
            Value::Object(map) => map,
            other => {
                let found = py::type_name(&other);
                document::drop_deep(other);
                return Err(ConfigError::NotAnObject { found });
            }
        };
        let mut config = Config::with_capacity(map.len());
        for (key, value) in map {
            let entry = if check_depth && py::nests_deeper_than(&value, py::MAX_DEPTH) {
                document::drop_deep(value);
                Err(document::too_deep(None).into_validation(&key))
            } else {
                Experiment::parse(&key, &value)
            };
            config.keys.push(key.into_boxed_str());
            config.entries.push(entry);
        }
        config.index = KeyIndex::new(&config.keys);
        Ok(config)
    }

    /// The path of [`Config::parse`] for documents `serde_json` rejected (the `document`
    /// module): Python's grammar checked over the whole text, then each experiment parsed on
    /// its own.
    fn parse_tolerant(text: &str, serde_error: serde_json::Error) -> Result<Config, ConfigError> {
        let members = match document::scan(text, serde_error)? {
            Document::Object(members) => members,
            Document::Other(found) => return Err(ConfigError::NotAnObject { found }),
        };
        let mut config = Config::with_capacity(members.len());
        for member in &members {
            let key = member.key.as_str();
            let entry = match document::member_value(text, member) {
                Ok(value) => Experiment::parse(key, &value),
                Err(problem) => Err(problem.into_validation(key)),
            };
            config.keys.push(key.into());
            config.entries.push(entry);
        }
        config.index = KeyIndex::new(&config.keys);
        Ok(config)
    }

    fn with_capacity(n: usize) -> Config {
        Config {
            entries: Vec::with_capacity(n),
            keys: Vec::with_capacity(n),
            index: KeyIndex::default(),
        }
    }

    /// Every config key in file order, valid or not (`get_all_experiment_names`).
    pub fn names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.keys.iter().map(|k| &**k)
    }

    /// Number of experiments (config keys).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the config has no experiments.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The parsed entry of a config key.
    pub fn get(&self, key: &str) -> Option<&Result<Experiment, ValidationError>> {
        self.index.find(&self.keys, key).map(|i| &self.entries[i])
    }

    /// Every entry in file order.
    pub fn entries(&self) -> impl Iterator<Item = &Result<Experiment, ValidationError>> {
        self.entries.iter()
    }

    /// Why `key` is invalid at `now` (`None` when it is valid or unknown).
    pub fn validation_error(&self, key: &str, now: f64) -> Option<&ValidationError> {
        match self.get(key)? {
            Err(e) => Some(e),
            Ok(exp) => exp.resolve(now).err(),
        }
    }

    /// Whether `key` names an experiment that parses at `now` (`is_valid_experiment`).
    pub fn is_valid(&self, key: &str, now: f64) -> bool {
        matches!(self.get(key), Some(Ok(exp)) if exp.resolve(now).is_ok())
    }

    /// The validation summary at `now`.
    pub fn report(&self, now: f64) -> ValidationReport {
        let invalid: Vec<ValidationError> =
            self.names().filter_map(|k| self.validation_error(k, now).cloned()).collect();
        ValidationReport { experiments: self.len(), valid: self.len() - invalid.len(), invalid }
    }

    /// Evaluates experiment `key` for `inputs` at `now`, reporting each step to `obs`.
    /// `Ok(None)` when the key is unknown or the experiment invalid.
    pub fn evaluate<'c, 'i, O: Observer>(
        &'c self,
        key: &str,
        inputs: &'i Inputs,
        now: f64,
        obs: &mut O,
    ) -> Result<Option<Evaluation<'c, 'i>>, EvalError> {
        let exp = match self.get(key) {
            None => {
                obs.step(Step::NotFound);
                return Ok(None);
            }
            Some(Err(error)) => {
                obs.step(Step::Invalid { error });
                return Ok(None);
            }
            Some(Ok(exp)) => exp,
        };
        let active = match exp.resolve(now) {
            Ok(active) => active,
            Err(error) => {
                obs.step(Step::Invalid { error });
                return Ok(None);
            }
        };
        let (variant, is_override) = active.variant(inputs, obs)?;
        let bucketing_value = active.unique_value(inputs)?;
        // `get_unique_id` takes `str()` of a truthy bucketing value on every call.
        if let Some(value) = bucketing_value {
            py::check_depth(value)?;
        }
        Ok(Some(Evaluation {
            variant,
            experiment: exp,
            active,
            log_bucketing: active.should_log_bucketing(),
            bucketing_value,
            is_override,
        }))
    }

    /// The bucketing field (`bucket_val`) of `key` at `now`, for experiments that bucket.
    pub fn bucketing_field(&self, key: &str, now: f64) -> Option<&str> {
        self.active(key, now)?.1.bucketing_field()
    }

    /// The experiment of `key` as events describe it at `now`, if valid.
    pub fn experiment_ref(&self, key: &str, now: f64) -> Option<ExperimentRef<'_>> {
        let (exp, active) = self.active(key, now)?;
        Some(exp.event_ref(active))
    }

    /// The experiment of `key` and what it is at `now`, if valid.
    pub(crate) fn active(&self, key: &str, now: f64) -> Option<(&Experiment, Active<'_>)> {
        let Some(Ok(exp)) = self.get(key) else { return None };
        Some((exp, exp.resolve(now).ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Config>();
    }

    #[test]
    fn key_index_finds_every_key() {
        let keys: Vec<Box<str>> = (0..1000).map(|i| format!("exp_{i}").into()).collect();
        let index = KeyIndex::new(&keys);
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(index.find(&keys, k), Some(i));
        }
        assert_eq!(index.find(&keys, "exp_1000"), None);
        assert_eq!(KeyIndex::default().find(&[], "x"), None);
    }

    #[test]
    fn top_level_must_be_an_object() {
        assert!(matches!(Config::parse("[]"), Err(ConfigError::NotAnObject { found: "list" })));
        assert!(matches!(Config::parse("{"), Err(ConfigError::Json(_))));
        assert!(Config::parse("{}").unwrap().is_empty());
    }

    #[test]
    fn one_broken_experiment_does_not_disable_others() {
        let cfg = Config::parse(
            r#"{"bad": {"id": "x"}, "good": {"id": 1, "name": "good", "type": "feature_flag",
                "start_ts": 0, "stop_ts": 9e9, "experiment": {"variants": {"active": 100}}}}"#,
        )
        .unwrap();
        assert_eq!(cfg.names().collect::<Vec<_>>(), ["bad", "good"]);
        assert!(!cfg.is_valid("bad", 1.0));
        assert!(cfg.is_valid("good", 1.0));
        let report = cfg.report(1.0);
        assert_eq!(report.valid, 1);
        assert_eq!(report.invalid[0].experiment, "bad");
        assert_eq!(report.invalid[0].path, "id");
    }
}
