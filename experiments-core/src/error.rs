//! Error types: document errors, per-experiment validation errors and evaluation errors.

use std::fmt;

/// The whole `experiments.json` document could not be used: baseplate's `json.load` rejects
/// it too (documents it loads are never rejected as a whole; see [`crate::Config::parse`]).
///
/// Non-exhaustive: new document-level causes may be added; match with a wildcard arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The bytes are not valid JSON (`serde_json`'s report of the first error).
    #[error("experiments config is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Not JSON that Python's `json` module loads, found past values `serde_json` cannot
    /// read but Python can (`NaN`, lone surrogates, deep nesting): a syntax error, nesting
    /// deeper than Python's recursion limit, or an integer longer than Python converts.
    #[error("experiments config is not valid JSON: {message} at line {line} column {column}")]
    Syntax {
        /// What is wrong.
        message: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters) of the error.
        column: usize,
    },
    /// The document starts with a UTF-8 byte order mark (U+FEFF).
    #[error(
        "experiments config starts with a UTF-8 byte order mark (BOM); baseplate's json.load \
         rejects it too (\"Unexpected UTF-8 BOM\"): save the file as UTF-8 without a BOM"
    )]
    ByteOrderMark,
    /// The bytes are not UTF-8 (baseplate opens the file as UTF-8 text and fails to decode
    /// it).
    #[error("experiments config is not valid UTF-8: invalid byte at offset {offset}")]
    NotUtf8 {
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// The document is valid JSON but its top level is not an object.
    #[error("experiments config must be a JSON object at the top level, found {found}")]
    NotAnObject {
        /// Python type name of what was found instead (`list`, `str`, ...).
        found: &'static str,
    },
}

/// A closed set of nonsense configurations that this port rejects at parse time although
/// baseplate accepted them (see the conformance README, "Deviation policy").
///
/// An experiment rejected for one of these reasons is invalid: `variant` gives none,
/// `is_valid` is false and `expose` logs nothing.
///
/// Non-exhaustive: a new deviation may be added when another nonsense configuration gets
/// rejected; [`Deviation::label`] names each one stably.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Deviation {
    /// `num_buckets` is not a positive integer (`0`, `-1000`, `1000.0`, `"10"`, `true`).
    NumBuckets,
    /// `global_override` is neither a string nor null.
    GlobalOverrideType,
    /// A variant entry has no `name` or a `name` that is not a string.
    VariantName,
    /// An `EQ` node gives `values` as a string or an object.
    EqValuesType,
    /// The experiment `id` is a boolean.
    IdBoolean,
    /// The experiment `name` is missing, empty or not a string.
    ExperimentName,
    /// A variant size is a boolean.
    SizeBoolean,
    /// The experiment holds a value Python's `json` reads but a `serde_json::Value` cannot
    /// hold: `NaN`, `Infinity`, `-Infinity`, a number beyond the `f64` range (Python: `inf`
    /// or a big `int`), a string or key with a lone surrogate (`"\ud800"`).
    UnrepresentableValue,
    /// The experiment nests lists and objects deeper than [`crate::MAX_DEPTH`] levels.
    Nesting,
}

impl Deviation {
    /// Stable snake_case label, used by the conformance runner's per-category counts.
    pub fn label(self) -> &'static str {
        match self {
            Deviation::NumBuckets => "num_buckets",
            Deviation::GlobalOverrideType => "global_override_type",
            Deviation::VariantName => "variant_name",
            Deviation::EqValuesType => "eq_values_type",
            Deviation::IdBoolean => "id_boolean",
            Deviation::ExperimentName => "experiment_name",
            Deviation::SizeBoolean => "size_boolean",
            Deviation::UnrepresentableValue => "unrepresentable_value",
            Deviation::Nesting => "nesting",
        }
    }
}

/// Why one experiment of a config is invalid. The other experiments are unaffected.
///
/// Built only by the engine; the fields are public to read. Non-exhaustive: fields may be
/// added (a new one never changes the meaning of these).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ValidationError {
    /// The config key of the experiment.
    pub experiment: String,
    /// Where in the experiment's config the problem is, as a dotted path
    /// (`experiment.variants[1].size`).
    pub path: String,
    /// What is wrong, in words.
    pub message: String,
    /// Set when the experiment is rejected on purpose although baseplate accepted it.
    pub deviation: Option<Deviation>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "experiment {:?}: {}: {}", self.experiment, self.path, self.message)
    }
}

impl std::error::Error for ValidationError {}

/// A problem found while building an experiment, before the experiment name is attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    pub path: String,
    pub message: String,
    pub deviation: Option<Deviation>,
}

impl Problem {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem { path: path.into(), message: message.into(), deviation: None }
    }

    pub(crate) fn deviation(mut self, deviation: Deviation) -> Self {
        self.deviation = Some(deviation);
        self
    }

    pub(crate) fn into_validation(self, experiment: &str) -> ValidationError {
        ValidationError {
            experiment: experiment.to_owned(),
            path: self.path,
            message: self.message,
            deviation: self.deviation,
        }
    }
}

