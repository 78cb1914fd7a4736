//! What the decider subcommands share: the document loaded as a manifest (and kept as a JSON
//! object for the lint), the `KEY=VALUE` context, and the reference's exception names.

use std::process::ExitCode;

use experiments_decider::{DecideError, ErrorKind, Manifest};
use serde_json::{Map, Value};

use crate::{ConfigFile, complain};

/// A reddit-decider document: the loaded manifest and the object it was loaded from.
pub struct DeciderDoc {
    /// What decisions use; broken entries are left out and listed by `Manifest::errors`.
    pub manifest: Manifest,
    /// The document's members in file order (for the lint, and to list entries in order).
    pub document: Map<String, Value>,
}

impl DeciderDoc {
    /// Loads the file's bytes as a decider document. Fails (with `PATH: REASON`) only when
    /// nothing can load: unreadable, not a JSON object, a malformed `$override_groups` (the
    /// reference's `DeciderInitException`).
    pub fn load(file: &ConfigFile<'_>) -> Result<DeciderDoc, String> {
        let bytes = file.bytes.as_ref().map_err(String::clone)?;
        let manifest =
            Manifest::from_slice(bytes).map_err(|e| format!("{}: {e}", file.path.display()))?;
        // The manifest loaded, so the document is a JSON object; should serde_json's own float
        // reading ever refuse it, the lint merely sees no entries.
        let document = serde_json::from_slice(bytes).unwrap_or_default();
        Ok(DeciderDoc { manifest, document })
    }

    /// [`DeciderDoc::load`] for a subcommand: on failure the reason is printed and exit
    /// status 2 returned.
    pub fn load_or_exit(command: &str, file: &ConfigFile<'_>) -> Result<DeciderDoc, ExitCode> {
        DeciderDoc::load(file).map_err(|e| {
            complain(command, e);
            ExitCode::from(2)
        })
    }
}

/// `KEY=VALUE` arguments as the JSON object `Context::from_json` reads (the reference's
/// `make_ctx` dict): VALUE is JSON when it parses as JSON (`true`, `7`, `{"k": 1}`, `null`),
/// else a string, as for baseplate inputs. A repeated KEY keeps its last value.
pub fn context_object(args: &[String]) -> Result<Map<String, Value>, String> {
    let mut object = Map::new();
    for a in args {
        let Some((k, v)) = a.split_once('=') else {
            return Err(format!("input {a:?} is not KEY=VALUE"));
        };
        let value =
            serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.to_owned()));
        object.insert(k.to_owned(), value);
    }
    Ok(object)
}

/// The reference's exception class for an error (`FeatureNotFoundException`,
/// `DeciderException`, `ValueTypeMismatchException`).
pub fn exception(e: &DecideError) -> &'static str {
    match e.kind() {
        ErrorKind::FeatureNotFound => "FeatureNotFoundException",
        ErrorKind::TypeMismatch => "ValueTypeMismatchException",
        _ => "DeciderException",
    }
}
