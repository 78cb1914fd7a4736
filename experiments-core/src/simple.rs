//! Simple experiments (`single_variant`, `multi_variant`, `feature_rollout`, `range_variant`):
//! baseplate's `SimpleExperiment` with its targeting tree, ordered overrides and variant set.

use serde_json::{Map, Value};

use crate::bucketing::{Modulus, Seed};
use crate::error::{Deviation, EvalError, Problem};
use crate::experiment::BucketVal;
use crate::explain::{BucketRange, Observer, Step};
use crate::inputs::Inputs;
use crate::py;
use crate::targeting::Tree;
use crate::variant_set::VariantSet;

/// A parsed simple experiment.
#[derive(Debug, Clone)]
pub(crate) struct Simple {
    /// `experiment_version` (reported as the event's `version`).
    pub version: Value,
    pub bucket_val: BucketVal,
    pub seed: Seed,
    pub num_buckets: Modulus,
    pub log_bucketing: bool,
    pub variants: VariantSet,
    pub targeting: Tree,
    pub overrides: Vec<(Box<str>, Tree)>,
}

impl Simple {
    /// Parses the `experiment` block (baseplate's `SimpleExperiment.from_dict`).
    pub(crate) fn parse(
        cfg: &Map<String, Value>,
        id: i64,
        name: &str,
        variant_type: &str,
    ) -> Result<Simple, Problem> {
        let Some(version) = cfg.get("experiment_version") else {
            return Err(Problem::new(
                "experiment.experiment_version",
                "KeyError: 'experiment_version' (required)",
            ));
        };
        let num_buckets = match cfg.get("num_buckets") {
            None => 1000,
            Some(Value::Number(n)) if n.as_i64().is_some_and(|n| n > 0) => {
                n.as_i64().unwrap_or(1000)
            }
            Some(other) => {
                return Err(Problem::new(
                    "experiment.num_buckets",
                    format!(
                        "num_buckets must be a positive integer, found {}",
                        py::to_py_str(other)
                    ),
                )
                .deviation(Deviation::NumBuckets));
            }
        };
        let variants = VariantSet::parse(variant_type, cfg.get("variants"), num_buckets);
        // Report baseplate's own errors before this port's deliberate rejections.
        let variants = match variants {
            Err(p) if p.deviation.is_none() => return Err(p),
            other => other,
        };
        if !py::truthy(version) {
            return Err(Problem::new(
                "experiment.experiment_version",
                "Experiment version must be provided.",
            ));
        }
        let variants = variants?;
        let log_bucketing = cfg.get("log_bucketing").is_none_or(py::truthy);
        let seed = match cfg.get("bucket_seed") {
            Some(s) if py::truthy(s) => py::to_py_str(s),
            _ => {
                let shuffle = cfg.get("shuffle_version").unwrap_or(&Value::Null);
                format!("{id}.{name}.{}", py::to_py_str(shuffle))
            }
        };
        Ok(Simple {
            version: version.clone(),
            bucket_val: BucketVal::new(cfg.get("bucket_val")),
            seed: Seed::new(seed),
            num_buckets: Modulus::new(num_buckets as u64),
            log_bucketing,
            variants,
            targeting: Tree::build(cfg.get("targeting"), || "experiment.targeting".into())?,
            overrides: build_overrides(cfg.get("overrides"))?,
        })
    }

    /// Baseplate's `SimpleExperiment.variant` once the experiment is known to be enabled.
    /// The variant, and whether an override chose it.
    pub(crate) fn variant<O: Observer>(
        &self,
        inputs: &Inputs,
        obs: &mut O,
    ) -> Result<(Option<&str>, bool), EvalError> {
        let Some(value) = self.bucket_val.lookup(inputs, obs)? else {
            return Ok((None, false));
        };
        for (treatment, tree) in &self.overrides {
            let matched = tree.eval(inputs, obs)?;
            obs.step(Step::Override { variant: treatment, matched });
            if matched {
                // An empty treatment is falsy: it stops the override search without winning.
                if !treatment.is_empty() {
                    return Ok((Some(treatment), true));
                }
                break;
            }
        }
        let targeted = self.targeting.eval(inputs, obs)?;
        obs.step(Step::Targeted { result: targeted });
        if !targeted {
            return Ok((None, false));
        }
        let bucket = self.seed.bucket(value, &self.num_buckets)?;
        obs.step(Step::Bucket {
            seed: self.seed.as_str(),
            bucket,
            num_buckets: self.num_buckets.get(),
        });
        let choice = self.variants.choose(bucket)?;
        obs.step(Step::Variant {
            variant: choice.variant,
            range: choice.range.map(|(lo, hi)| BucketRange::new(lo, hi)),
        });
        Ok((choice.variant, false))
    }
}

/// Baseplate's `_generate_overrides`: a list of single-key objects, others skipped. `Err`
/// only for a tree too deep to build (see [`Tree::build`]).
fn build_overrides(config: Option<&Value>) -> Result<Vec<(Box<str>, Tree)>, Problem> {
    let Some(Value::Array(entries)) = config else {
        return Ok(Vec::new());
    };
    let mut overrides = Vec::new();
    for (i, m) in entries.iter().enumerate() {
        let Some(m) = m.as_object().filter(|m| m.len() <= 1) else { continue };
        for (treatment, tree) in m {
            let tree =
                Tree::build(Some(tree), || format!("experiment.overrides[{i}].{treatment}"))?;
            overrides.push((treatment.as_str().into(), tree));
        }
    }
    Ok(overrides)
}