/// The Python type of a JSON value, as baseplate's exception messages name it. Exhaustive:
/// JSON values have exactly these seven types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PyType {
    /// `None`.
    NoneType,
    /// `bool`.
    Bool,
    /// `int`.
    Int,
    /// `float`.
    Float,
    /// `str`.
    Str,
    /// `list`.
    List,
    /// `dict`.
    Dict,
}

impl PyType {
    /// The Python type name.
    pub fn name(self) -> &'static str {
        match self {
            PyType::NoneType => "NoneType",
            PyType::Bool => "bool",
            PyType::Int => "int",
            PyType::Float => "float",
            PyType::Str => "str",
            PyType::List => "list",
            PyType::Dict => "dict",
        }
    }
}

impl fmt::Display for PyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Python binary operator, as exception messages show it (`Display` is the operator's
/// symbol). Non-exhaustive: another operator may appear in [`EvalError`]s later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PyOp {
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `/`.
    Div,
}

impl fmt::Display for PyOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PyOp::Lt => "<",
            PyOp::Le => "<=",
            PyOp::Gt => ">",
            PyOp::Ge => ">=",
            PyOp::Div => "/",
        })
    }
}

/// A `variant` call failed in a situation where baseplate raised an exception.
///
/// No variant is returned and no event is logged. [`EvalError::python_exception`] names the
/// exception baseplate raised and the `Display` text follows its message.
///
/// Non-exhaustive: porting another of baseplate's failure modes adds a variant; match with a
/// wildcard arm (or use [`EvalError::python_exception`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// `variant` was called with an empty experiment name.
    #[error("experiment name must not be empty")]
    EmptyExperimentName,
    /// An ordering comparison between values of types that cannot be ordered.
    #[error("'{op}' not supported between instances of '{left}' and '{right}'")]
    Unorderable {
        /// The operator (`<`, `<=`, `>`, `>=`).
        op: PyOp,
        /// Type of the left operand.
        left: PyType,
        /// Type of the right operand.
        right: PyType,
    },
    /// A list or object was used where a hashable value is required.
    #[error("unhashable type: '{0}'")]
    Unhashable(PyType),
    /// A membership test against a value that is not a container.
    #[error("argument of type '{0}' is not iterable")]
    NotIterable(PyType),
    /// A membership test in a string with a non-string candidate.
    #[error("'in <string>' requires string as left operand, not {0}")]
    InRequiresString(PyType),
    /// A length was needed from a value that has none.
    #[error("object of type '{0}' has no len()")]
    NoLen(PyType),
    /// `.keys()` was called on a value that is not an object.
    #[error("'{0}' object has no attribute 'keys'")]
    NoKeys(PyType),
    /// An arithmetic operation between unsupported operand types.
    #[error("unsupported operand type(s) for {op}: '{left}' and '{right}'")]
    BadOperand {
        /// The operator.
        op: PyOp,
        /// Type of the left operand.
        left: PyType,
        /// Type of the right operand.
        right: PyType,
    },
    /// Bucketing modulo the number of variants, which is zero.
    #[error("integer modulo by zero")]
    ZeroDivision,
    /// A bucket limit evaluated to an infinite float.
    #[error("cannot convert float infinity to integer")]
    InfinityToInt,
    /// A bucket limit evaluated to NaN.
    #[error("cannot convert float NaN to integer")]
    NanToInt,
    /// An r2 override resolved to a value that is not a string (only possible when
    /// `variants` is a list). Baseplate would return that value; this port cannot.
    #[error("override resolved to a non-string variant of type '{0}'")]
    NonStringVariant(PyType),
    /// A value nested deeper than [`crate::MAX_DEPTH`] levels had to be walked: its `str()`
    /// (the bucketing value), a comparison, or an event echoing it. Python raises
    /// `RecursionError` from about 1000 levels; this port stops earlier instead of risking
    /// the stack.
    #[error(
        "maximum recursion depth exceeded: a value nests more than {} levels",
        crate::py::MAX_DEPTH
    )]
    RecursionLimit,
}

impl EvalError {
    /// The name of the Python exception baseplate raised in the same situation.
    pub fn python_exception(&self) -> &'static str {
        match self {
            EvalError::EmptyExperimentName => "AssertionError",
            EvalError::Unorderable { .. }
            | EvalError::Unhashable(_)
            | EvalError::NotIterable(_)
            | EvalError::InRequiresString(_)
            | EvalError::NoLen(_)
            | EvalError::BadOperand { .. }
            | EvalError::NonStringVariant(_) => "TypeError",
            EvalError::NoKeys(_) => "AttributeError",
            EvalError::ZeroDivision => "ZeroDivisionError",
            EvalError::InfinityToInt => "OverflowError",
            EvalError::NanToInt => "ValueError",
            EvalError::RecursionLimit => "RecursionError",
        }
    }
}
