//! OpenFeature reasons read from the engines' own decision steps, and the error that stands
//! for "no variant".

use experiments_sdk::core::{DisabledReason, ForcedReason, Observer, Step};
use experiments_sdk::decider;
use open_feature::{EvaluationError, EvaluationErrorCode, EvaluationReason};

/// The code (`EvaluationErrorCode::General(NO_VARIANT)`) of the error a string (or dynamic
/// config) evaluation returns when the user gets no value: the experiment gives no variant,
/// or the dynamic config is disabled. Being an error, it makes
/// `client.get_string_value(...).unwrap_or(default)` use the caller's default. Its message
/// starts with the reason (`DEFAULT: ...`, `DISABLED: ...`); [`no_variant_reason`] reads it.
pub const NO_VARIANT: &str = "NO_VARIANT";

/// The code (`EvaluationErrorCode::General(ENGINE_ERROR)`) of an error the engine raised
/// where the reference implementation raises (a Python `TypeError` in targeting, a decision
/// that fails, ...); the message names the exception.
pub const ENGINE_ERROR: &str = "GENERAL";

/// The reason carried by a [`NO_VARIANT`] error (`DEFAULT`, `DISABLED` or
/// `TARGETING_MATCH`), `None` for any other error.
///
/// ```
/// use experiments_openfeature::no_variant_reason;
/// use open_feature::{EvaluationError, EvaluationErrorCode, EvaluationReason};
///
/// let e = EvaluationError::builder()
///     .code(EvaluationErrorCode::General("NO_VARIANT".into()))
///     .message("DISABLED: `enabled` is false")
///     .build();
/// assert_eq!(no_variant_reason(&e), Some(EvaluationReason::Disabled));
/// ```
pub fn no_variant_reason(error: &EvaluationError) -> Option<EvaluationReason> {
    match &error.code {
        EvaluationErrorCode::General(code) if code == NO_VARIANT => {}
        _ => return None,
    }
    let message = error.message.as_deref()?;
    Some(match message.split(':').next()? {
        "DISABLED" => EvaluationReason::Disabled,
        "TARGETING_MATCH" => EvaluationReason::TargetingMatch,
        _ => EvaluationReason::Default,
    })
}

/// The [`NO_VARIANT`] error for `reason`, explained by `why`.
pub(crate) fn no_variant_error(reason: &EvaluationReason, why: &str) -> EvaluationError {
    EvaluationError::builder()
        .code(EvaluationErrorCode::General(NO_VARIANT.to_owned()))
        .message(format!("{reason}: {why}"))
        .build()
}

/// An error with `code` and `message`.
pub(crate) fn error(code: EvaluationErrorCode, message: impl Into<String>) -> EvaluationError {
    EvaluationError::builder().code(code).message(message).build()
}

/// What a baseplate evaluation did, from its steps.
#[derive(Debug, Default)]
pub(crate) struct BaseplateTrace {
    pub(crate) not_found: bool,
    /// The validation error of an invalid experiment.
    pub(crate) invalid: Option<String>,
    disabled: Option<DisabledReason>,
    forced: Option<ForcedReason>,
    override_chose: bool,
    bucketed: bool,
    /// The bucketing field, when it was looked up and is missing (or null).
    pub(crate) missing_bucketing: Option<String>,
    not_targeted: bool,
}

impl Observer for BaseplateTrace {
    fn step(&mut self, step: Step<'_>) {
        match step {
            Step::NotFound => self.not_found = true,
            Step::Invalid { error } => self.invalid = Some(error.to_string()),
            Step::Disabled { reason } => self.disabled = Some(reason),
            Step::Forced { reason, .. } => self.forced = Some(reason),
            Step::Override { matched: true, variant } if !variant.is_empty() => {
                self.override_chose = true;
            }
            Step::R2Override { accepted: true, .. } => self.override_chose = true,
            Step::BucketingValue { field, value } if value.is_none_or(|v| v.is_null()) => {
                self.missing_bucketing = Some(field.to_owned());
            }
            Step::Targeted { result: false } => self.not_targeted = true,
            Step::Variant { variant: Some(_), .. } => self.bucketed = true,
            _ => {}
        }
    }
}

impl BaseplateTrace {
    /// The reason of the result, and for no variant a short explanation.
    pub(crate) fn reason(&self, has_variant: bool) -> (EvaluationReason, &'static str) {
        if has_variant {
            let reason = if self.override_chose {
                EvaluationReason::TargetingMatch
            } else if self.forced.is_some() {
                EvaluationReason::Static
            } else if self.bucketed {
                EvaluationReason::Split
            } else {
                EvaluationReason::Unknown
            };
            return (reason, "");
        }
        match (self.disabled, self.forced) {
            (Some(DisabledReason::NotStarted), _) => {
                (EvaluationReason::Disabled, "the experiment has not started")
            }
            (Some(DisabledReason::Expired), _) => {
                (EvaluationReason::Disabled, "the experiment has expired")
            }
            (Some(_), _) => (EvaluationReason::Disabled, "the experiment is disabled"),
            (None, Some(ForcedReason::Disabled)) => {
                (EvaluationReason::Disabled, "the experiment is disabled (forced off)")
            }
            (None, Some(_)) => {
                (EvaluationReason::Default, "the experiment has no variant (unknown type)")
            }
            _ if self.missing_bucketing.is_some() => {
                (EvaluationReason::Default, "the bucketing field is missing from the context")
            }
            _ if self.not_targeted => (EvaluationReason::Default, "the context is not targeted"),
            _ => (EvaluationReason::Default, "the bucket falls outside every variant"),
        }
    }
}

/// What a decider decision did to one feature (its parents' steps are told apart by name).
#[derive(Debug)]
pub(crate) struct DeciderTrace<'n> {
    feature: &'n str,
    disabled: bool,
    override_chose: bool,
    override_none: bool,
    not_targeted: bool,
    excluded_by: Option<&'static str>,
    bucketed: bool,
}

impl<'n> DeciderTrace<'n> {
    pub(crate) fn new(feature: &'n str) -> Self {
        DeciderTrace {
            feature,
            disabled: false,
            override_chose: false,
            override_none: false,
            not_targeted: false,
            excluded_by: None,
            bucketed: false,
        }
    }

    /// The reason of the result, and for no variant a short explanation.
    pub(crate) fn reason(&self, has_variant: bool) -> (EvaluationReason, &'static str) {
        if has_variant {
            let reason = if self.override_chose {
                EvaluationReason::TargetingMatch
            } else if self.bucketed {
                EvaluationReason::Split
            } else {
                EvaluationReason::Unknown
            };
            return (reason, "");
        }
        if self.disabled {
            (EvaluationReason::Disabled, "the feature is disabled")
        } else if self.override_none {
            (EvaluationReason::TargetingMatch, "an override gives no variant ($none)")
        } else if self.not_targeted {
            (EvaluationReason::Default, "the context is not targeted")
        } else if let Some(why) = self.excluded_by {
            (EvaluationReason::Default, why)
        } else {
            (EvaluationReason::Default, "the bucket falls outside every variant")
        }
    }
}

impl decider::Observer for DeciderTrace<'_> {
    fn step(&mut self, step: decider::Step<'_>) {
        use decider::{ParentEffect, Step as S};
        match step {
            S::Disabled { feature } if feature == self.feature => self.disabled = true,
            S::Override { feature, variant } if feature == self.feature => match variant {
                Some(_) => self.override_chose = true,
                None => self.override_none = true,
            },
            S::Targeting { feature, result } if feature == self.feature => {
                self.not_targeted = result != Some(true);
            }
            S::Holdout { feature, effect: ParentEffect::Excluded, .. }
                if feature == self.feature =>
            {
                self.excluded_by = Some("the context is in the holdout group");
            }
            S::MutexGroup { feature, effect: ParentEffect::Excluded, .. }
                if feature == self.feature =>
            {
                self.excluded_by = Some("its mutually exclusive group chose another feature");
            }
            S::Bucket { feature, variant: Some(_), .. } if feature == self.feature => {
                self.bucketed = true;
            }
            _ => {}
        }
    }
}
